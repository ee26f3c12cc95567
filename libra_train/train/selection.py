"""Sample selection for stage 2 (`libra-mine`, and `select: hard` or `select: random` in a curriculum
stage).

A pool of labelled real samples is scored by one or more guards in `label` mode, each deciding as it
does everywhere (its saved threshold and temperature: eval/decision.py). A sample is hard when the
guards' mean p_unsafe gets it wrong against their mean threshold (misclassified), sits within `margin`
of it (low margin), or the guards' own decisions disagree. One they get wrong by more than
`noise_margin` is left out, as a likely wrong label. The chosen set mixes hard samples with a share of
easy ones (against forgetting), picked round-robin over label × category cells so it stays balanced,
deterministically. `select: random` draws the same budget over the same cells with no guard: the
baseline a hard selection is measured against.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from libra_train.command_config import MineConfig
from libra_train.config_checks import require_label_first
from libra_train.config_groups import CRITERIA, SelectionConfig
from libra_train.data.conversation import category_key
from libra_train.data.io import atomic_write_text, load_records, write_records
from libra_train.errors import ConfigError
from libra_train.eval.decision import Decision
from libra_train.runtime import distributed as dist

log = logging.getLogger(__name__)


def _tiebreak(seed: int, sample_id) -> str:
    return hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest()


def judge_sample(
    record: dict, p_per_guard: list[float], cfg: SelectionConfig, thresholds: list[float] | None = None
) -> dict:
    thresholds = thresholds or [0.5] * len(p_per_guard)
    p, threshold = sum(p_per_guard) / len(p_per_guard), sum(thresholds) / len(thresholds)
    found = {
        "misclassified": Decision(threshold).label(p) != record["label"],
        "low_margin": abs(p - threshold) < cfg.margin,
        "disagreement": len({Decision(t).label(q) for q, t in zip(p_per_guard, thresholds)}) > 1,
    }
    reasons = [c for c in CRITERIA if found[c] and c in cfg.criteria]
    verdict = {"p_unsafe": p, "threshold": threshold, "per_guard": list(p_per_guard), "reasons": reasons}
    if found["misclassified"] and cfg.noise_margin is not None and abs(p - threshold) > cfg.noise_margin:
        verdict["noise"] = True  # confidently wrong: likelier a wrong label than a lesson
    return verdict


def _cell(record: dict) -> tuple:
    """The label × category cell a sample is balanced in."""
    return record["label"], category_key(record)


def _in_random_order(cells: dict[tuple, list], seed: int) -> None:
    """Each cell's (index, record, …) items in an order fixed by seed: drawing from its front is at random."""
    for items in cells.values():
        items.sort(key=lambda it: _tiebreak(seed, it[1]["id"]))


def _round_robin(groups: dict[tuple, list], count: int) -> list:
    """Take one from each cell in turn (cells in sorted order), so small cells are not crowded out."""
    queues = [list(groups[k]) for k in sorted(groups)]
    chosen = []
    while len(chosen) < count and any(queues):
        for q in queues:
            if q and len(chosen) < count:
                chosen.append(q.pop(0))
    return chosen


def select(
    pool: list[dict],
    scores: dict[str, list[float]],
    cfg: SelectionConfig,
    thresholds: list[float] | None = None,
) -> tuple[list[dict], dict]:
    """The chosen samples (pool order) with meta.difficulty and meta.selection, and a summary; each guard
    decides at its own threshold (thresholds, in guard order; none given: 0.5)."""
    missing = [r["id"] for r in pool if str(r["id"]) not in scores]
    if missing:
        raise ConfigError("scores", f"{len(missing)} pool samples have no score, e.g. id {missing[0]!r}")
    judged = [(i, r, judge_sample(r, scores[str(r["id"])], cfg, thresholds)) for i, r in enumerate(pool)]
    noise = sum(1 for item in judged if item[2].get("noise"))
    judged = [item for item in judged if not item[2].get("noise")]  # neither hard nor easy: left out
    hard_cells, easy_cells = _ordered_cells(judged, cfg.seed)
    n_hard_pool, n_easy_pool = (sum(len(v) for v in c.values()) for c in (hard_cells, easy_cells))
    (want_hard, want_easy), (take_hard, take_easy) = _shares(cfg, n_hard_pool, n_easy_pool)
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
        "left_out_as_noise": noise,
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


