"""Length-bucketed batches whose order is shuffled: padding-free in effect, without the label runs that
stopped length-grouped training from learning.

A padded batch costs its longest sample times its size. With the quick start's data (prompts of 40 to
380 tokens) shuffled batches were 55% padding. Sorting samples by length before cutting batches removes
almost all of it, which is what the Trainer's `group_by_length` does; but it also orders the batches of
each megabatch from longest to shortest, so dozens of consecutive steps see only long samples, then
dozens only short ones. Where length goes with the label (COLD; the question-only views of
`format.task=both` are all short) that is dozens of steps of one label, then of the other, and a guard
trained so stayed at chance. Here the batches are cut the same way and then dealt in a random order, so
neighbouring steps are as mixed as shuffled batches are (BENCHMARKS.md, "Length buckets").
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
