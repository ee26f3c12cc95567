"""Data-scale subsets: stratified by category × label, deterministic by seed, and nested (a smaller
subset lies inside a larger one), because every size takes a prefix of one fixed per-cell order."""

from __future__ import annotations

import hashlib

from libra_train.data.conversation import category_key
from libra_train.errors import ConfigError


def _rank_key(seed: int, rid) -> str:
    return hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest()


def check_limit(limit, key: str) -> int | float:
    """A count (int, or text of one) → int; a fraction in (0, 1] (float, or text with a point) → float.
    Anything else raises a ConfigError naming the key. Checked at start-up, before any data is read."""
    wrong = ConfigError(key, f"must be a count ≥ 1, a fraction in (0, 1], or null; got {limit!r}")
    if isinstance(limit, bool):
        raise wrong
    try:
        if isinstance(limit, float) or (isinstance(limit, str) and "." in limit):
            frac = float(limit)
            if not 0 < frac <= 1:  # also false for NaN
                raise wrong
            return frac
        count = int(limit)
    except (TypeError, ValueError):
        raise wrong from None
    if count < 1 or (isinstance(limit, str) and str(count) != limit.strip()):
        raise wrong
    return count


def _target_size(limit, n: int, key: str) -> int:
    checked = check_limit(limit, key)
    return max(1, round(n * checked)) if isinstance(checked, float) else checked


def stratified_subset(records: list[dict], limit, seed: int, key: str = "data.limit") -> list[dict]:
    """limit: None (all), an int count, or a fraction in (0, 1]."""
    if limit is None:
        return records
    n = len(records)
    target = _target_size(limit, n, key)
    if target >= n:
        return records
    # One global order: each record's quantile within its category × label cell (cells interleave in
    # proportion), ties broken by a seeded hash. Any size takes a prefix of it, so subsets nest by
    # construction and each cell's count stays within one of its share.
    cells: dict[tuple, list[dict]] = {}
    for r in records:
        cells.setdefault((category_key(r), r["label"]), []).append(r)
    ranked = []
    for group in cells.values():
        group.sort(key=lambda r: _rank_key(seed, r["id"]))
        ranked += [((i + 0.5) / len(group), _rank_key(seed, r["id"]), id(r)) for i, r in enumerate(group)]
    chosen = {obj_id for _, _, obj_id in sorted(ranked)[:target]}
    return [r for r in records if id(r) in chosen]
