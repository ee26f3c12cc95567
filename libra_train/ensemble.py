"""Several guards served as one: the ensemble's next-token distribution is the mean of its members'.

A folder holding `ensemble.json` ({"members": [paths relative to that folder]}) is a checkpoint like any
other: `load_model_and_tokenizer` returns a GuardEnsemble, so evaluation, libra-infer, libra-serve and
hard-sample selection use it unchanged. Label mode then reads the mixture's p(unsafe), and generate mode
decodes greedily from the mixture, so the explanation agrees with the label the ensemble chose.

Members must share one tokenizer (the same vocabulary and chat template): their distributions are over
the same tokens only then. Members of one libra-train run (ensemble.members) are trained on the same data,
so a tokenizer built from it (model=tiny, model.trim_vocab) is the same for all of them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from transformers.modeling_outputs import CausalLMOutputWithPast

from libra_train.data.io import atomic_write_text
from libra_train.errors import CheckpointError

ENSEMBLE_FILE = "ensemble.json"


def is_ensemble(path) -> bool:
    return (Path(str(path)) / ENSEMBLE_FILE).is_file()


def write_ensemble(folder: Path, members: list[Path]) -> Path:
    """The ensemble checkpoint: members are stored relative to it, so a moved run directory still loads."""
    folder.mkdir(parents=True, exist_ok=True)
    rel = [os.path.relpath(Path(m).resolve(), folder.resolve()) for m in members]
    atomic_write_text(folder / ENSEMBLE_FILE, json.dumps({"members": rel}, indent=1) + "\n")
    return folder


def member_paths(folder) -> list[Path]:
    folder = Path(str(folder))
    path = folder / ENSEMBLE_FILE
    try:
        members = json.loads(path.read_text())["members"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path} is not an ensemble file ({err}): it needs a list `members`") from None
    if not isinstance(members, list) or not members:
        raise CheckpointError(f"{path}: `members` must be a non-empty list of checkpoint paths")
    return [folder / str(m) for m in members]


def load_ensemble(folder, load_member):
    """(GuardEnsemble, tokenizer) from an ensemble folder; `load_member(path)` loads one checkpoint."""
    loaded = [(p, *load_member(str(p))) for p in member_paths(folder)]
    first_path, _, tokenizer = loaded[0]
    for path, _, other in loaded[1:]:
        if other.get_vocab() != tokenizer.get_vocab() or other.chat_template != tokenizer.chat_template:
            raise CheckpointError(
                f"{folder}: member {path} has another tokenizer than {first_path}; an ensemble's members "
                "must share one vocabulary and chat template"
            )
    return GuardEnsemble([m for _, m, _ in loaded]), tokenizer


class EnsembleCache:
    """The members' KV caches side by side, reshaped together."""

    def __init__(self, caches: list):
        self.caches = caches

    def batch_repeat_interleave(self, repeats: int) -> None:
        for cache in self.caches:
            cache.batch_repeat_interleave(repeats)


class GuardEnsemble(torch.nn.Module):
    """Members as one causal LM whose `logits` are the log of the members' mean next-token probability."""

    def __init__(self, members: list):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, input_ids, past_key_values: EnsembleCache | None = None, **kwargs):
        caches = past_key_values.caches if past_key_values is not None else [None] * len(self.members)
        outputs = [m(input_ids=input_ids, past_key_values=c, **kwargs) for m, c in zip(self.members, caches)]
        log_probs = torch.stack([o.logits.float().log_softmax(-1) for o in outputs])
        mixture = torch.logsumexp(log_probs, 0) - math.log(len(self.members))
        new_caches = [o.past_key_values for o in outputs]
        cache = EnsembleCache(new_caches) if all(c is not None for c in new_caches) else None
        return CausalLMOutputWithPast(logits=mixture, past_key_values=cache)

    @torch.no_grad()
    def generate(
        self,
        input_ids,
        attention_mask,
        max_new_tokens: int,
        pad_token_id: int,
        eos_token_id: int,
        do_sample: bool = False,
        **_,
    ) -> torch.Tensor:
        """Greedy decoding from the mixture, shaped as transformers' generate returns it (prompt, then the
        new tokens, pad after each row's end token). Rows are left-padded, as eval/scoring.py pads them."""
        if do_sample:
            raise ValueError("a GuardEnsemble decodes greedily only")
        mask = attention_mask
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
        )
        sequence, finished = input_ids, torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            token = out.logits[:, -1].argmax(-1).masked_fill(finished, pad_token_id)
            sequence = torch.cat([sequence, token[:, None]], 1)
            finished |= token == eos_token_id
            if finished.all():
                break
            mask = torch.cat([mask, mask.new_ones(len(mask), 1)], 1)
            positions = positions[:, -1:] + 1
            out = self(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=positions,
                past_key_values=out.past_key_values,
                use_cache=True,
                logits_to_keep=1,
            )
        return sequence
