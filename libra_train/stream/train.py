"""A curriculum stage that trains the stream head (`kind: stream`) from token labels (head.token_labels).
With `backbone: frozen` the previous stage's guard stays as it is and only the head learns; with
`backbone: shared` the guard's weights learn too, with its label-mode loss beside the head's, so that
they stay a guard. Either way its checkpoint is a guard plus the head (stream_head.safetensors and
stream_head.json): one checkpoint serves label mode and streaming. The stage is short: an interrupted
one trains again from its start."""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from libra_train.data.schema import SAFE, UNSAFE
from libra_train.errors import LibraError
from libra_train.stream.head import IGNORE, StreamGuard, StreamHead, token_labels
from libra_train.stream.session import response_spans

log = logging.getLogger(__name__)
HEAD_WEIGHTS, HEAD_CONFIG = "stream_head.safetensors", "stream_head.json"


def has_stream_head(checkpoint: str | Path) -> bool:
    return (Path(checkpoint) / HEAD_CONFIG).is_file()


def attach_stream_head(lm, checkpoint: str | Path) -> StreamGuard:
    """A loaded guard with the stream head saved beside it (a new, untrained head where it has none)."""
    config = json.loads((Path(checkpoint) / HEAD_CONFIG).read_text()) if has_stream_head(checkpoint) else {}
    head = StreamHead(lm.config.hidden_size, config.get("num_categories", 0))
    if config:
        head.load_state_dict(load_file(str(Path(checkpoint) / HEAD_WEIGHTS)))
    return StreamGuard(lm, head.to(lm.device, lm.dtype))


def saved_stop_rule(checkpoint: str | Path) -> dict:
    """The stop rule the stream stage chose for this head: threshold, k and where the threshold came from
    (0.5 and 2 where none is saved: a head saved without one, a hub id, a guard with no head)."""
    config = json.loads((Path(checkpoint) / HEAD_CONFIG).read_text()) if has_stream_head(checkpoint) else {}
    return config.get("stop_rule") or {"threshold": 0.5, "k": 2, "source": "default"}


def load_stream_guard(checkpoint: str | Path, dtype=torch.float32) -> tuple[StreamGuard, object]:
    """The guard at `checkpoint` with its stream head, and its tokenizer."""
    lm = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=dtype)
    return attach_stream_head(lm, checkpoint), AutoTokenizer.from_pretrained(str(checkpoint))


def stream_examples(records: list[dict], tokenizer, max_length: int) -> tuple[list[tuple], dict]:
    """(input ids, token labels) per record with a response, cut at max_length; and their counts."""
    examples, counts = [], {"with_onset": 0, "last_token_only": 0, "safe": 0, "no_response": 0}
    for r in records:
        if not r.get("response"):
            counts["no_response"] += 1
            continue
        onset = (r.get("meta") or {}).get("harm_start")
        prefix, ids, spans = response_spans(tokenizer, r["question"], r["response"])
        labels = token_labels(spans, r["label"], onset)
        room = max_length - len(prefix)
        unsafe = r["label"] == UNSAFE
        counts["safe" if not unsafe else "with_onset" if onset is not None else "last_token_only"] += 1
        if len(ids) > room and onset is None and unsafe:  # the response's label stays on its last kept token
            labels = labels[: room - 1] + [labels[-1]]
        examples.append((prefix + ids[:room], [IGNORE] * len(prefix) + labels[:room]))
    return examples, counts


def _batch(examples: list[tuple], pad_id: int) -> dict:
    width = max(len(ids) for ids, _ in examples)
    ids = [i + [pad_id] * (width - len(i)) for i, _ in examples]
    labels = [lab + [IGNORE] * (width - len(lab)) for _, lab in examples]
    mask = [[1] * len(i) + [0] * (width - len(i)) for i, _ in examples]
    return {
        "input_ids": torch.tensor(ids),
        "attention_mask": torch.tensor(mask),
        "labels": torch.tensor(labels),
    }


def label_queries(records: list[dict], tokenizer, fmt, max_length: int) -> tuple[list[tuple], int]:
    """(context ids, label-word ids, the label's index among them) of every view the guard judges in
    label mode, and how many views were left out for a context longer than max_length."""
    from libra_train.data.formats import task_views
    from libra_train.eval.scoring import LABEL_ORDER, record_label_query

    queries, too_long = [], 0
    for record in records:
        for view in task_views(record, fmt.task):
            context, *words = record_label_query(view, tokenizer, fmt)
            if len(context) >= max_length:
                too_long += 1
                continue
            queries.append((context, words, LABEL_ORDER.index(view["label"])))  # safe or unsafe (schema)
    return queries, too_long


