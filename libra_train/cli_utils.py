"""Shared CLI plumbing: where the configs live, and turning the project's errors into one clear line."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

from libra_train.errors import LibraError

# conf/ sits beside the packages (DESIGN §7); the README installs in editable mode so it is found.
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def clear_errors(fn):
    """Print a LibraError as one line on stderr and exit 2, instead of a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LibraError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def quiet_libraries() -> None:
    """Keep the console to our own progress: no per-map or per-shard bars from datasets/transformers."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_warning()
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    for name in ("httpx", "datasets", "urllib3", "filelock"):
        logging.getLogger(name).setLevel(logging.WARNING)


def load_key_value_config(name: str, args: list[str], usage: str, defaults: dict | None = None):
    """conf/<name>.yaml, the chosen conf/format/<format>.yaml, then key=value overrides; required keys
    (`???`) checked. For the commands whose `model=PATH` would clash with libra-train's model group."""
    from omegaconf import OmegaConf

    from libra_train.errors import ConfigError

    base = OmegaConf.merge(OmegaConf.create(defaults or {}), OmegaConf.load(Path(CONF_DIR) / f"{name}.yaml"))
    bad = [a for a in args if "=" not in a]
    if bad:
        raise ConfigError(bad[0], f"arguments are key=value: {usage}")
    pairs = dict(a.split("=", 1) for a in args)
    fmt_name = pairs.pop("format", "rear")
    fmt_file = Path(CONF_DIR) / "format" / f"{fmt_name}.yaml"
    if not fmt_file.exists():
        choices = sorted(p.stem for p in fmt_file.parent.glob("*.yaml"))
        raise ConfigError("format", f"{fmt_name!r} is not one of {', '.join(choices)}")
    unknown = [k for k in pairs if k.split(".")[0] not in base.keys() and not k.startswith("format.")]
    if unknown:
        raise ConfigError(unknown[0], f"unknown key; known: {', '.join(k for k in base)}, format, format.*")
    cfg = OmegaConf.merge(
        base,
        {"format": OmegaConf.load(fmt_file)},
        OmegaConf.from_dotlist([f"{k}={v}" for k, v in pairs.items()]),
    )
    for key in base:
        if OmegaConf.is_missing(cfg, key):
            raise ConfigError(key, f"required ({usage})")
    return cfg