def _ordered_cells(judged: list[tuple], seed: int) -> tuple[dict, dict]:
    """Judged samples by label × category cell, hard and easy apart: each hard cell hardest first (wrong
    before right, then closest to the boundary), each easy cell in a random order fixed by seed."""
    hard_cells: dict[tuple, list] = {}
    easy_cells: dict[tuple, list] = {}
    for item in judged:
        (hard_cells if item[2]["reasons"] else easy_cells).setdefault(_cell(item[1]), []).append(item)
    for items in hard_cells.values():
        items.sort(
            key=lambda it: (
                "misclassified" not in it[2]["reasons"],
                abs(it[2]["p_unsafe"] - it[2]["threshold"]),
                _tiebreak(seed, it[1]["id"]),
            )
        )
    _in_random_order(easy_cells, seed)
    return hard_cells, easy_cells


def _shares(cfg: SelectionConfig, n_hard_pool: int, n_easy_pool: int) -> tuple[tuple, tuple]:
    """(wanted hard, wanted easy) and (taken hard, taken easy). A short side is filled from the other (and
    the shortfall reported) rather than missing the budget."""
    if cfg.budget is None:
        want_hard = n_hard_pool
        want_easy = round(want_hard * cfg.easy_share / (1 - cfg.easy_share))
    else:
        want_easy = round(cfg.budget * cfg.easy_share)
        want_hard = cfg.budget - want_easy
    take_hard, take_easy = min(want_hard, n_hard_pool), min(want_easy, n_easy_pool)
    spare = want_hard + want_easy - take_hard - take_easy
    extra_hard = min(spare, n_hard_pool - take_hard)
    take_hard += extra_hard
    take_easy += min(spare - extra_hard, n_easy_pool - take_easy)
    return (want_hard, want_easy), (take_hard, take_easy)


def select_random(pool: list[dict], cfg: SelectionConfig) -> tuple[list[dict], dict]:
    """`select: random`: `budget` samples (pool order) drawn at random, fixed by seed, and spread
    round-robin over label × category cells as the hard ones are: the baseline a hard selection must beat
    at the same budget."""
    cells: dict[tuple, list] = {}
    for i, record in enumerate(pool):
        cells.setdefault(_cell(record), []).append((i, record))
    _in_random_order(cells, cfg.seed)
    chosen = sorted(_round_robin(cells, min(cfg.budget, len(pool))), key=lambda it: it[0])
    out = [{**r, "meta": {**(r.get("meta") or {}), "difficulty": "random"}} for _, r in chosen]
    return out, {"pool": len(pool), "chosen": len(out), "strategy": "random"}


def score_pool(
    pool: list[dict],
    guards: list[str],
    fmt,
    work_dir: Path,
    batch_size: int = 32,
    load_opts=None,
    rank: int = 0,
    world: int = 1,
) -> tuple[dict[str, list[float]], list[float]] | None:
    """p_unsafe of every pool sample under each guard, and each guard's threshold (read_scores); each
    guard's scores are written as they come (libra-infer's resumable writer, each row decided as the
    guard decides), so an interrupted selection does not score twice. Under several
    ranks each scores its share (pool[rank::world]) and returns None: read_scores merges the shares
    once every rank is done."""
    from libra_train.eval.decision import command_decision
    from libra_train.eval.evaluator import predict
    from libra_train.model import load_configured
    from libra_train.progress import progress

    mine = pool[rank::world]
    for k, guard in enumerate(guards):
        model, tokenizer = load_configured(guard, load_opts)
        model.to(dist.local_device())
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
                decision=command_decision(None, guard),  # as the guard decides everywhere else
            )
        del model
    return read_scores(pool, len(guards), work_dir, world) if world == 1 else None


