"""The mechanism every typed config is built and checked by: fields that carry their help text and a
range check (`opt`), and `build`, which turns a mapping into such a dataclass, refusing an unknown key,
a wrong type, a value outside a Literal's choices or a failed check with a ConfigError naming the key.
libra-train's run config (config.py), the other commands' configs (command_config.py) and the prompt
format (data/formats.py) all use it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, field, fields
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf

from libra_train.errors import ConfigError


def positive(value) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


def non_negative(value) -> str | None:
    return None if value >= 0 else f"must be ≥ 0, got {value}"


def fraction(value) -> str | None:
    return None if 0 <= value < 1 else f"must be in [0, 1), got {value}"


def opt(default: Any = MISSING, help: str = "", check=None, factory=None):  # noqa: A002 (dataclass idiom)
    """A config field with its help text and an optional range check (a function → message or None)."""
    meta = {"help": help, "check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def resolve_container(cfg: DictConfig) -> dict:
    """Hydra's config as plain data, every interpolation resolved: any command's first step."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except Exception as err:  # an unresolvable interpolation or a required value left out
        raise ConfigError(str(getattr(err, "full_key", "") or "config"), str(err).splitlines()[0]) from None


def build(cls, data, key: str):
    """A dataclass from a mapping: unknown keys, wrong types, values outside a Literal's choices and
    failed range checks each raise a ConfigError naming `key.field`."""
    if not isinstance(data, dict):
        raise ConfigError(key, f"must be a mapping, got {data!r}")
    known = [f.name for f in fields(cls)]
    unknown = [k for k in data if k not in known]
    if unknown:
        raise unknown_key(_key(key, unknown[0]), None, [_key(key, k) for k in known])
    hints = typing.get_type_hints(cls)
    values = {f.name: _checked(f, data[f.name], hints[f.name], key) for f in fields(cls) if f.name in data}
    return cls(**values)


def _checked(f, value, hint, group: str):
    """One field's value, of the hinted type and passing the field's own check, or a ConfigError."""
    value = check_value(value, hint, _key(group, f.name))
    check = f.metadata.get("check")
    message = check(value) if check and value is not None else None
    if message:
        raise ConfigError(_key(group, f.name), message)
    return value


def defaults_node(cls) -> dict:
    """A typed config's defaults as the mapping Hydra composes: every key with its default ('???' where
    the user must give one), nested configs as mappings. A config-typed key whose default is None is a
    config group's (format, logger): the group's YAML supplies it, so it is left out."""
    node = {}
    for f in fields(cls):
        if f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            value = "???"
        if value is None and dataclasses.is_dataclass(typing.get_type_hints(cls)[f.name]):
            continue
        if dataclasses.is_dataclass(value):
            value = dataclasses.asdict(value)
        node[f.name] = list(value) if isinstance(value, tuple) else value
    return node