def label_loss(backbone, queries: list[tuple], pad_id: int) -> torch.Tensor:
    """Cross-entropy of the label-mode decision (the next-token logits of the label words): what keeps a
    shared backbone a guard while it learns to stream."""
    from libra_train.eval.scoring import label_logits

    device = next(backbone.parameters()).device
    logits = label_logits(backbone, [q[0] for q in queries], pad_id, device, share_prefix=False)
    words = logits.gather(1, torch.tensor([q[1] for q in queries], device=device)).float()
    return nn.functional.cross_entropy(words, torch.tensor([q[2] for q in queries], device=device))


def hold_out(records: list[dict], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(kept, held out): `share` of the responses of each label held out at random (at least one, and
    never a label's last), for the stop rule to be chosen on responses the head did not learn."""
    rng, out = random.Random(seed), set()
    for label in (SAFE, UNSAFE):
        rows = [i for i, r in enumerate(records) if r.get("response") and r.get("label") == label]
        out.update(rng.sample(rows, min(len(rows) - 1, max(1, round(share * len(rows))))) if rows else [])
    return [r for i, r in enumerate(records) if i not in out], [r for i, r in enumerate(records) if i in out]


def choose_stop_rule(guard: StreamGuard, tokenizer, run, held_out: list[dict], max_length: int) -> dict:
    """The stop rule the checkpoint keeps (stream_head.json): eval.stream_threshold as given, or the
    lowest threshold that stops at most eval.stream_safe_stopped of the safe responses of
    eval.calibration_set (else of the responses held out of the stage's data), with its figures there."""
    from libra_train.data.io import load_records
    from libra_train.stream.metrics import stop_threshold_for, stream_metrics

    k, given = run.eval.stream_k, run.eval.stream_threshold
    if given != "calibrate":
        return {"threshold": given, "k": k, "source": "eval.stream_threshold"}
    name = run.eval.calibration_set
    records = load_records(run.data.eval_sets[name]) if name else held_out
    cases = stream_cases(guard, tokenizer, records, max_length)
    try:
        threshold = stop_threshold_for(cases, k, run.eval.stream_safe_stopped)
    except ValueError as err:
        where = f"eval.calibration_set ({name})" if name else "the responses rule_holdout keeps out"
        raise LibraError(f"eval.stream_threshold=calibrate: {err} in {where}") from None
    where = f"eval set {name}" if name else f"{len(cases)} responses held out of the stage's data"
    figures = stream_metrics(cases, threshold, k)
    return {
        "threshold": threshold,
        "k": k,
        "source": f"calibrated on {where}: at most {run.eval.stream_safe_stopped:g} of its safe ones stopped",
        "on_calibration_set": {key: figures[key] for key in ("n", "on_time", "early_stop", "f1")},
    }


def train_stream_stage(stage, records: list[dict], init_path: str, stage_dir: Path, run) -> dict:
    hp, shared = stage.train, stage.stream.backbone == "shared"
    torch.manual_seed(run.seed)
    held_out: list[dict] = []
    if run.eval.stream_threshold == "calibrate" and run.eval.calibration_set is None:
        records, held_out = hold_out(records, stage.stream.rule_holdout, run.seed)
    guard, tokenizer = load_stream_guard(init_path)
    guard.backbone.requires_grad_(shared)
    examples, counts = stream_examples(records, tokenizer, hp.max_length)
    if not examples:
        raise LibraError(f"{stage.name}: no sample with a response to train a stream head on ({stage.data})")
    groups = [{"params": list(guard.head.parameters()), "lr": hp.learning_rate}]
    queries: list[tuple] = []
    if shared:
        rate = stage.stream.backbone_learning_rate
        groups.append({"params": list(guard.backbone.parameters()), "lr": rate})
        queries, counts["label_views_too_long"] = label_queries(records, tokenizer, run.format, hp.max_length)
        counts["label_views"] = len(queries)
    optimizer = torch.optim.AdamW(groups, weight_decay=hp.weight_decay)
    per_epoch = -(-len(examples) // hp.batch_size)
    steps = hp.max_steps or max(1, round(hp.epochs * per_epoch))
    order, rng, curve = [], random.Random(run.seed), []
    guard.train()
    if not shared:
        guard.backbone.eval()  # frozen: no dropout in it either
    pad_id = tokenizer.pad_token_id or 0
    for step in range(1, steps + 1):
        if len(order) < hp.batch_size:
            order += rng.sample(range(len(examples)), len(examples))
        batch = _batch([examples[i] for i in order[: hp.batch_size]], pad_id)
        del order[: hp.batch_size]
        loss = guard(**batch)["loss"]
        if queries:
            drawn = rng.sample(range(len(queries)), min(hp.batch_size, len(queries)))
            loss = loss + label_loss(guard.backbone, [queries[i] for i in drawn], pad_id)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % hp.logging_steps == 0 or step in (1, steps):
            curve.append((step, round(loss.item(), 4)))
            log.info("%s: step %d/%d loss %.4f", stage.name, step, steps, loss.item())
    rule = choose_stop_rule(guard, tokenizer, run, held_out, hp.max_length)
    log.info(
        "%s: stop rule threshold %.4g, k %d (%s)", stage.name, rule["threshold"], rule["k"], rule["source"]
    )
    save_with_head(guard, init_path, stage_dir / "checkpoint", rule, backbone=shared)
    return {
        "kind": "stream",
        "backbone": stage.stream.backbone,
        "stop_rule": rule,
        "loss_curve": curve,
        "steps": steps,
        "loss_first": curve[0][1],
        "loss_last": curve[-1][1],
        "init_from": str(init_path),
        "data": counts,
    }


def save_with_head(
    guard: StreamGuard, init_path: str, final: Path, rule: dict, backbone: bool = False
) -> None:
    """The guard it started from (its trained weights where `backbone`), and the head beside it: written
    whole, then put in place."""
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(init_path, partial, ignore=shutil.ignore_patterns(HEAD_WEIGHTS, HEAD_CONFIG))
    if backbone:
        guard.backbone.save_pretrained(str(partial))
    state = {k: v.detach().contiguous() for k, v in guard.head.state_dict().items()}
    save_file(state, str(partial / HEAD_WEIGHTS))
    categories = guard.head.category.out_features if guard.head.category is not None else 0
    config = {
        "hidden_size": guard.head.proj.in_features,
        "num_categories": categories,
        "prefix": "用户：{question}\n助手：",
        "stop_rule": {key: rule[key] for key in ("threshold", "k", "source")},
    }
    (partial / HEAD_CONFIG).write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)


@torch.no_grad()
def stream_cases(guard: StreamGuard, tokenizer, records: list[dict], max_length: int) -> list:
    """Each response's p(unsafe) after every token, from one pass (a causal model scores token t from
    the tokens up to t only: what a session streaming it would give), and its onset token."""
    from libra_train.stream.head import p_unsafe
    from libra_train.stream.metrics import StreamCase

    guard.eval()
    cases = []
    for r in records:
        if not r.get("response") or r.get("label") is None:
            continue
        prefix, ids, spans = response_spans(tokenizer, r["question"], r["response"])
        ids = ids[: max_length - len(prefix)]
        risk = guard(torch.tensor([prefix + ids]))["risk_logits"][0, len(prefix) :]
        onset = (r.get("meta") or {}).get("harm_start")
        onset_token = (
            next((i for i, (_, end) in enumerate(spans) if end > onset), None) if onset is not None else None
        )
        cases.append(StreamCase(p_unsafe(risk).tolist(), r["label"] == UNSAFE, onset_token))
    return cases


def evaluate_stream(checkpoint: Path, run, eval_dir: Path, max_length: int) -> dict:
    """The stop rule over every eval set's responses: each set's `"stream"` figures, added to its
    metrics.json and returned by set."""
    from libra_train.data.io import atomic_write_text, load_records
    from libra_train.stream.metrics import stream_metrics

    guard, tokenizer = load_stream_guard(checkpoint)
    rule = saved_stop_rule(checkpoint)
    results = {}
    for name, path in run.data.eval_sets.items():
        cases = stream_cases(guard, tokenizer, load_records(path), max_length)
        figures = {**stream_metrics(cases, rule["threshold"], rule["k"]), "rule_source": rule["source"]}
        metrics_path = eval_dir / name / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        atomic_write_text(
            metrics_path, json.dumps({**metrics, "stream": figures}, ensure_ascii=False, indent=2)
        )
        log.info(
            "%s, stream on %s: f1 %.4f · on time %s · safe stopped %s · median latency %s tokens",
            checkpoint.parent.name, name, figures["f1"], figures["on_time"],
            figures["early_stop"]["safe"], figures["latency_tokens"]["median"],
        )  # fmt: skip
        results[name] = figures
    return results
