"""Guard samples → prompt/completion text pairs, then the token ids TRL trains on (completion-only loss
on the target).

A sample too long for max_length is cut on the conversation side, never on the target side, in this
order: the earliest context turns are dropped whole, then the other side of the judged exchange (the
question, when the response is judged) is shortened, and only when the judged turn alone cannot fit is
the judged turn itself shortened (counted apart, as judged_turn_cut). Every cut is counted in the
stage's stats.
"""

from __future__ import annotations

import logging
from collections import Counter

from libra_train.data.conversation import context_turns, with_context
from libra_train.data.formats import (
    FormatConfig,
    label_words,
    lacks_prompt_view,
    render_prompt,
    render_target,
    target_opening,
    task_views,
)
from libra_train.data.policy import apply_dropout
from libra_train.eval.scoring import common_prefix

log = logging.getLogger(__name__)

ROOM_FOR_EOS = 1


def _length(record: dict, tokenizer, fmt: FormatConfig, target_len: int) -> int:
    prompt = render_prompt(record, tokenizer, fmt)
    return len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) + target_len


def _shorten(record: dict, field: str, overflow: int, tokenizer) -> dict:
    ids = tokenizer(record[field], add_special_tokens=False)["input_ids"]
    keep = max(0, len(ids) - overflow - 2)  # 2 spare: re-tokenizing a cut text can add a token at the seam
    return {**record, field: tokenizer.decode(ids[:keep]) if keep else "…"}


def fit_conversation(
    record: dict, tokenizer, fmt: FormatConfig, target: str, max_length: int, stats: Counter
) -> dict | None:
    """The record cut (by the rule above) until prompt + target fit in max_length; None if even the
    shortest conversation will not fit. Counts what it cut in `stats`."""
    target_len = len(tokenizer(target, add_special_tokens=False)["input_ids"]) + ROOM_FOR_EOS
    if _length(record, tokenizer, fmt, target_len) <= max_length:
        return record
    context = context_turns(record)
    while context and _length(record, tokenizer, fmt, target_len) > max_length:
        context = context[1:]
        record = with_context(record, context)
        stats["context_turns_dropped"] += 1
    judged = "response" if record.get("response") else "question"
    for field in ("question", "response") if judged == "response" else ("question",):
        overflow = _length(record, tokenizer, fmt, target_len) - max_length
        if overflow <= 0:
            break
        record = _shorten(record, field, overflow, tokenizer)
        stats["judged_turn_cut"] += field == judged
    if _length(record, tokenizer, fmt, target_len) > max_length:
        return None
    stats["truncated"] += 1
    return record


def encode_all(texts: list[str], tokenizer) -> list[list[int]]:
    """Each text's ids with no special token added, in one batched call: a fast tokenizer encodes the
    batch in Rust, where a call per text pays the Python wrapper's cost each time."""
    return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []


def fitted_prompts(
    views: list[tuple[dict, str]], tokenizer, fmt: FormatConfig, max_length: int, stats: Counter
) -> list[tuple[dict, str | None]]:
    """Each (view, target) as (the view cut to fit, its rendered prompt), or (view, None) where even the
    shortest conversation will not fit (counted as too_long_for_target). Every prompt and target is
    measured in one batch; only the views that do not fit go through fit_conversation, one by one."""
    prompts = [render_prompt(view, tokenizer, fmt) for view, _ in views]
    prompt_lengths = [len(ids) for ids in encode_all(prompts, tokenizer)]
    target_lengths = [len(ids) for ids in encode_all([target for _, target in views], tokenizer)]
    fitted = []
    for (view, target), prompt, p_len, t_len in zip(views, prompts, prompt_lengths, target_lengths):
        if p_len + t_len + ROOM_FOR_EOS > max_length:
            view = fit_conversation(view, tokenizer, fmt, target, max_length, stats)
            if view is None:
                stats["too_long_for_target"] += 1
            prompt = None if view is None else render_prompt(view, tokenizer, fmt)
        fitted.append((view, prompt))
    return fitted


