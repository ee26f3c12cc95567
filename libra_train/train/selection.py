"""Hard-sample selection for stage 2 (`libra-mine`, and `select: hard` in a curriculum stage).

A pool of labelled real samples is scored by one or more guards in `label` mode. A sample is hard
when the guards' mean p_unsafe gets it wrong (misclassified), sits within `margin` of 0.5 (low
margin), or the guards disagree. The chosen set mixes hard samples with a share of easy ones (against
forgetting), picked round-robin over label × category cells so it stays balanced, deterministically.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from libra_train.data.conversation import category_key
from libra_train.data.schema import UNSAFE
from libra_train.errors import ConfigError

log = logging.getLogger(__name__)
CRITERIA = ("misclassified", "low_margin", "disagreement")


@dataclass
class SelectionConfig:
    budget: int | None = field(
        default=None, metadata={"help": "samples to choose; null: every hard sample, plus the easy share"}
    )
    easy_share: float = field(default=0.2, metadata={"help": "share of the chosen set that is easy"})
    margin: float = field(default=0.1, metadata={"help": "low margin: |p_unsafe - 0.5| < margin"})
    criteria: list = field(
        default_factory=lambda: list(CRITERIA), metadata={"help": f"what makes a sample hard: {CRITERIA}"}
    )
    seed: int = field(default=0, metadata={"help": "fixes the order of ties and of the easy samples"})

    def __post_init__(self):
        if self.budget is not None and (not isinstance(self.budget, int) or self.budget < 1):
            raise ConfigError("budget", f"must be a positive whole number or null, got {self.budget!r}")
        if not 0 <= self.easy_share < 1:
            raise ConfigError("easy_share", f"must be in [0, 1), got {self.easy_share}")
        if not 0 < self.margin <= 0.5:
            raise ConfigError("margin", f"must be in (0, 0.5], got {self.margin}")
        unknown = [c for c in self.criteria if c not in CRITERIA]
        if unknown or not self.criteria:
            raise ConfigError("criteria", f"{unknown or '[]'} — allowed: {', '.join(CRITERIA)}")


def _tiebreak(seed: int, sample_id) -> str:
    return hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest()


def judge_sample(record: dict, p_per_guard: list[float], cfg: SelectionConfig) -> dict:
    p = sum(p_per_guard) / len(p_per_guard)
    gold_unsafe = record["label"] == UNSAFE
    found = {
        "misclassified": (p > 0.5) != gold_unsafe,
        "low_margin": abs(p - 0.5) < cfg.margin,
        "disagreement": len({q > 0.5 for q in p_per_guard}) > 1,
    }
    reasons = [c for c in CRITERIA if found[c] and c in cfg.criteria]
    return {"p_unsafe": p, "per_guard": list(p_per_guard), "reasons": reasons}


def _round_robin(groups: dict[tuple, list], count: int) -> list:
    """Take one from each cell in turn (cells in sorted order), so small cells are not crowded out."""
    queues = [list(groups[k]) for k in sorted(groups)]
    chosen = []
    while len(chosen) < count and any(queues):
        for q in queues:
            if q and len(chosen) < count:
                chosen.append(q.pop(0))
    return chosen


def select(pool: list[dict], scores: dict[str, list[float]], cfg: SelectionConfig) -> tuple[list[dict], dict]:
    """The chosen samples (pool order) with meta.difficulty and meta.selection, and a summary."""
    missing = [r["id"] for r in pool if str(r["id"]) not in scores]
    if missing:
        raise ConfigError("scores", f"{len(missing)} pool samples have no score, e.g. id {missing[0]!r}")
    judged = [(i, r, judge_sample(r, scores[str(r["id"])], cfg)) for i, r in enumerate(pool)]
    hard_cells: dict[tuple, list] = {}
    easy_cells: dict[tuple, list] = {}
    for item in judged:
        cell = (item[1]["label"], category_key(item[1]))
        (hard_cells if item[2]["reasons"] else easy_cells).setdefault(cell, []).append(item)
    for items in hard_cells.values():  # hardest first: wrong before right, then closest to the boundary
        items.sort(
            key=lambda it: (
                "misclassified" not in it[2]["reasons"],
                abs(it[2]["p_unsafe"] - 0.5),
                _tiebreak(cfg.seed, it[1]["id"]),
            )
        )
    for items in easy_cells.values():  # easy ones at random, fixed by seed
        items.sort(key=lambda it: _tiebreak(cfg.seed, it[1]["id"]))
    n_hard_pool, n_easy_pool = (sum(len(v) for v in c.values()) for c in (hard_cells, easy_cells))
    if cfg.budget is None:
        want_hard = n_hard_pool
        want_easy = round(want_hard * cfg.easy_share / (1 - cfg.easy_share))
    else:
        want_easy = round(cfg.budget * cfg.easy_share)
        want_hard = cfg.budget - want_easy
    # A short side is filled from the other (and the shortfall reported) rather than missing the budget.
    take_hard, take_easy = min(want_hard, n_hard_pool), min(want_easy, n_easy_pool)
    spare = want_hard + want_easy - take_hard - take_easy
    extra_hard = min(spare, n_hard_pool - take_hard)
    take_hard += extra_hard
    take_easy += min(spare - extra_hard, n_easy_pool - take_easy)
    chosen = [(it, "hard") for it in _round_robin(hard_cells, take_hard)]
    chosen += [(it, "easy") for it in _round_robin(easy_cells, take_easy)]
    chosen.sort(key=lambda c: c[0][0])
    out = []
    for (_, record, verdict), difficulty in chosen:
        meta = {**(record.get("meta") or {}), "difficulty": difficulty, "selection": verdict}
        out.append({**record, "meta": meta})
    summary = {
        "pool": len(pool),
        "hard_in_pool": n_hard_pool,
        "chosen": len(out),
        "hard": take_hard,
        "easy": take_easy,
        "wanted_hard": want_hard,
        "wanted_easy": want_easy,
        "reasons": {c: sum(c in it[2]["reasons"] for it, _ in chosen) for c in CRITERIA},
    }
    if take_hard < want_hard or take_easy < want_easy:
        log.warning(
            "selection: wanted %d hard + %d easy, the pool gave %d + %d",
            want_hard,
            want_easy,
            take_hard,
            take_easy,
        )
    return out, summary


def score_pool(
    pool: list[dict],
    guards: list[str],
    fmt,
    work_dir: Path,
    batch_size: int = 32,
    trust_remote_code: bool = False,
    rank: int = 0,
    world: int = 1,
) -> dict[str, list[float]] | None:
    """p_unsafe of every pool sample under each guard; each guard's scores are written as they come
    (libra-infer's resumable writer), so an interrupted selection does not score twice. Under several
    ranks each scores its share (pool[rank::world]) and returns None: read_scores merges the shares
    once every rank is done."""
    from libra_train.eval.evaluator import predict
    from libra_train.model import load_model_and_tokenizer
    from libra_train.progress import progress
    from libra_train.train.distributed import local_device

    mine = pool[rank::world]
    for k, guard in enumerate(guards):
        model, tokenizer = load_model_and_tokenizer(guard, trust_remote_code)
        model.to(local_device())
        with progress(f"selection: guard {k + 1}/{len(guards)} scores the pool", len(mine)) as advance:
            predict(
                model,
                tokenizer,
                mine,
                fmt,
                _scores_file(work_dir, k, rank, world),
                mode="label",
                batch_size=batch_size,
                progress=advance,
            )
        del model
    return read_scores(pool, len(guards), work_dir, world) if world == 1 else None


def _scores_file(work_dir: Path, guard: int, rank: int, world: int) -> Path:
    return Path(work_dir) / (
        f"guard-{guard}.jsonl" if world == 1 else f"guard-{guard}.rank{rank}-of-{world}.jsonl"
    )


def read_scores(pool: list[dict], n_guards: int, work_dir: Path, world: int = 1) -> dict[str, list[float]]:
    """Every pool sample's p_unsafe under each guard, from the score files of all ranks."""
    from libra_train.data.io import read_raw

    scores: dict[str, list[float]] = {str(r["id"]): [] for r in pool}
    for k in range(n_guards):
        files = [_scores_file(work_dir, k, rank, world) for rank in range(world)]
        got = {str(i.record["id"]): float(i.record["p_unsafe"]) for f in files for i in read_raw(f)}
        missing = [i for i in scores if i not in got]
        if missing:
            raise ConfigError(
                "selection", f"guard {k} has no score for {len(missing)} pool samples ({missing[:3]})"
            )
        for i in scores:
            scores[i].append(got[i])
    return scores


def selection_config(cfg) -> SelectionConfig:
    return SelectionConfig(
        budget=cfg.get("budget"),
        easy_share=float(cfg.get("easy_share", 0.2)),
        margin=float(cfg.get("margin", 0.1)),
        criteria=list(cfg.get("criteria", CRITERIA)),
        seed=int(cfg.get("seed", 0)),
    )


def guard_list(model) -> list[str]:
    guards = [model] if isinstance(model, str) else [str(m) for m in model]
    if not guards:
        raise ConfigError("model", "name at least one guard")
    return guards


def select_hard(
    pool: list[dict],
    guards: list[str],
    fmt,
    work_dir: Path,
    cfg: SelectionConfig,
    batch_size: int = 32,
    trust_remote_code: bool = False,
) -> tuple[list[dict], dict]:
    scores = score_pool(pool, guards, fmt, work_dir, batch_size, trust_remote_code)
    chosen, summary = select(pool, scores, cfg)
    return chosen, {**summary, "guards": guards}


def select_file(cfg) -> dict:
    """`libra-mine`: pool file → chosen samples file (+ OUTPUT.scores/ with each guard's scores)."""
    from libra_train.data.formats import FormatConfig
    from libra_train.data.io import load_records, write_records

    selection = selection_config(cfg)
    fmt = FormatConfig.from_cfg(cfg.format)
    if not fmt.label_first:
        raise ConfigError(
            "format", "selection scores in label mode, which needs the label first (not format=front)"
        )
    pool = load_records(cfg.pool)
    output = Path(cfg.output)
    chosen, summary = select_hard(
        pool,
        guard_list(cfg.model),
        fmt,
        Path(f"{output}.scores"),
        selection,
        int(cfg.batch_size),
        bool(cfg.trust_remote_code),
    )
    write_records(chosen, output)
    return {**summary, "output": str(output)}
