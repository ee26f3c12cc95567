"""Where the configs live: conf/ in a checkout, libra_train/conf in a wheel."""

from __future__ import annotations

from pathlib import Path

# conf/ sits beside the packages in a checkout (docs/architecture.md, "Packages and modules"); a wheel or
# a non-editable install carries it inside the package, as libra_train/conf (setup.py's package_dir).
_PACKAGED_CONF = Path(__file__).resolve().parent / "conf"
CONF_DIR = str(
    _PACKAGED_CONF if (_PACKAGED_CONF / "train.yaml").exists() else _PACKAGED_CONF.parent.parent / "conf"
)
# libra-infer, libra-mine and annotate compose from conf/cli, which holds no `model` group, so their
# `model=PATH` is a plain value (a checkpoint) rather than a config-group choice.
CLI_CONF_DIR = str(Path(CONF_DIR) / "cli")
