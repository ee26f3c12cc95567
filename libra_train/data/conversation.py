"""Conversations: the `messages` form of a sample, its single-turn form, and the categories it violates.

A sample is judged on its last turn. A last user turn is prompt classification (question, no response);
a last assistant turn is response classification (the user turn before it is the question). Every
earlier turn is context. `system` turns are accepted and ignored: a guard judges what the user and the
model said, not the operator's instructions.

Inside the framework a record always carries `question` and `response` (the judged exchange), so every
single-turn code path keeps working; `messages` is kept when the sample has more than that exchange.
"""

from __future__ import annotations

from libra_train.errors import DataError

ROLES = ("system", "user", "assistant")
USER, ASSISTANT = "user", "assistant"


def _check_turn(turn, i: int, path, where) -> str:
    if not isinstance(turn, dict):
        raise DataError(
            path,
            f"expected an object with role and content, got {type(turn).__name__}",
            where,
            f"messages[{i}]",
        )
    role = turn.get("role")
    if role not in ROLES:
        allowed = ", ".join(ROLES)
        raise DataError(path, f"unknown role {role!r}; allowed: {allowed}", where, f"messages[{i}].role")
    content = turn.get("content")
    if not isinstance(content, str) or not content.strip():
        raise DataError(path, "must be non-empty text", where, f"messages[{i}].content")
    return role


def check_messages(messages, path="<record>", where=None) -> tuple[str, str]:
    """Validate a `messages` list and return the judged exchange (question, response); response is ""
    when the last turn is the user's. One DataError names the turn and the field that is wrong."""
    if not isinstance(messages, list):
        raise DataError(path, f"must be a list of turns, got {type(messages).__name__}", where, "messages")
    roles = [_check_turn(turn, i, path, where) for i, turn in enumerate(messages)]
    spoken = [i for i, role in enumerate(roles) if role != "system"]
    if not spoken:
        raise DataError(path, "no user or assistant turn to judge (an empty conversation)", where, "messages")
    for prev, cur in zip(spoken, spoken[1:]):
        if roles[prev] == roles[cur] == ASSISTANT:
            raise DataError(
                path, f"two assistant turns in a row (turns {prev} and {cur})", where, f"messages[{cur}].role"
            )
    last = spoken[-1]
    if roles[last] == USER:
        return messages[last]["content"], ""
    users = [i for i in spoken if roles[i] == USER]
    if not users:
        raise DataError(
            path, "the judged assistant turn has no user turn before it", where, f"messages[{last}]"
        )
    return messages[users[-1]]["content"], messages[last]["content"]


def to_messages(record: dict) -> list[dict]:
    """The conversation of any record: its `messages` (system turns dropped), or the pair as one or two
    turns."""
    if record.get("messages"):
        return [dict(t) for t in record["messages"] if t["role"] != "system"]
    turns = [{"role": USER, "content": record["question"]}]
    if record.get("response"):
        turns.append({"role": ASSISTANT, "content": record["response"]})
    return turns


def from_messages(messages: list[dict], path="<record>", where=None, **fields) -> dict:
    """A record from a conversation: question and response filled from the judged exchange; `messages`
    kept only when there is more than that exchange (a single exchange is exactly the pair form).
    path and where locate a bad conversation in the error, as check_messages does."""
    question, response = check_messages(messages, path, where)
    record = {**fields, "question": question, "response": response}
    spoken = [t for t in messages if t["role"] != "system"]
    if len(spoken) > (2 if response else 1):
        record["messages"] = [dict(t) for t in messages]
    return record


def context_turns(record: dict) -> list[dict]:
    """The turns before the judged exchange (system turns dropped)."""
    turns = to_messages(record)
    return turns[: len(turns) - (2 if record.get("response") else 1)]


def with_context(record: dict, context: list[dict]) -> dict:
    """The same judged exchange behind another context (fewer turns after truncation, or none)."""
    out = {k: v for k, v in record.items() if k != "messages"}
    exchange = [{"role": USER, "content": out["question"]}]
    if out.get("response"):
        exchange.append({"role": ASSISTANT, "content": out["response"]})
    if context:
        out["messages"] = [dict(t) for t in context] + exchange
    return out


def without_response(record: dict) -> dict:
    """The prompt-classification view: the conversation up to and including the question."""
    return with_context({**record, "response": ""}, context_turns(record))


def categories_of(record: dict) -> list[str]:
    """The violated categories: `category_name` is one name, a list of names, or empty."""
    value = record.get("category_name")
    if not value:
        return []
    return [value] if isinstance(value, str) else [c for c in value if c]


def category_key(record: dict) -> str:
    """One text per category set, for stratification cells and tables."""
    return "+".join(categories_of(record))
