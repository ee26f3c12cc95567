"""Shared CLI plumbing: where the configs live, and turning the project's errors into one clear line."""

from __future__ import annotations

import functools
import logging
import sys

from libra_train.conf_dir import CLI_CONF_DIR, CONF_DIR  # noqa: F401 (the commands' config folders)
from libra_train.errors import LibraError


def compose_config(name: str, overrides: list[str] | None = None):
    """conf/<name>.yaml composed by Hydra outside a Hydra app (the pipeline's data step, benchmarks,
    tests); inside a running app the app's own Hydra instance composes it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(name, overrides=overrides or [])
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose(name, overrides=overrides or [])


def clear_errors(fn):
    """Print a LibraError as one line on stderr and exit 2, instead of a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from omegaconf.errors import MissingMandatoryValue

        try:
            return fn(*args, **kwargs)
        except LibraError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except MissingMandatoryValue as err:  # a `???` key of the command's config left out
            print(f"error: config '{err.full_key}': required; give {err.full_key}=...", file=sys.stderr)
            sys.exit(2)

    return wrapper


def quiet_libraries() -> None:
    """Keep the console to our own progress: no per-map or per-shard bars from datasets/transformers.
    The hub's download bars stay on: a 14B download must show that it is moving."""
    import warnings

    import datasets
    import huggingface_hub
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()  # this turns the hub's bars off too …
    huggingface_hub.utils.enable_progress_bars()  # … so they are turned back on
    transformers.utils.logging.set_verbosity_warning()
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    for name in ("httpx", "datasets", "urllib3", "filelock"):
        logging.getLogger(name).setLevel(logging.WARNING)