def _scores_file(work_dir: Path, guard: int, rank: int, world: int) -> Path:
    return Path(work_dir) / (
        f"guard-{guard}.jsonl" if world == 1 else f"guard-{guard}.rank{rank}-of-{world}.jsonl"
    )


def read_scores(
    pool: list[dict], n_guards: int, work_dir: Path, world: int = 1
) -> tuple[dict[str, list[float]], list[float]]:
    """Every pool sample's p_unsafe under each guard, from the score files of all ranks, and the threshold
    each guard decided at (recorded in its rows)."""
    from libra_train.data.io import read_raw

    scores: dict[str, list[float]] = {str(r["id"]): [] for r in pool}
    thresholds = []
    for k in range(n_guards):
        files = [_scores_file(work_dir, k, rank, world) for rank in range(world)]
        rows = [i.record for f in files for i in read_raw(f)]
        got = {str(r["id"]): float(r["p_unsafe"]) for r in rows}
        thresholds.append(float(rows[0].get("threshold", 0.5)) if rows else 0.5)
        missing = [i for i in scores if i not in got]
        if missing:
            raise ConfigError(
                "selection", f"guard {k} has no score for {len(missing)} pool samples ({missing[:3]})"
            )
        for i in scores:
            scores[i].append(got[i])
    return scores, thresholds


def select_samples(
    pool: list[dict],
    guards: list[str],
    fmt,
    cfg: SelectionConfig,
    output: Path,
    work_dir: Path,
    batch_size: int = 32,
    load_opts=None,
) -> tuple[list[dict], dict]:
    """The one selection, behind `select: hard|random` and libra-mine. Every rank scores its share of
    the pool with each guard (scores kept in work_dir, resumable); rank 0 then chooses and writes the
    chosen samples to `output` (.jsonl or .parquet) and the summary to work_dir/summary.json. Once chosen,
    a rerun reads them back rather than choosing again. Returns the chosen samples and the summary."""
    work_dir = Path(work_dir)
    chosen_marker, summary_path = work_dir / ".chosen", work_dir / "summary.json"
    if cfg.strategy == "random":
        guards = []  # nothing to score
    else:
        require_label_first(fmt, "format")
    if guards and not chosen_marker.exists():
        dist.every_rank(
            work_dir,
            "selection-scores",
            lambda: score_pool(
                pool, guards, fmt, work_dir, batch_size, load_opts, dist.rank(), dist.world_size()
            ),
        )

    def choose():
        if cfg.strategy == "random":
            chosen, summary = select_random(pool, cfg)
        else:
            scores, thresholds = read_scores(pool, len(guards), work_dir, dist.world_size())
            chosen, summary = select(pool, scores, cfg, thresholds)
        write_records(chosen, output)
        atomic_write_text(summary_path, json.dumps({**summary, "guards": guards}, indent=1))
        hard = f" ({summary['hard']} hard)" if "hard" in summary else " at random"
        log.info("selection: chose %d of %d pool samples%s", len(chosen), len(pool), hard)

    dist.once(chosen_marker, choose)
    return load_records(output), json.loads(summary_path.read_text())


def select_file(cfg: MineConfig) -> dict:
    """`libra-mine`: pool file → chosen samples file (+ OUTPUT.scores/ with each guard's scores)."""
    output = Path(cfg.output)
    _, summary = select_samples(
        load_records(cfg.pool),
        cfg.guards,
        cfg.format.load_files(),
        cfg.selection,
        output,
        Path(f"{output}.scores"),
        cfg.batch_size,
        cfg,
    )
    return {**summary, "output": str(output)}
