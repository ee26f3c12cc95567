"""Shared CLI plumbing: where the configs live, and turning the project's errors into one clear line."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import sys

from libra_train.conf_dir import CLI_CONF_DIR, CONF_DIR  # noqa: F401 (the commands' config folders)
from libra_train.errors import ConfigError, LibraError
from libra_train.typed import flat_keys, unknown_key


def compose_config(name: str, overrides: list[str] | None = None):
    """conf/<name>.yaml composed by Hydra outside a Hydra app (the pipeline's data step, benchmarks,
    tests); inside a running app the app's own Hydra instance composes it. The caller has imported the
    command's typed config (its import registers the YAML's NAME_defaults: typed.register_defaults)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(name, overrides=overrides or [])
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose(name, overrides=overrides or [])


def hydra_command(config_path: str, config_name: str, keys: str):
    """A console script's Hydra app: the project's errors as one line (clear_errors), Hydra's own
    composition errors too (an override of a key the config lacks, a group option that does not exist,
    an override that does not parse), each naming the key and the nearest valid one; a closed pipe ends
    quietly. HYDRA_FULL_ERROR=1 set by the user keeps Hydra's own report and stack trace.
    `keys` ("module:name") is the command's typed config, or a function of none returning its key lines:
    --help lists every key from it, with its type, default and help (typed.describe)."""
    import hydra

    def decorate(fn):
        app = hydra.main(config_path=config_path, config_name=config_name, version_base="1.3")(
            clear_errors(fn)
        )

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from hydra.errors import HydraException

            importlib.import_module(keys.split(":")[0])  # registers the YAML's NAME_defaults (typed.py)

            if "--help" in sys.argv[1:] or "-h" in sys.argv[1:]:
                return _help(app, keys)
            if os.environ.get("HYDRA_FULL_ERROR"):
                return app(*args, **kwargs)
            os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors here instead of printing them
            try:
                return app(*args, **kwargs)
            except HydraException as err:
                print(f"error: {composition_error(err, config_path, config_name)}", file=sys.stderr)
                sys.exit(2)
            finally:
                os.environ.pop("HYDRA_FULL_ERROR", None)

        return closed_pipe_ok(wrapper)

    return decorate


def _help(app, keys: str) -> None:
    """Hydra's help (the command's header, usage and groups), then every key of its typed config."""
    from libra_train.typed import describe

    try:
        app()
    except SystemExit as done:
        if done.code:
            raise
    module, name = keys.split(":")
    source = getattr(importlib.import_module(module), name)
    lines = describe(source) if isinstance(source, type) else source()
    print("\n== Keys (key: type = default, then what it does; set one with key=value) ==")
    print("\n".join(lines))
    print("--cfg job prints the resolved config without running.")


def composition_error(err, config_path: str, config_name: str) -> ConfigError:
    """Hydra's multi-line composition report as one ConfigError naming the key (or group) at fault."""
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(err)
    if isinstance(err, OverrideParseException):
        return _unparsable_override(text)
    if isinstance(err, MissingConfigException) and err.options is not None:
        group = re.search(r"Could not find '([^']+)/([^']+)'", text)
        if group:
            key, option = group.group(1).replace("/", "."), group.group(2)
            return unknown_key(key, option, err.options, what="option")
    wrong = re.search(r"Could not override '([^']+)'", text)
    if wrong:
        key = wrong.group(1)
        return unknown_key(key, None, _valid_keys(config_path, config_name, key))
    present = re.search(r"An item is already at '([^']+)'", text)
    if present:
        key = present.group(1)
        return ConfigError(key, f"exists already: give {key}=VALUE without the leading +")
    # anything else whole: a call that failed says its target on one line and the error on the next
    return ConfigError("command line", " ".join(line.strip() for line in text.splitlines() if line.strip()))


def _unparsable_override(text: str) -> ConfigError:
    """The first override on the command line that Hydra's grammar refuses, named."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for arg in sys.argv[1:]:
        if arg.startswith("-"):
            continue
        try:
            parser.parse_overrides([arg])
        except Exception:  # noqa: BLE001 (this is the one)
            key = arg.split("=")[0].lstrip("+~")
            reason = text.splitlines()[0]
            return ConfigError(
                key, f"cannot parse {arg!r} ({reason}); quote a value holding []{{}},= or spaces"
            )
    return ConfigError("command line", text.strip().splitlines()[0])


def _valid_keys(config_path: str, config_name: str, bad_key: str) -> list[str]:
    """Every key of the command's config as composed from this command line, less the bad override
    (the config without any override where the rest does not compose either)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    rest = [a for a in sys.argv[1:] if "=" in a and not a.startswith("-") and a.split("=")[0] != bad_key]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_path, version_base="1.3"):
        for overrides in (rest, []):
            try:
                cfg = compose(config_name, overrides=overrides)
            except Exception:  # noqa: BLE001 (another bad override: fall back to the config as shipped)
                continue
            return flat_keys(OmegaConf.to_container(cfg, resolve=False))
    return []


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
