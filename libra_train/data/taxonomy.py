"""The harm taxonomy, defined once in conf/taxonomy/default.yaml: each category's rule (what the prompt
states with format.rules=true) and English name (chart labels where no CJK font is installed).
data_synth reads the same file's sub-categories and benign topics."""

from __future__ import annotations

import functools
from pathlib import Path

from libra_train.data.schema import SAFE, UNSAFE


@functools.cache
def default_taxonomy() -> dict:
    from omegaconf import OmegaConf

    from libra_train.conf_dir import CONF_DIR

    return OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "taxonomy" / "default.yaml"))


def default_rules() -> dict[str, str]:
    """Category → its rule, in the taxonomy's order."""
    return {name: entry["rule"] for name, entry in default_taxonomy().items()}


def english_names() -> dict[str, str]:
    """Category and label → a short English name."""
    return {
        **{name: entry["english"] for name, entry in default_taxonomy().items()},
        SAFE: "safe",
        UNSAFE: "unsafe",
    }
