"""A guard behind an OpenAI-compatible chat endpoint: `libra-infer model=openai:NAME openai.base_url=URL`
(GPT-4o, Claude through a gateway, DeepSeek, Qwen-Max, or a vLLM or SGLang server of any checkpoint).

Requests go through the one OpenAI-compatible client (libra_train/chat/, the one data_synth uses): its
bounded concurrency, the client's retries, the on-disk cache (OUTPUT_DIR/cache/), and the key read from
an environment variable only. Each answer is parsed by the format's own rules; answers are written as
they come, so a stopped run resumes with what it had. A request that fails for good is written with its
reason and no label: it counts as a parse failure, scored wrong, never dropped. The label is the one the
answer writes (generate mode); with `openai.top_logprobs=N` (endpoints that return log-probabilities:
OpenAI's, vLLM's, SGLang's) p(unsafe) is also read at the label's position (label_probs), for AUPRC and
operating points.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from libra_train.data.formats import FormatConfig, chat_messages, label_words, target_opening
from libra_train.errors import LibraError
from libra_train.eval.outputs import PredictionWriter
from libra_train.eval.parse import read_output
from libra_train.eval.scoring import LABEL_ORDER, label_probabilities

log = logging.getLogger(__name__)
PREFIX = "openai:"
CHUNK = 64  # answers written (and resumable) every CHUNK samples


def is_endpoint(model: str) -> bool:
    return model.startswith(PREFIX)


def predict_endpoint(
    model: str, openai: dict, records: list[dict], fmt: FormatConfig, out_path: Path, **options
) -> Path:
    """Every record's answer from the endpoint, parsed, into out_path (resumable). options:
    max_new_tokens, controversial_as."""
    from libra_train.chat.openai_chat import Failed, OpenAIChat, Reply

    name = model.removeprefix(PREFIX)
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    chat = OpenAIChat(
        **openai,
        model=name,
        max_tokens=options.get("max_new_tokens", 256),
        cache_path=Path(out_path).parent / "cache" / f"{safe_name}.sqlite",
    )
    writer = PredictionWriter(out_path)
    todo = [r for r in records if str(r["id"]) not in writer.done]
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        answers = chat.complete_many([chat_messages(r, fmt) for r in chunk])
        rows = []
        for record, answer in zip(chunk, answers):
            if isinstance(answer, Failed):
                rows.append(
                    {**record, "pred_label": None, "p_unsafe": None, "critic": "", "error": answer.reason}
                )
                continue
            text = answer.text if isinstance(answer, Reply) else answer
            mapping = options.get("controversial_as", "unsafe")
            scored = {"p_unsafe": None}
            if isinstance(answer, Reply):
                probs = label_probs(answer.positions, record, fmt)
                scored = label_probabilities(probs, LABEL_ORDER[: len(probs)], mapping) if probs else scored
            rows.append({**record, **read_output(text, record, fmt, mapping), **scored, "critic": text})
        writer.write(rows)
    if chat.requests_sent and len(chat.failures) == chat.requests_sent:  # the endpoint, not the prompts
        raise LibraError(
            f"{name} at {chat.base_url}: all {chat.requests_sent} requests failed; first: {chat.failures[0]}"
        )
    writer.finish([str(r["id"]) for r in records])
    if chat.failures:
        log.warning("%s: %d requests failed for good; written with their reason", name, len(chat.failures))
    return Path(out_path)


def label_probs(positions: list, record: dict, fmt: FormatConfig) -> list[float] | None:
    """p of each label (safe, unsafe[, controversial]) at the position where the answer's label starts,
    from the endpoint's top log-probabilities: each alternative that continues the text written so far
    past the format's opening into exactly one label word counts for that label; the sums are
    normalised over the labels, as label mode normalises over the label tokens. None when the answer
    never reaches the opening, or no alternative there starts a label."""
    opening = target_opening(fmt, record)
    by_label = {label: word for word, label in label_words(fmt, record).items()}
    labels = [label for label in LABEL_ORDER if label in by_label]
    if opening is None:
        return None
    written = ""
    for token, alternatives in positions:
        mass = dict.fromkeys(labels, 0.0)
        for alt, logprob in alternatives:
            full = written + alt
            at = full.find(opening)
            rest = full[at + len(opening) :] if at >= 0 else ""
            label = _label_started(rest, by_label)
            if label:
                mass[label] += math.exp(logprob)
        total = sum(mass.values())
        if total > 0:
            return [mass[label] / total for label in labels]
        written += token
        if opening in written and written.split(opening, 1)[1]:  # past the label: nothing found there
            return None
    return None


def _label_started(rest: str, by_label: dict) -> str | None:
    """The one label whose word `rest` starts (or runs past), if exactly one."""
    hits = [
        lab for lab, word in by_label.items() if rest and (word.startswith(rest) or rest.startswith(word))
    ]
    return hits[0] if len(hits) == 1 else None
