"""Guard samples → prompt/completion text pairs for TRL (completion-only loss on the target).

A sample too long for max_length is cut on the conversation side (response first, then question),
never on the target side; each cut is counted in the stage's stats.
"""

from __future__ import annotations

import logging
from collections import Counter

from libra_train.data.formats import FormatConfig, lacks_prompt_view, render_prompt, render_target, task_views

log = logging.getLogger(__name__)

ROOM_FOR_EOS = 1


def _cut_conversation(
    record: dict, tokenizer, fmt: FormatConfig, target: str, max_length: int
) -> dict | None:
    """Shorten response, then question, until prompt + target fit; None if even an empty turn will not fit."""
    record = dict(record)
    target_len = len(tokenizer(target, add_special_tokens=False)["input_ids"]) + ROOM_FOR_EOS
    for field in ("response", "question"):
        overflow = (
            len(tokenizer(render_prompt(record, tokenizer, fmt), add_special_tokens=False)["input_ids"])
            + target_len
            - max_length
        )
        if overflow <= 0:
            return record
        ids = tokenizer(record[field], add_special_tokens=False)["input_ids"]
        keep = max(
            0, len(ids) - overflow - 2
        )  # 2 spare: re-tokenizing a cut text can add a token at the seam
        record[field] = tokenizer.decode(ids[:keep]) if keep else ("…" if field == "question" else "")
    final = (
        len(tokenizer(render_prompt(record, tokenizer, fmt), add_special_tokens=False)["input_ids"])
        + target_len
    )
    return record if final <= max_length else None


def build_examples(
    records: list[dict], tokenizer, fmt: FormatConfig, max_length: int
) -> tuple[list[dict], Counter]:
    stats: Counter = Counter()
    examples = []
    for rec in records:
        stats["no_prompt_label"] += lacks_prompt_view(rec, fmt.task)
        for view in task_views(rec, fmt.task):
            target = render_target(view, fmt)
            stats["label_only_targets" if not (view.get("analyze") or "").strip() else "critic_targets"] += 1
            prompt = render_prompt(view, tokenizer, fmt)
            length = len(tokenizer(prompt + target, add_special_tokens=False)["input_ids"]) + ROOM_FOR_EOS
            if length > max_length:
                view = _cut_conversation(view, tokenizer, fmt, target, max_length)
                if view is None:
                    stats["too_long_for_target"] += 1
                    continue
                stats["truncated"] += 1
                prompt = render_prompt(view, tokenizer, fmt)
            examples.append({"prompt": prompt, "completion": target})
    stats["examples"] = len(examples)
    if stats["no_prompt_label"]:
        log.warning(
            "format.task=%s: %d samples have a response but no meta.query_label, so they give no "
            "prompt-task example (counted as no_prompt_label)",
            fmt.task,
            stats["no_prompt_label"],
        )
    else:
        del stats["no_prompt_label"]  # keep the stats to what happened
    return examples, stats
