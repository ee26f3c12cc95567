"""The synthesis pipeline: plan → query → responses → judges → dedup → balance → split files + stats."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path

from data_synth import lexicon as lx
from data_synth.compose import HELD_OUT_STYLE, add_context, compose_query, minimal_pair, plan_sample
from data_synth.config import SynthConfig, register
from data_synth.dedup import NearDuplicateIndex
from data_synth.judges import ChatJudge, OfflineKeywordJudge, OfflineRuleJudge, combine_verdicts
from data_synth.responders import ChatResponder, OfflineResponder, sample_rng
from libra_train.chat.openai_chat import Failed
from libra_train.data.io import atomic_write_text, to_jsonl
from libra_train.data.schema import LABELS
from libra_train.errors import ConfigError

log = logging.getLogger(__name__)
SPLITS = ("stage1", "stage2", "heldout", "dev")  # dev last: an earlier split never loses a sample to it


def splits_of(cfg) -> tuple[str, ...]:
    """The splits this synthesis writes: dev only where its ratio is above 0."""
    return tuple(s for s in SPLITS if s != "dev" or cfg.split_ratios.dev > 0)


def chat_backend(spec: dict, cfg, cache_dir: Path):
    backend = spec.get("backend", cfg.backend)
    if backend == "openai":
        from libra_train.chat.openai_chat import OpenAIChat

        opts = {**cfg.openai, **{k: v for k, v in spec.items() if k != "backend"}}
        name = opts.pop("name", None) or opts["model"]
        return OpenAIChat(**opts, name=name, cache_path=cache_dir / f"{_safe(name)}.sqlite")
    if backend == "hf":
        from data_synth.backends.hf_chat import HFChat

        opts = {**cfg.hf, **{k: v for k, v in spec.items() if k != "backend"}}
        name = opts.pop("name", None) or str(opts["model_path"])
        return HFChat(**opts, name=name, cache_path=cache_dir / f"{_safe(name)}.sqlite")
    raise ConfigError("backend", f"unknown backend {backend!r}; allowed: offline, openai, hf")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def build_agents(cfg, cache_dir: Path):
    """Responders by name, and the judges in order (the first is primary)."""
    responders, judges = {}, []
    for spec in cfg.responders or [{"backend": cfg.backend}]:
        spec = dict(spec)
        if spec.get("backend", cfg.backend) == "offline":
            styles = (*lx.RESPONDERS, lx.HELDOUT_RESPONDER)  # the last one writes held-out samples only
            responders.update({name: OfflineResponder(cfg.seed) for name in styles})
        else:
            chat = chat_backend(spec, cfg, cache_dir)
            responders[chat.name] = ChatResponder(chat, spec.get("system_prompt", ""))
    for spec in cfg.judges or [{"backend": cfg.backend}]:
        spec = dict(spec)
        if spec.get("backend", cfg.backend) == "offline":
            judges += [OfflineRuleJudge(), OfflineKeywordJudge()]
        else:
            judges.append(ChatJudge(chat_backend(spec, cfg, cache_dir)))
    return responders, judges


def split_quotas(cfg) -> dict[str, int]:
    ratios = {s: getattr(cfg.split_ratios, s) for s in splits_of(cfg)}
    if cfg.num_samples < 3 * len(cfg.taxonomy) * 2:
        raise ConfigError("num_samples", "too small: each split needs every category × label cell")
    total = sum(ratios.values())
    return {s: max(len(cfg.taxonomy) * 2, round(cfg.num_samples * ratios[s] / total)) for s in ratios}


def plan_queries(cfg, quotas: dict[str, int], responder_names: list[str]) -> list[dict]:
    taxonomy = {k: dict(v) for k, v in cfg.taxonomy.items()}
    samples = []
    for split in quotas:
        for index in range(math.ceil(quotas[split] * cfg.oversample)):
            sid = f"{split}-{index:06d}"
            rng = sample_rng(cfg.seed, sid)
            plan = plan_sample(rng, split, index, taxonomy, responder_names)
            query = compose_query(rng, plan, taxonomy, heldout=split in HELD_OUT_STYLE)
            samples.append(_planned(sid, split, plan, query))
            twin = minimal_pair(sample_rng(cfg.seed, sid + ":pair"), plan, sid)
            if twin is not None:  # the same question, answered helpfully in the same layout
                samples.append(_planned(f"{sid}-pair", split, twin, query))
    return samples


def _planned(sid: str, split: str, plan, query: dict) -> dict:
    return {
        "id": sid,
        "source": "Synthetic Data",
        "category_name": plan.category,
        "sub_category_name": plan.sub_category if plan.attack != "benign" else "",
        "question": query["question"],
        "response": "",
        "label": None,
        "analyze": "",
        "meta": {
            "split": split,
            "plan": vars(plan),
            "attack_method": plan.attack,
            "response_shape": plan.shape,
            "responder": plan.responder,
            "difficulty": plan.difficulty,
            "subject": query["subject"],
            "query_template": query["template"],
            "element": query["element"],
            "query_label": query["query_label"],
            **({"pair": plan.pair_of} if plan.pair_of else {}),
        },
    }


def respond(samples: list[dict], responders: dict, stats: Counter) -> list[dict]:
    """Fill each sample's response; returns the samples whose responder request failed for good, each
    with its reason (they go to rejected.jsonl, not to the judges)."""
    by_responder: dict[str, list[dict]] = {}
    for s in samples:
        by_responder.setdefault(s["meta"]["responder"], []).append(s)
    failed = []
    for name, group in by_responder.items():
        for s, text in zip(group, responders[name].respond(group)):
            if isinstance(text, Failed):
                stats[f"responder_request_failed/{name}"] += 1
                failed.append({**s, "response": "", "reason": f"responder request failed ({text.reason})"})
            else:
                s["response"] = text
    return failed


def dedup(samples: list[dict], cfg, stats: Counter) -> list[dict]:
    """One index over all splits in order, so nothing in a later split near-duplicates an earlier one."""
    index = NearDuplicateIndex(cfg.dedup.threshold, cfg.dedup.num_perm, cfg.dedup.ngram, seed=cfg.seed + 1)
    kept = []
    for s in samples:
        why = index.offer(s["id"], s)
        if why is None:
            kept.append(s)
        else:
            stats[f"dedup_{why}/{s['meta']['split']}"] += 1
    return kept


def balance(samples: list[dict], quota: int, categories: list[str], stats: Counter, split: str) -> list[dict]:
    """Equal counts per category × label cell, up to the split's quota; a short cell is reported."""
    cells: dict[tuple, list[dict]] = {(c, lab): [] for c in categories for lab in LABELS}
    for s in samples:
        cells.setdefault((s["category_name"], s["label"]), []).append(s)
    per_cell = quota // len(cells)
    out = []
    for key, group in cells.items():
        if len(group) < per_cell:
            stats[f"short_cell/{split}"] += 1
            log.warning("%s: cell %s has %d samples, wanted %d", split, key, len(group), per_cell)
        out.extend(group[:per_cell])
    return sorted(out, key=lambda s: s["id"])


