"""Running a guard over samples: `label` mode (one forward pass) and `generate` mode (greedy decoding).

`label` mode reads the next-token probabilities of 安全 vs 不安全 right after the fixed target
opening `{"答案": "`, at their first differing token. Batches are sorted by length to cut padding.
"""

from __future__ import annotations

import torch

from libra_train.config_checks import check_mode
from libra_train.config_groups import EvalMode
from libra_train.data.formats import FormatConfig, label_words, render_prompt, target_opening
from libra_train.data.peers import CONTROVERSIAL
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.errors import ConfigError
from libra_train.eval.decision import Decision
from libra_train.eval.parse import read_output
from libra_train.typed import check_value


def label_probabilities(probs: list[float], labels: tuple, controversial_as: str = "unsafe") -> dict:
    """p_unsafe from the label words' probabilities. A third, controversial verdict (ShieldLM, Qwen3Guard)
    counts as unsafe or as safe by eval.controversial_as; the three are kept as p_labels."""
    by_label = dict(zip(labels, probs))
    p_unsafe = by_label[UNSAFE] + (by_label.get(CONTROVERSIAL, 0.0) if controversial_as == "unsafe" else 0.0)
    if CONTROVERSIAL not in by_label:
        return {"p_unsafe": p_unsafe}
    return {"p_unsafe": p_unsafe, "p_labels": by_label, "controversial_as": controversial_as}


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def label_query(prompt: str, tokenizer, opening: str, words=(SAFE, UNSAFE)) -> tuple:
    """(context ids, then one token id per label word): the context runs up to where the words' token
    sequences part. Each is tokenized whole, so a BPE merge across the opening's last character is
    respected. Words are given in label order: safe, unsafe, then controversial where a guard has it."""
    ids = [tokenizer(prompt + opening + w, add_special_tokens=False)["input_ids"] for w in words]
    n = min(common_prefix(ids[0], other) for other in ids[1:])
    firsts = [row[n] if n < len(row) else None for row in ids]
    if None in firsts or len(set(firsts)) < len(firsts):
        raise ValueError(f"the label words {list(words)} do not part at one token after {opening!r}")
    return (ids[0][:n], *firsts)


def record_label_query(record: dict, tokenizer, fmt: FormatConfig) -> tuple:
    """The label query a record is scored by (label_query, words in label order). Evaluation and
    libra-serve both build it here, so a served guard scores a record exactly as its evaluation did."""
    opening = target_opening(fmt, record)
    if opening is None:
        raise ConfigError(
            "mode",
            f"format.prompt={fmt.prompt} writes sample {record.get('id')!r}'s verdict after generated "
            "text: label mode cannot reach it; use mode=generate",
        )
    words = _ordered_words(fmt, record)
    return label_query(render_prompt(record, tokenizer, fmt), tokenizer, opening, words)


LABEL_ORDER = (SAFE, UNSAFE, CONTROVERSIAL)
DEFAULT_DECISION = Decision()  # unsafe when p_unsafe > 0.5


def _ordered_words(fmt: FormatConfig, record: dict) -> tuple:
    by_label = {label: word for word, label in label_words(fmt, record).items()}
    return tuple(by_label[label] for label in LABEL_ORDER if label in by_label)


