"""The stream head: scores every response token from the guard's hidden states, so a response can be
judged while it is generated. Linear → RMSNorm → a risk head (safe / unsafe / controversial) and an
optional category head, on the backbone's last hidden state (the layout Qwen3Guard-Stream describes).

Token labels come from the data: a token is unsafe from the one holding `meta.harm_start` on; an unsafe
response without an onset teaches its last token only (the others are ignored), a safe one teaches every
token safe."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from libra_train.data.schema import UNSAFE

SAFE_CLASS, UNSAFE_CLASS, CONTROVERSIAL_CLASS = 0, 1, 2
IGNORE = -100  # torch's cross-entropy ignore_index


class StreamHead(nn.Module):
    def __init__(self, hidden_size: int, num_categories: int = 0):
        super().__init__()
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.norm = nn.RMSNorm(hidden_size)
        self.risk = nn.Linear(hidden_size, 3)
        self.category = nn.Linear(hidden_size, num_categories) if num_categories else None

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.norm(self.proj(hidden))
        return self.risk(h), (self.category(h) if self.category is not None else None)


def p_unsafe(risk_logits: torch.Tensor, controversial_as: str = "unsafe") -> torch.Tensor:
    """p(unsafe) per token: the unsafe class, with the controversial one added when eval.controversial_as
    maps it to unsafe."""
    probs = risk_logits.float().softmax(-1)
    return probs[..., UNSAFE_CLASS] + (probs[..., CONTROVERSIAL_CLASS] if controversial_as == "unsafe" else 0)


def token_labels(spans: list[tuple[int, int]], label: str, harm_start: int | None) -> list[int]:
    """One risk class per response token, from each token's character span in the response."""
    if label != UNSAFE:
        return [SAFE_CLASS] * len(spans)
    if harm_start is None:  # the response-level label only: its last token carries it
        return [IGNORE] * (len(spans) - 1) + [UNSAFE_CLASS] if spans else []
    return [UNSAFE_CLASS if end > harm_start else SAFE_CLASS for _, end in spans]


class StreamGuard(nn.Module):
    """A causal backbone's decoder and a stream head. `forward` scores every position it is given, after
    the cached ones: a session feeds each new chunk once, so each token costs one step."""

    def __init__(self, causal_lm, head: StreamHead):
        super().__init__()
        self.backbone, self.head = causal_lm, head

    def forward(self, input_ids, attention_mask=None, cache=None, labels=None):
        decoder = self.backbone.get_decoder()
        # transformers 5.25 names the KV cache argument `cache`; 5.23 and 5.24 `past_key_values`
        key = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
        out = decoder(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=cache is not None, **{key: cache}
        )
        risk, category = self.head(out.last_hidden_state)
        loss = None
        if labels is not None:
            flat = risk.flatten(0, 1).float()
            loss = nn.functional.cross_entropy(flat, labels.flatten(), ignore_index=IGNORE)
        return {"loss": loss, "risk_logits": risk, "category_logits": category}