def make_multi_turn(samples: list[dict], cfg, split: str, stats: Counter) -> list[dict]:
    """A share (cfg.multi_turn_share) of the split's samples, drawn per sample id, become conversations:
    after the judges and balancing, so labels and cell counts are those of the judged exchange."""
    out = []
    for s in samples:
        rng = sample_rng(cfg.seed, s["id"] + ":turns")
        if rng.random() < cfg.multi_turn_share:
            s = add_context(rng, s, heldout=split in HELD_OUT_STYLE)
            stats[f"multi_turn/{split}"] += 1
        out.append(s)
    return out


def offline_config(**overrides) -> SynthConfig:
    """conf/synth.yaml composed outside the libra-synth app (libra-train's data step, the benchmarks),
    `overrides` merged on top, and built and checked into the SynthConfig libra-synth builds."""
    from omegaconf import OmegaConf, open_dict

    from libra_train.cli_utils import compose_config

    register()  # again: a sweep's joblib worker may hold a config store without it
    cfg = compose_config("synth")
    with open_dict(cfg):
        cfg.pop("hydra", None)
        cfg.merge_with(OmegaConf.create(overrides))
    return SynthConfig.from_hydra(cfg)


def check_run_data_options(options: dict, key: str) -> None:
    """libra-train's config check calls this before any work, so a mistyped `data.prepare` option of the
    synthesis is named there as every other key is (the same SynthConfig, the key prefixed)."""
    try:
        offline_config(output_dir="data", cache_dir=None, **options)
    except ConfigError as err:
        raise ConfigError(f"{key}.{err.key}", err.message) from None


def synthesize_run_data(output_dir: str, **options) -> dict:
    """The data-preparation step that libra-train's `data.prepare` names: offline synthesis into the
    run's data folder (stage1, stage2, heldout), no completion cache."""
    from omegaconf import OmegaConf

    plain = {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for k, v in options.items()}
    summary = synthesize(offline_config(output_dir=output_dir, cache_dir=None, **plain))
    # One line: the category table stays in stats.json and stats.png, so the run's console fits a screen.
    log.info(
        "synthesized %s (%d rejected); counts by category × label in %s",
        ", ".join(f"{k}={v}" for k, v in summary["totals"].items()),
        summary["rejected"],
        Path(output_dir) / "stats.json",
    )
    return summary


synthesize_run_data.check_options = check_run_data_options  # read by libra-train's data.prepare check


def synthesize(cfg: SynthConfig) -> dict:
    out_dir = Path(cfg.output_dir)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out_dir / "cache"
    stats: Counter = Counter()
    responders, judges = build_agents(cfg, cache_dir)
    quotas = split_quotas(cfg)
    samples = plan_queries(cfg, quotas, sorted(responders))
    failed = respond(samples, responders, stats)
    failed_ids = {s["id"] for s in failed}
    answered = [s for s in samples if s["id"] not in failed_ids]
    labelled, rejected = combine_verdicts(answered, judges, cfg.annotation.on_disagreement, stats)
    rejected = failed + rejected
    kept = dedup(labelled, cfg, stats)
    splits = {}
    for split in quotas:
        chosen = balance(
            [s for s in kept if s["meta"]["split"] == split], quotas[split], list(cfg.taxonomy), stats, split
        )
        for s in chosen:
            s["meta"].pop("plan", None)
            s["meta"].pop("subject", None)
        splits[split] = make_multi_turn(chosen, cfg, split, stats)
    return write_outputs(out_dir, splits, rejected, stats)


def write_outputs(out_dir: Path, splits: dict, rejected: list, stats: Counter) -> dict:
    from data_synth.stats import render_stats

    for split, records in splits.items():
        atomic_write_text(out_dir / f"{split}.jsonl", to_jsonl(records))
    if rejected:
        atomic_write_text(out_dir / "rejected.jsonl", to_jsonl(rejected))
    summary = render_stats(out_dir, splits, stats, len(rejected))
    atomic_write_text(out_dir / "stats.json", json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return summary
