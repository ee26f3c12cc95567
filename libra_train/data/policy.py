"""The safety policy a guard is asked to follow: the categories its prompt lists, the user's own policy
file, and category dropout (Llama Guard's training augmentation for following a policy it never saw).

Category dropout, per training sample and decided by a seeded draw on the sample's id (the same on a
resumed run):
- `others`: with this probability, the prompt lists a random subset of the categories the sample does
  not violate (every violated one stays), so the guard learns to read the list, not to remember it;
- `violated`: with this probability (unsafe samples only), every violated category is left out of the
  prompt and the label becomes safe, with a label-only target (the analysis explained a violation that
  the shown policy no longer forbids). A sample with a category outside the policy is never flipped.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from libra_train.data.conversation import categories_of
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.errors import ConfigError, DataError

POLICY_KEY = "_policy"  # the category names shown in this sample's prompt, set by category dropout
DROPOUT_KINDS = ("others", "violated")


def load_categories_file(path) -> dict[str, str]:
    """A policy file: YAML or JSON, either a mapping name → rule, or a list of {name, rule}, or the
    taxonomy's own layout (name → {rule: …, …})."""
    from omegaconf import OmegaConf

    path = Path(str(path))
    if not path.is_file():
        raise DataError(path, "no such file", field="format.categories_file")
    try:
        raw = (
            OmegaConf.to_container(OmegaConf.load(path))
            if path.suffix != ".json"
            else json.loads(path.read_text(encoding="utf-8"))
        )
    except Exception as err:
        raise DataError(path, f"unreadable policy file ({type(err).__name__}: {err})") from None
    if isinstance(raw, list):
        pairs = [(e.get("name"), e.get("rule")) if isinstance(e, dict) else (None, None) for e in raw]
    elif isinstance(raw, dict):
        pairs = [(k, v.get("rule") if isinstance(v, dict) else v) for k, v in raw.items()]
    else:
        raise DataError(path, "expected a mapping of category → rule, or a list of {name, rule}")
    if not pairs:
        raise DataError(path, "no categories: a policy needs at least one")
    for i, (name, rule) in enumerate(pairs):
        if not isinstance(name, str) or not name.strip() or not isinstance(rule, str) or not rule.strip():
            raise DataError(path, "each category needs a non-empty name and rule", f"entry {i + 1}")
    return dict(pairs)


def check_dropout(value) -> dict[str, float]:
    """format.category_dropout: null/false (off), or {others: p, violated: p}."""
    if value in (None, False):
        return {kind: 0.0 for kind in DROPOUT_KINDS}
    if not isinstance(value, dict) or set(value) - set(DROPOUT_KINDS):
        raise ConfigError("format.category_dropout", f"expected {{others: p, violated: p}}, got {value!r}")
    out = {}
    for kind in DROPOUT_KINDS:
        p = value.get(kind, 0.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ConfigError(f"format.category_dropout.{kind}", f"a probability in [0, 1], got {p!r}")
        out[kind] = float(p)
    return out


def shown_categories(record: dict, categories: dict[str, str]) -> dict[str, str]:
    """The rules this sample's prompt lists: its dropout policy if it has one, else every category."""
    names = record.get(POLICY_KEY)
    return categories if names is None else {n: categories[n] for n in categories if n in names}


def apply_dropout(record: dict, categories: dict[str, str], dropout: dict[str, float], seed: int) -> dict:
    """The training view of one sample under category dropout (unchanged when neither draw fires)."""
    if not any(dropout.values()):
        return record
    rng = random.Random(f"category-dropout:{seed}:{record['id']}")
    violated = categories_of(record) if record["label"] == UNSAFE else []
    names = list(categories)
    flip = bool(violated) and set(violated) <= set(names) and rng.random() < dropout["violated"]
    if flip:
        kept = [n for n in names if n not in violated]
        return {**record, POLICY_KEY: kept, "label": SAFE, "analyze": "", "category_name": ""}
    if rng.random() < dropout["others"]:
        others = [n for n in names if n not in violated]
        kept_others = set(rng.sample(others, rng.randint(0, len(others))))
        return {**record, POLICY_KEY: [n for n in names if n in violated or n in kept_others]}
    return record
