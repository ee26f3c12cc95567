"""Any OpenAI-compatible chat endpoint (OpenAI, a vLLM server, …), through the official client.

Retries with exponential backoff on 5xx, 429 and dropped connections are the client's own
(`max_retries`); this class adds bounded concurrency and the on-disk cache. A request that fails for
good (an HTTP 400 content refusal, retries used up) becomes a `Failed` answer, so one bad prompt never
aborts a run; when most requests fail the endpoint itself is wrong, and the run stops early.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from libra_train.chat.cache import CompletionCache, request_key
from libra_train.errors import ConfigError, LibraError
from libra_train.progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failed:
    """The answer to a request that failed for good: why, in one line."""

    reason: str


@dataclass(frozen=True)
class Reply:
    """An answer with its first tokens' top log-probabilities (top_logprobs > 0): per position, the
    token written and [token, logprob] alternatives."""

    text: str
    positions: list

    def dumps(self) -> str:
        return json.dumps({"text": self.text, "positions": self.positions}, ensure_ascii=False)

    @classmethod
    def loads(cls, blob: str) -> Reply:
        data = json.loads(blob)
        return cls(data["text"], data["positions"])


LOGPROB_POSITIONS = 48  # positions kept per answer: far enough for any guard's label


def _reason(err: Exception) -> str:
    status = getattr(err, "status_code", None)
    text = " ".join(str(getattr(err, "message", None) or err).split())[:200]
    return f"HTTP {status}: {text}" if status else f"{type(err).__name__}: {text}"


class OpenAIChat:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 60.0,
        temperature: float = 0.0,
        max_tokens: int = 512,
        cache_path=None,
        name: str | None = None,
        abort_after: int = 20,
        abort_share: float = 0.5,
        top_logprobs: int = 0,
    ):
        import openai

        if not base_url or not model:
            raise ConfigError("backend", "the openai backend needs base_url and model")
        if concurrency < 1:
            raise ConfigError("backend.concurrency", f"must be at least 1, got {concurrency}")
        # The key comes from the environment only, so it can never end up in a config file or log.
        api_key = os.environ.get(api_key_env) or "EMPTY"  # local vLLM servers accept any key
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=timeout
        )
        self.model, self.concurrency, self.name = model, concurrency, name or model
        self.params = {"temperature": temperature, "max_tokens": max_tokens}
        if top_logprobs:  # answers become Replies: the text and its first tokens' alternatives
            self.params.update(logprobs=True, top_logprobs=top_logprobs)
        self.cache = CompletionCache(cache_path)
        self.requests_sent = 0
        self.base_url = base_url
        # once at least abort_after requests have been sent, more than abort_share of them failing
        # means the endpoint (URL, key, model) is wrong, not a few prompts: stop instead of finishing
        self.abort_after, self.abort_share = abort_after, abort_share
        self.failures: list[str] = []
        self._count_lock = threading.Lock()

    def _complete(self, messages: list[dict]) -> str:
        key = request_key(self.model, messages, self.params)
        cached = self.cache.get(key)
        if cached is not None:
            return Reply.loads(cached) if self.params.get("logprobs") else cached
        import openai

        with self._count_lock:
            self.requests_sent += 1
        try:
            reply = self.client.chat.completions.create(model=self.model, messages=messages, **self.params)
        except openai.APIError as err:  # the client's retries are spent, or the error is not retryable
            return self._failed(_reason(err))
        text = reply.choices[0].message.content or ""
        if self.params.get("logprobs"):
            answer = Reply(text, _positions(reply.choices[0].logprobs))
            self.cache.put(key, answer.dumps())
            return answer
        self.cache.put(key, text)
        return text

    def _failed(self, reason: str) -> Failed:
        with self._count_lock:
            self.failures.append(reason)
            failed, sent = len(self.failures), self.requests_sent
        if sent >= self.abort_after and failed > self.abort_share * sent:
            raise LibraError(
                f"{self.name} at {self.base_url}: {failed} of {sent} requests failed; "
                f"first: {self.failures[0]}"
            )
        log.warning("%s: a request failed for good (%s)", self.name, reason)
        return Failed(reason)

    def complete_many(self, conversations: list[list[dict]]) -> list[str]:
        """Identical conversations are sent once: two in flight together would both be paid for."""
        keys = [request_key(self.model, c, self.params) for c in conversations]
        unique = dict(zip(keys, conversations))
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            with progress(f"{self.name}: requests", len(unique), unit="requests") as advance:
                answers = {}
                for key, answer in zip(unique, pool.map(self._complete, unique.values())):
                    answers[key] = answer
                    advance()
        finally:  # on an abort, the queued requests are dropped rather than sent
            pool.shutdown(wait=True, cancel_futures=True)
        return [answers[k] for k in keys]


def _positions(logprobs) -> list:
    """[token, [[alternative, logprob], …]] for the first positions; [] when the endpoint sent none."""
    content = getattr(logprobs, "content", None) or []
    return [
        [item.token, [[alt.token, alt.logprob] for alt in (item.top_logprobs or [])]]
        for item in content[:LOGPROB_POSITIONS]
    ]
