"""--help's key listing (typed.describe): each key's type, default and help from its dataclass, nested
groups by dotted path, and a key without help refused."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from libra_train.typed import describe, opt


@dataclass(frozen=True)
class Inner:
    rate: float = opt(0.5, "how fast")
    kind: Literal["a", "b"] | None = opt(None, "which one; null: neither")


@dataclass(frozen=True)
class Outer:
    path: str = opt(help="where it goes")
    on: bool = opt(True, "whether it runs")
    names: tuple = opt(("x", "y"), "the names")
    inner: Inner = opt(None, "a group")


def test_describe_lists_each_key_with_its_type_default_and_help():
    assert describe(Outer, "top.") == [
        "  top.path: text = required",
        "      where it goes",
        "  top.on: bool = true",
        "      whether it runs",
        "  top.names: list = ['x', 'y']",
        "      the names",
        "  top.inner.rate: float = 0.5",
        "      how fast",
        "  top.inner.kind: a | b or null = null",
        "      which one; null: neither",
    ]


def test_a_key_without_help_is_refused_by_name():
    @dataclass(frozen=True)
    class Helpless:
        fine: int = opt(1, "documented")
        silent: int = field(default=2)

    with pytest.raises(TypeError, match=r"config key grp\.silent \(Helpless\.silent\) has no help text"):
        describe(Helpless, "grp.")


def test_a_long_default_is_cut_for_the_listing():
    @dataclass(frozen=True)
    class Wordy:
        rules: str = opt("规" * 80, "long rules")

    line = describe(Wordy)[0]
    assert line.startswith("  rules: text = " + "规" * 57) and line.endswith("…")
