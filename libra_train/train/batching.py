"""Length-bucketed batches dealt in a random order (`train.length_buckets`, off by default).

A padded batch costs its longest sample times its size, and where a stage mixes short and long samples
(the quick start's question alone beside a long answer) shuffled batches are mostly padding. Sorting
samples by length before cutting batches removes most of it, which is what the Trainer's
`group_by_length` does; but it also runs each megabatch's batches longest first, so dozens of
consecutive steps see only long samples, then dozens only short ones. Where length goes with the label
(COLD) those are runs of one label, and a guard trained so stayed at chance. Here the batches of all
megabatches are dealt in a random order, which removes the runs, and with labels each megabatch is
sorted by length rank within its label, so each batch also holds both labels. Such batches learn, but
on COLD still below shuffled ones, which is why they are off by default (BENCHMARKS.md, "Length
buckets").
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler


def bucketed_order(
    lengths: list[int], batch_size: int, buckets: int, generator: torch.Generator, labels: list | None = None
) -> list[int]:
    """Every index once: a random permutation cut into megabatches of `buckets` batches, each sorted by
    length and cut into batches, and then the batches of all megabatches in a random order. With
    `labels`, a megabatch is sorted by each sample's length rank within its own label (rank ÷ count),
    so that each batch holds the labels in the megabatch's proportion, of like lengths."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    span = buckets * batch_size
    batches = []
    for start in range(0, len(order), span):
        megabatch = order[start : start + span]
        key = _length_rank_within_label(megabatch, lengths, labels) if labels else lengths.__getitem__
        megabatch = sorted(megabatch, key=key)
        batches += [megabatch[i : i + batch_size] for i in range(0, len(megabatch), batch_size)]
    dealt = torch.randperm(len(batches), generator=generator).tolist()
    return [index for b in dealt for index in batches[b]]


def _length_rank_within_label(megabatch: list[int], lengths: list[int], labels: list):
    """index → (its length rank among the megabatch's samples of its label + 0.5) ÷ their count."""
    groups: dict = {}
    for index in megabatch:
        groups.setdefault(labels[index], []).append(index)
    quantile = {}
    for group in groups.values():
        for rank, index in enumerate(sorted(group, key=lengths.__getitem__)):
            quantile[index] = (rank + 0.5) / len(group)
    return quantile.__getitem__


class BucketedSampler(Sampler[int]):
    """`bucketed_order` for each epoch, seeded by (seed, epoch): a resumed run draws the same batches,
    so the Trainer's skipping of the batches it already trained lands where the stopped run was."""

    def __init__(
        self, lengths: list[int], batch_size: int, buckets: int, seed: int, labels: list | None = None
    ):
        self.lengths, self.batch_size, self.buckets, self.seed = list(lengths), batch_size, buckets, seed
        self.labels = list(labels) if labels is not None else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(bucketed_order(self.lengths, self.batch_size, self.buckets, generator, self.labels))
