"""Shared CLI plumbing: where the configs live, and turning the project's errors into one clear line."""

from __future__ import annotations

import functools
import logging
import os
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
    # Known and harmless, each said once per forward pass or import, which buried what matters:
    # - label mode reuses a shared prompt prefix through `past_key_values`, which transformers renames to
    #   `cache` but accepts until 5.40 (setup.py caps transformers below it);
    # - DeepSpeed announces that it fell back to the CPU on a machine without an accelerator, which is
    #   what a CPU run wants (DS_ACCELERATOR=cpu in the tests).
    warnings.filterwarnings("ignore", message=".*`past_key_values` is deprecated.*", category=FutureWarning)
    for handler in logging.getLogger("transformers").handlers:  # its modules' loggers log through these
        handler.addFilter(_drop("`past_key_values`/`cache_params` are deprecated"))
    logging.getLogger("DeepSpeed").addFilter(_drop("Setting accelerator to CPU"))


def _drop(text: str) -> logging.Filter:
    """A logging filter that drops the records whose message contains `text`."""
    dropped = logging.Filter()
    dropped.filter = lambda record: text not in record.getMessage()
    return dropped


def closed_pipe_ok(fn):
    """A console script whose output is cut short by its reader (`libra-train --help | head`) ends
    quietly instead of with a BrokenPipeError traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            try:
                return fn(*args, **kwargs)
            finally:
                sys.stdout.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
            sys.exit(1)

    return wrapper