def register_defaults(name: str, node: dict) -> None:
    """Store a command's typed defaults as Hydra's config NAME_defaults, which the command's YAML lists
    first in its defaults: the defaults are written once, in the dataclass, and the YAML holds only its
    groups and Hydra's own settings."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=f"{name}_defaults", node=node)


def flat_keys(data, prefix: str = "") -> list[str]:
    """The dotted path of every leaf of nested mappings (a list, or an empty mapping, is a leaf)."""
    keys = []
    for name, value in data.items() if isinstance(data, dict) else ():
        path = f"{prefix}{name}"
        keys += flat_keys(value, path + ".") if isinstance(value, dict) and value else [path]
    return keys


def unknown_key(key: str, option: str | None, candidates: list[str], what: str = "key") -> ConfigError:
    """One line for a key (or a config group's option) that does not exist: the nearest valid one, or,
    when none is near, the valid names at that level."""
    import difflib

    if what == "option":
        near = difflib.get_close_matches(option, candidates, n=1, cutoff=0.5)
        hint = f"did you mean {key}={near[0]}? " if near else ""
        return ConfigError(key, f"no option {option!r}; {hint}options: {', '.join(candidates)}")
    candidates = [c for c in candidates if c != key and not c.startswith(key + ".")]
    parent, _, leaf = key.rpartition(".")
    siblings = [c.rpartition(".")[2] for c in candidates if c.rpartition(".")[0] == parent]
    near = [f"{parent}.{n}" if parent else n for n in difflib.get_close_matches(leaf, siblings, 1, 0.6)]
    if not near and (not parent or parent not in {c.rpartition(".")[0] for c in candidates}):
        near = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)  # a misspelt group: trian.…
    if near:
        return ConfigError(key, f"unknown key; did you mean {near[0]}?")
    parts = key.split(".")
    for depth in range(len(parts) - 1, -1, -1):  # the deepest level of the key that exists
        parent = "".join(p + "." for p in parts[:depth])
        level = dict.fromkeys(c[len(parent) :].split(".")[0] for c in candidates if c.startswith(parent))
        if level:
            return ConfigError(
                key, f"unknown key; known{' in ' + parent[:-1] if parent else ''}: {', '.join(level)}"
            )
    return ConfigError(key, "unknown key")


def _key(group: str, name: str) -> str:
    """`group.name`, or the bare name for a command's top-level keys (group "")."""
    return f"{group}.{name}" if group else name


def check_value(value, hint, key: str):
    """`value` checked against a type hint (Literal, X | None, a config dataclass, bool, int, float, str,
    tuple, dict)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if not any(a == value and type(a) is type(value) for a in args):  # 1 is not True here
            raise ConfigError(key, f"{value!r} is not one of {', '.join(str(a) for a in args)}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # X | None: X's own error, with its own key (a nested config's field)
            return check_value(value, options[0], key)
        errors = []
        for option in options:
            try:
                return check_value(value, option, key)
            except ConfigError as err:
                errors.append(err.message)
        raise ConfigError(key, " or ".join(dict.fromkeys(errors)))
    if dataclasses.is_dataclass(hint):  # a config of its own (logger, an endpoint): built, its keys named
        return value if isinstance(value, hint) else build(hint, {} if value is None else value, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"{value!r} is not one of true, false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be text, got {value!r}")
        return value
    if hint is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, got {value!r}")
        return tuple(value)
    if hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a mapping, got {value!r}")
        return value
    return value


def check_fields(obj, group: str) -> None:
    """A dataclass built directly (not through `build`) checked by the same rules, each field in turn."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        _checked(f, getattr(obj, f.name), hints[f.name], group)


def describe(cls, prefix: str = "", exclude: tuple = ()) -> list[str]:
    """What --help lists: every key of a typed config, nested configs by their dotted path, as
    `key: type = default` over its help text. A key without help text is refused (a TypeError naming it):
    each key a user can set says what it does."""
    hints = typing.get_type_hints(cls)
    lines = []
    for f in (f for f in fields(cls) if f.name not in exclude):
        hint, key = hints[f.name], prefix + f.name
        nested = [a for a in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(a)]
        if nested and f.name != "selection":  # a group of keys: listed key by key
            lines += describe(nested[0], key + ".")
            continue
        if not f.metadata.get("help"):
            raise TypeError(f"config key {key} ({cls.__name__}.{f.name}) has no help text")
        lines += [f"  {key}: {type_name(hint)} = {_default_text(f)}", f"      {f.metadata['help']}"]
    return lines


def type_name(hint) -> str:
    """A type hint as --help writes it: choices for a Literal, `or null` for an optional value."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return " | ".join(str(a).lower() if isinstance(a, bool) else str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else type_name(a) for a in args)
    names = {bool: "bool", int: "int", float: "float", str: "text", tuple: "list", dict: "mapping"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _default_text(f) -> str:
    if f.default is MISSING and f.default_factory is MISSING:
        return "required"
    value = f.default if f.default is not MISSING else f.default_factory()
    if isinstance(value, tuple):
        value = list(value)
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= 60 else text[:57] + "…"  # a taxonomy's rules: --cfg job prints them whole