def _left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r)
        mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def _batches(order: list[int], lengths: list[int], batch_size: int, max_batch_tokens: int | None):
    """Consecutive groups of the length-sorted order, capped by count and by padded tokens."""
    batch: list[int] = []
    for i in order:
        longest = max([lengths[j] for j in batch] + [lengths[i]])
        if batch and (
            len(batch) >= batch_size or (max_batch_tokens and longest * (len(batch) + 1) > max_batch_tokens)
        ):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def label_logits(model, rows: list[list[int]], pad_id: int, device, share_prefix: bool) -> torch.Tensor:
    """Next-token logits after each row. Every prompt opens with the same system prompt, so the
    batch's shared token prefix is run once (one row) and its KV cache reused for all rows: that
    prefix is most of a guard prompt, and computing it B times is most of the cost."""
    shared = 0
    if share_prefix and len(rows) > 1:
        shared = min(common_prefix(rows[0], r) for r in rows[1:])
        shared = min(shared, min(len(r) for r in rows) - 1)  # every row keeps a token of its own
    if shared < 8:
        ids, mask = _left_pad(rows, pad_id, device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count from each row's first real token
        return model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits[
            :, -1
        ]
    cache = model(input_ids=torch.tensor([rows[0][:shared]], device=device), use_cache=True).past_key_values
    cache.batch_repeat_interleave(len(rows))
    ids, mask = _left_pad([r[shared:] for r in rows], pad_id, device)
    # Padding now sits between the shared prefix and each row's own tokens; the mask hides it and the
    # positions skip it, so each row sees exactly prefix + its own tokens.
    full_mask = torch.cat([torch.ones(len(rows), shared, dtype=mask.dtype, device=device), mask], 1)
    positions = (full_mask.cumsum(-1) - 1)[:, shared:]
    return model(
        input_ids=ids,
        attention_mask=full_mask,
        position_ids=positions,
        past_key_values=cache,
        logits_to_keep=1,
    ).logits[:, -1]


@torch.no_grad()
def score_labels(
    model,
    tokenizer,
    records: list[dict],
    fmt: FormatConfig,
    batch_size: int = 16,
    max_batch_tokens: int | None = None,
    on_batch=None,
    share_prefix: bool = True,
    decision: Decision | None = DEFAULT_DECISION,
    controversial_as: str = "unsafe",
) -> list[dict]:
    """One forward pass per batch; p_unsafe per record, in input order (on_batch sees the batches as they
    are scored), each decided by `decision` at the end (None: the probabilities alone, to be decided
    later, as the evaluator does once its threshold is chosen)."""
    queries = [record_label_query(r, tokenizer, fmt) for r in records]
    scored = score_label_queries(
        model, tokenizer, queries, batch_size, max_batch_tokens, on_batch, share_prefix, controversial_as
    )
    return scored if decision is None else [decision.apply(s) for s in scored]


@torch.no_grad()
def score_label_queries(
    model,
    tokenizer,
    queries: list[tuple[list[int], int, int]],
    batch_size: int = 16,
    max_batch_tokens: int | None = None,
    on_batch=None,
    share_prefix: bool = True,
    controversial_as: str = "unsafe",
) -> list[dict]:
    """p_unsafe (and, for a three-way format, p_labels) of label queries already built
    (record_label_query): libra-serve builds them in each request's handler, so that its model worker
    only runs the model. No label is decided here: eval/decision.py does that, for every command."""
    model.eval()
    lengths = [len(q[0]) for q in queries]
    order = sorted(range(len(queries)), key=lambda i: lengths[i], reverse=True)
    results: list[dict | None] = [None] * len(queries)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    for batch in _batches(order, lengths, batch_size, max_batch_tokens):
        logits = label_logits(model, [queries[i][0] for i in batch], pad_id, device, share_prefix)
        ids = torch.tensor([queries[i][1:] for i in batch], device=device)  # one row of label ids each
        probs = torch.softmax(logits.gather(1, ids).float(), dim=-1).tolist()
        done = []
        for i, p in zip(batch, probs):
            results[i] = label_probabilities(p, LABEL_ORDER[: len(p)], controversial_as)  # the query's order
            done.append(i)
        if on_batch:
            on_batch(done, results)
    return results


@torch.no_grad()
def generate_labels(
    model,
    tokenizer,
    records: list[dict],
    fmt: FormatConfig,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    on_batch=None,
    controversial_as: str = "unsafe",
) -> list[dict]:
    """Greedy decoding, then parsing by the format's own rules; p_unsafe is None (no score here)."""
    model.eval()
    prompts = [
        tokenizer(render_prompt(r, tokenizer, fmt), add_special_tokens=False)["input_ids"] for r in records
    ]
    order = sorted(range(len(records)), key=lambda i: len(prompts[i]), reverse=True)
    results: list[dict | None] = [None] * len(records)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    for batch in _batches(order, [len(p) for p in prompts], batch_size, None):
        ids, mask = _left_pad([prompts[i] for i in batch], pad_id, device)
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        for i, row in zip(batch, out[:, ids.shape[1] :]):
            text = tokenizer.decode(row, skip_special_tokens=True)
            read = read_output(text, records[i], fmt, controversial_as)
            results[i] = {**read, "p_unsafe": None, "critic": text}
        if on_batch:
            on_batch(batch, results)
    return results


def resolve_mode(mode: str | None, fmt: FormatConfig) -> str:
    """`auto` (or none): label mode where the label comes first, else generate. A mode a command's
    config gave was checked there (config_checks.check_mode)."""
    if mode in (None, "auto"):
        return "label" if fmt.label_first else "generate"
    check_value(mode, EvalMode, "mode")  # a caller without a typed config gets the configs' own checks
    check_mode(mode, fmt, "mode")
    return mode
