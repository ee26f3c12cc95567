"""Counterparts that take the opening's word away from real paired data (`data.<key>.counter_openings`).

A real set whose safe answers open with a refusal and whose unsafe answers do not (JADE: 88% against 9%)
teaches a guard to read the opening instead of judging harm, and it then flags every helpful safe
answer. Each pair of a question's safe and unsafe answers (meta.pair) gives up to two counterparts,
made of the pair's own text and nothing else:

- the safe answer with its refusal opening cut off: the leading sentences that hold a refusal or warning
  phrase (data/refusal.py, REFUSAL_PHRASES) go, and the rest stays a safe answer that does not refuse,
  when it is at least MIN_REST characters long and no longer opens with such a phrase;
- the unsafe answer behind that refusal opening: the same leading sentences, then the unsafe answer's
  leading sentences (at least one), as many as keep it within the safe rest's length, so that the two
  counterparts differ in what they say rather than in length (a refusal that goes on to comply is still
  unsafe); its harm starts where the refusal ends (meta.harm_start). Cut to the unsafe answer's own
  length instead, the counterparts alone would be told apart by length at AUROC 0.86 on JADE train.

`data.<key>.counter_openings: helpful` adds the first kind only, `both` both. A pair whose safe answer
does not open with a refusal, or whose unsafe answer already does, gives no counterpart of that kind.
The originals are kept as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from libra_train.data.refusal import REFUSAL_PHRASES, refusal_opening
from libra_train.data.schema import SAFE, UNSAFE

MIN_REST = 30  # characters: a shorter rest is a sign-off ("请遵守法律。"), not an answer
_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?\n]*|\n+")


def sentences(text: str) -> list[str]:
    """The text cut after each sentence end (。！？!? or a line break); joined, they give the text back."""
    return _SENTENCE.findall(text)


def split_refusal(text: str) -> tuple[str, str]:
    """(the leading sentences that hold a refusal or warning phrase, the rest)."""
    parts = sentences(text)
    cut = 0
    while cut < len(parts) and any(phrase in parts[cut] for phrase in REFUSAL_PHRASES):
        cut += 1
    return "".join(parts[:cut]), "".join(parts[cut:])


def helpful_rest(head: str, rest: str) -> str | None:
    """Of a text split by split_refusal: what follows its refusal opening, stripped, where it is an
    answer of its own (at least MIN_REST characters, opening with no refusal phrase); None where the
    text opens with no refusal."""
    rest = rest.strip()
    return rest if head and len(rest) >= MIN_REST and not refusal_opening(rest) else None


def _cut_to(text: str, size: int) -> str:
    """The text's leading sentences, as many as fit in `size` characters (at least the first)."""
    kept = ""
    for part in sentences(text):
        if kept and len(kept) + len(part) > size:
            break
        kept += part
    return kept


def make_counterpart(record: dict, response: str, kind: str, **meta) -> dict:
    """A copy of `record` with `response` in place of its own, its id suffixed by `~kind` and its
    meta naming the record it was made from."""
    return {
        **record,
        "id": f"{record['id']}~{kind}",
        "response": response,
        "meta": {**(record.get("meta") or {}), "counterpart_of": record["id"], **meta},
    }


def pairs(records: list[dict]) -> Iterator[tuple[dict, dict | None]]:
    """Each safe answer of a pair (meta.pair) that has a response, beside its pair's unsafe answer (None
    where the pair has none), in the order of the safe answers."""
    unsafe_of = {
        (r.get("meta") or {}).get("pair"): r for r in records if r["label"] == UNSAFE and r.get("response")
    }
    for safe in records:
        pair = (safe.get("meta") or {}).get("pair")
        if safe["label"] == SAFE and pair is not None and safe.get("response"):
            yield safe, unsafe_of.get(pair)


def counterparts(records: list[dict], unsafe: bool = True) -> list[dict]:
    """Each pair's counterparts (module doc), in the order of the pairs' safe answers; with unsafe=False,
    the helpful safe answers only."""
    made = []
    for safe, partner in pairs(records):
        head, rest = split_refusal(safe["response"])
        if not head:
            continue
        helpful = helpful_rest(head, rest)
        if helpful is not None:
            made.append(make_counterpart(safe, helpful, "helpful", refusal=False))
        if unsafe and partner is not None and not refusal_opening(partner["response"]):
            body = _cut_to(partner["response"], len(rest.strip()) - len(head))
            made.append(make_counterpart(partner, head + body, "refusal_opening", harm_start=len(head)))
    return made
