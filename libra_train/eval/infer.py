"""`libra-infer`: one shard (machine_rank of machine_num) of a data set through a guard, resumable."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from libra_train.command_config import InferConfig, check_machine
from libra_train.data.formats import (
    FormatConfig,
    eval_views,
    refuse_untrained_task,
    render_prompt,
    render_target,
)
from libra_train.data.io import atomic_write_text, load_records, to_jsonl
from libra_train.data.recorded_format import trained_task
from libra_train.errors import ConfigError
from libra_train.eval.decision import command_decision
from libra_train.eval.endpoint import is_endpoint, predict_endpoint
from libra_train.eval.evaluator import predict
from libra_train.eval.scoring import resolve_mode
from libra_train.export.classifier import write_classifier_inputs
from libra_train.model import default_device, is_classifier, load_configured, load_tokenizer
from libra_train.progress import progress
from libra_train.runtime import distributed as dist

log = logging.getLogger(__name__)


def shard(records: list[dict], rank: int, num: int) -> list[dict]:
    check_machine(rank, num)
    return records[rank::num]


def write_prompts(records: list[dict], tokenizer, fmt: FormatConfig, out_path: Path) -> Path:
    """One line per view libra-infer scores (the views training makes): id, the exact model input (chat
    template applied) and the target training would teach (null for an unlabelled sample, and for a
    format no guard is trained in; `no_target` says why where the sample lacks what the target needs)."""
    rows = []
    for view in eval_views(records, fmt.task)[0]:
        row = {"id": view["id"], "prompt": render_prompt(view, tokenizer, fmt), "target": None}
        if view.get("label") and fmt.trainable:
            try:
                row["target"] = render_target(view, fmt)
            except ConfigError as err:  # a prompt needs no target: say why this one has none
                row["no_target"] = err.message
        rows.append(row)
    atomic_write_text(out_path, to_jsonl(rows))
    return out_path


def run_inference(cfg: InferConfig) -> Path:
    fmt = cfg.format.load_files()
    if cfg.mode == "prompts":  # the exact model input, for debugging templates: no weights are loaded
        records = load_records(cfg.data, require_label=False)
        tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code)
        out_path = Path(cfg.output_dir) / "prompts.jsonl"
        if is_classifier(cfg.model):  # what the classifier reads: the prompt up to the label
            return write_classifier_inputs(records, tokenizer, fmt, cfg.model, out_path)
        return write_prompts(records, tokenizer, fmt, out_path)
    mode = "generate" if is_endpoint(cfg.model) else resolve_mode(cfg.mode, fmt)
    # Under torchrun every process is one more shard: machine R of M with W ranks each is shard R*W+rank
    # of M*W, so the folder libra-eval reads holds the same files whichever way the work was split.
    rank, world = dist.rank(), dist.world_size()
    index, total = cfg.machine_rank * world + rank, cfg.machine_num * world
    records = shard(load_records(cfg.data, require_label=False), index, total)
    records, lacking = eval_views(records, fmt.task)  # the views training makes (format.task)
    refuse_untrained_task(records, fmt, trained_task(cfg.model), cfg.model)
    if lacking:
        log.warning("%d labelled samples have no prompt-level label, so no prompt view", lacking)
    out_path = Path(cfg.output_dir) / f"{index}-of-{total}.jsonl"
    if out_path.exists():
        log.info("%s is complete already", out_path)
        return out_path
    if is_endpoint(cfg.model):
        options = {"max_new_tokens": cfg.max_new_tokens, "controversial_as": cfg.controversial_as}
        return predict_endpoint(cfg.model, asdict(cfg.openai), records, fmt, out_path, **options)
    decision = command_decision(cfg.threshold, cfg.model)
    model, tokenizer = load_configured(cfg.model, cfg)
    model.to(dist.local_device() if cfg.device == "auto" else default_device(cfg.device))
    if mode == "label":
        log.info("deciding %s", decision)
    with progress(f"libra-infer ({mode})", len(records)) as advance:
        predict(
            model,
            tokenizer,
            records,
            fmt,
            out_path,
            mode=mode,
            batch_size=cfg.batch_size,
            max_new_tokens=cfg.max_new_tokens,
            progress=advance,
            decision=decision,
            controversial_as=cfg.controversial_as,
        )
    return out_path
