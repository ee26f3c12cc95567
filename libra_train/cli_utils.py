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
