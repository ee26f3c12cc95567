"""One streamed response under moderation: the question is encoded once, then each chunk of the response
costs only its new tokens, through the backbone's KV cache. Text chunks are tokenized with the text
before them (a token may span two chunks): where the newest tokens change, the cache is cropped back to
the last token that stayed and only the rest is run."""

from __future__ import annotations

import torch
from transformers import DynamicCache

from libra_train.stream.head import StreamGuard, p_unsafe

PREFIX = "用户：{question}\n助手："  # what precedes the response the head scores


Spans = list[tuple[int, int]]


def response_spans(tokenizer, question: str, response: str) -> tuple[list[int], list[int], Spans]:
    """(prefix ids, response ids, each response token's character span in the response): the input a
    stream head is trained and run on."""
    prefix = tokenizer(PREFIX.format(question=question), add_special_tokens=False)["input_ids"]
    enc = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
    return prefix, enc["input_ids"], [tuple(span) for span in enc["offset_mapping"]]


class StreamSession:
    def __init__(self, guard: StreamGuard, tokenizer, question: str, controversial_as: str = "unsafe"):
        self.guard, self.tokenizer, self.controversial_as = guard, tokenizer, controversial_as
        self.prefix, _, _ = response_spans(tokenizer, question, "")
        self.cache = DynamicCache()
        self.fed: list[int] = []  # response token ids in the cache
        self.text = ""
        self._run(self.prefix)

    @torch.no_grad()
    def _run(self, ids: list[int]) -> list[float]:
        if not ids:
            return []
        self.guard.eval()
        out = self.guard(torch.tensor([ids]), cache=self.cache)
        return p_unsafe(out["risk_logits"][0], self.controversial_as).tolist()

    def feed_ids(self, ids: list[int]) -> list[float]:
        """p(unsafe) after each of these new response tokens."""
        self.fed += list(ids)
        return self._run(list(ids))

    def tokens_with(self, chunk: str) -> list[int]:
        """The response's token ids once this chunk is added (a token may span two chunks)."""
        return self.tokenizer(self.text + chunk, add_special_tokens=False)["input_ids"]

    def feed_text(self, chunk: str, ids: list[int] | None = None) -> list[float]:
        """p(unsafe) after each response token this chunk added or changed; `ids`: tokens_with(chunk),
        where the caller has it already."""
        ids = self.tokens_with(chunk) if ids is None else ids
        self.text += chunk
        kept = 0
        while kept < min(len(ids), len(self.fed)) and ids[kept] == self.fed[kept]:
            kept += 1
        if kept < len(self.fed):  # the chunk merged into tokens already run: run them again
            self.cache.crop(kept - len(self.fed))  # a negative count: drop that many from the end
            self.fed = self.fed[:kept]
        return self.feed_ids(ids[kept:])
