"""A guard's category names ↔ our taxonomy, through a YAML the user can edit (`format.category_map`;
default conf/category_map/<format>.yaml). `from_guard` reads what a guard names into our categories,
for per-category figures; `to_guard` names a sample's categories in the guard's codes, for training
targets. With `format.categories_file` the user's own list is both: its names are the categories."""

from __future__ import annotations

import os
from pathlib import Path

from libra_train.errors import DataError


def map_path(fmt) -> str:
    from libra_train.conf_dir import CONF_DIR

    return fmt.category_map or str(Path(CONF_DIR) / "category_map" / f"{fmt.prompt}.yaml")


def load(fmt) -> dict:
    from libra_train.data.io import read_cached

    return read_cached(map_path(fmt), _read)


def _read(path: str) -> dict:
    from omegaconf import OmegaConf

    if not os.path.isfile(path):
        raise DataError(path, "no such file", field="format.category_map")
    raw = OmegaConf.to_container(OmegaConf.load(path))
    for section in ("from_guard", "to_guard"):
        value = raw.get(section) if isinstance(raw, dict) else None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise DataError(path, "expected a mapping of names to names", field=section)
    return {"from_guard": dict(raw["from_guard"]), "to_guard": dict(raw["to_guard"])}


def from_guard(names: list[str], fmt, codes: list[str] | None = None) -> list[str]:
    """Our categories for what a guard named, in order, once each; a name the map lacks is kept as is
    (it then counts as a miss in the per-category figures, never vanishes)."""
    if fmt.categories_file and codes:
        lookup = dict(zip(codes, fmt.policy))
    else:
        lookup = load(fmt)["from_guard"]
    return list(dict.fromkeys(lookup.get(n, n) for n in names))


def to_guard(categories: list[str], fmt, codes: list[str] | None = None) -> list[str]:
    """The guard's names for a sample's categories (our names), in order, once each; a category with no
    counterpart is left out."""
    if fmt.categories_file and codes:
        lookup = dict(zip(fmt.policy, codes))
    else:
        lookup = load(fmt)["to_guard"]
    return list(dict.fromkeys(lookup[c] for c in categories if c in lookup))
