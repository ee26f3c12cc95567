"""A guard behind an OpenAI-compatible chat endpoint: `libra-infer model=openai:NAME openai.base_url=URL`
(GPT-4o, Claude through a gateway, DeepSeek, Qwen-Max, or a vLLM or SGLang server of any checkpoint).

Requests go through the one OpenAI-compatible client (libra_train/chat/, the one data_synth uses): its
bounded concurrency, the client's retries, the on-disk cache (OUTPUT_DIR/cache/), and the key read from
an environment variable only. Each answer is parsed by the format's own rules; answers are written as
they come, so a stopped run resumes with what it had. A request that fails for good is written with its
reason and no label: it counts as a parse failure, scored wrong, never dropped. An endpoint returns
text, so this is generate mode.
"""

from __future__ import annotations

import logging
from pathlib import Path

from libra_train.data.formats import FormatConfig, chat_messages
from libra_train.errors import LibraError
from libra_train.eval.outputs import PredictionWriter
from libra_train.eval.parse import read_output

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
    from libra_train.chat.openai_chat import Failed, OpenAIChat

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
            read = read_output(answer, record, fmt, options.get("controversial_as", "unsafe"))
            rows.append({**record, **read, "p_unsafe": None, "critic": answer})
        writer.write(rows)
    if chat.requests_sent and len(chat.failures) == chat.requests_sent:  # the endpoint, not the prompts
        raise LibraError(
            f"{name} at {chat.base_url}: all {chat.requests_sent} requests failed; first: {chat.failures[0]}"
        )
    writer.finish([str(r["id"]) for r in records])
    if chat.failures:
        log.warning("%s: %d requests failed for good; written with their reason", name, len(chat.failures))
    return Path(out_path)
