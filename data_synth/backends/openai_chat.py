"""Any OpenAI-compatible chat endpoint (OpenAI, a vLLM server, …), through the official client.

Retries with exponential backoff on 5xx, 429 and dropped connections are the client's own
(`max_retries`); this class adds bounded concurrency and the on-disk cache.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

from data_synth.backends.cache import CompletionCache, request_key
from libra_train.errors import ConfigError

log = logging.getLogger(__name__)


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
        self.cache = CompletionCache(cache_path)
        self.requests_sent = 0

    def _complete(self, messages: list[dict]) -> str:
        key = request_key(self.model, messages, self.params)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        self.requests_sent += 1
        reply = self.client.chat.completions.create(model=self.model, messages=messages, **self.params)
        text = reply.choices[0].message.content or ""
        self.cache.put(key, text)
        return text

    def complete_many(self, conversations: list[list[dict]]) -> list[str]:
        """Identical conversations are sent once: two in flight together would both be paid for."""
        keys = [request_key(self.model, c, self.params) for c in conversations]
        unique = dict(zip(keys, conversations))
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            answers = dict(zip(unique, pool.map(self._complete, unique.values())))
        return [answers[k] for k in keys]
