"""Counterparts that take the layout's word away from real paired data (`data.<key>.counter_layouts`).

A real set whose unsafe answers are numbered lists and whose safe answers are prose (JADE train: 59%
against 0%) teaches a guard that a structured answer is unsafe, and it then flags the long, sectioned
helpful answers that assistants write. Each pair (meta.pair) whose unsafe answer is a numbered list gives
two counterparts, made of the pair's own text:

- the safe answer as a numbered list, one item per sentence: its helpful rest where the refusal opening
  leaves one (data/counter_openings.py), else the whole answer;
- the unsafe answer as prose: its item numbers taken off and its lines run together.

Lists are then as common among the pair's safe answers as among its unsafe ones, and prose likewise.
The originals are kept as they are.
"""

from __future__ import annotations

import re

from libra_train.data.counter_openings import helpful_rest, make_counterpart, pairs, sentences, split_refusal

_ITEM = re.compile(r"^\s*\d+\s*[.、．)）]\s*")  # "1. ", "2、", "3）" at a line's start
_CLOSED = tuple("。！？!?；;：:，,")


def is_numbered_list(text: str) -> bool:
    """Whether at least two of the text's lines are numbered items."""
    return sum(bool(_ITEM.match(line)) for line in text.splitlines()) >= 2


def as_list(text: str) -> str | None:
    """The text's sentences as numbered items, one a line; None for fewer than two sentences."""
    items = [part.strip() for part in sentences(text) if part.strip()]
    if len(items) < 2:
        return None
    return "\n".join(f"{n}. {item}" for n, item in enumerate(items, 1))


def as_prose(text: str) -> str:
    """The text with its item numbers taken off and its lines run together, each closed by a full stop
    where it had no punctuation of its own."""
    lines = [_ITEM.sub("", line).strip() for line in text.splitlines()]
    return "".join(line if line.endswith(_CLOSED) else line + "。" for line in lines if line)


def layout_counterparts(records: list[dict]) -> list[dict]:
    """Each pair's layout counterparts (module doc), in the order of the pairs' safe answers."""
    made = []
    for safe, partner in pairs(records):
        if partner is None or not is_numbered_list(partner["response"]) or is_numbered_list(safe["response"]):
            continue
        helpful = helpful_rest(*split_refusal(safe["response"]))
        listed = as_list(helpful or safe["response"])
        if listed is None:
            continue
        meta = {"refusal": False} if helpful else {}
        made.append(make_counterpart(safe, listed, "list", layout="list", **meta))
        made.append(make_counterpart(partner, as_prose(partner["response"]), "prose", layout="prose"))
    return made