def build_examples(
    records: list[dict], tokenizer, fmt: FormatConfig, max_length: int, seed: int = 0
) -> tuple[list[dict], Counter]:
    stats: Counter = Counter()
    views = []  # (view, its target)
    for rec in records:
        stats["no_prompt_label"] += lacks_prompt_view(rec, fmt.task)
        for view in task_views(rec, fmt.task):
            shown = apply_dropout(view, fmt.policy, fmt.dropout, seed)
            stats["dropout_flipped_to_safe"] += shown["label"] != view["label"]
            stats["dropout_fewer_categories"] += shown is not view and shown["label"] == view["label"]
            target = render_target(shown, fmt)
            stats["label_only_targets" if not (shown.get("analyze") or "").strip() else "critic_targets"] += 1
            stats["multi_turn"] += bool(context_turns(shown))
            views.append((shown, target))
    fitted = fitted_prompts(views, tokenizer, fmt, max_length, stats)
    examples = [
        {"prompt": prompt, "completion": target, "label": view["label"]}
        for (view, prompt), (_, target) in zip(fitted, views)
        if prompt is not None
    ]
    stats["examples"] = len(examples)
    if stats["no_prompt_label"]:
        log.warning(
            "format.task=%s: %d samples have a response but no meta.query_label, so they give no "
            "prompt-task example (counted as no_prompt_label)",
            fmt.task,
            stats["no_prompt_label"],
        )
    for key in [k for k, v in stats.items() if not v and k != "examples"]:
        del stats[key]  # keep the stats to what happened
    return examples, stats


def label_examples(records: list[dict], tokenizer, fmt: FormatConfig, max_length: int) -> list[dict]:
    """Each record's views as the prompt and the target's opening, followed by the label word alone: the
    loss on these is the verdict's, whatever the target goes on to explain and however well the format
    itself is learnt (early stopping reads it)."""
    views, openings = [], []
    for rec in records:
        for view in task_views(rec, fmt.task):
            # every format has a word for each label the schema admits (safe, unsafe)
            word = {label: w for w, label in label_words(fmt, view).items()}[view["label"]]
            opening = target_opening(fmt, view)
            openings.append((opening, word))
            views.append((view, opening + word))
    fitted = fitted_prompts(views, tokenizer, fmt, max_length, Counter())
    return [
        {"prompt": prompt + opening, "completion": word}
        for (_, prompt), (opening, word) in zip(fitted, openings)
        if prompt is not None
    ]


def tokenize_examples(examples: list[dict], tokenizer, end_of_turn: bool = True) -> list[dict]:
    """Prompt/completion pairs as the ids a stage trains on, tokenized as label-mode scoring, generation
    and libra-serve tokenize a prompt: the rendered text is the whole input, with no special token added.
    Left to TRL, a tokenizer that prepends a BOS to plain text (Llama 3's, for one) would train every
    sample behind a BOS that evaluation and serving never show, and a chat template that writes the BOS
    itself would get two. The completion ends with the end-of-turn token (as TRL adds it); where the
    prompt's last token merges with the completion's first, the completion starts where the two
    tokenizations part (as TRL does). Batched: one call encodes every prompt, one every whole text."""
    eos = tokenizer.eos_token
    completions = [
        e["completion"] + eos if end_of_turn and not e["completion"].endswith(eos) else e["completion"]
        for e in examples
    ]
    prompts = [e["prompt"] for e in examples]
    prompt_ids = encode_all(prompts, tokenizer)
    whole_ids = encode_all([p + c for p, c in zip(prompts, completions)], tokenizer)
    tokenized = []
    for prompt, ids in zip(prompt_ids, whole_ids):
        start = common_prefix(prompt, ids)
        tokenized.append({"input_ids": ids, "completion_mask": [0] * start + [1] * (len(ids) - start)})
    return tokenized
