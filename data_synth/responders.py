"""Responders write the model turn of a synthetic sample: offline (the planned shape in a planned
style, no model) or an LLM through a chat backend (judges.py then labels what it wrote)."""

from __future__ import annotations

import random

from data_synth.compose import HELD_OUT_STYLE, Plan, compose_response
from data_synth.shapes import REFUSAL_SHAPES


def sample_rng(seed: int, sample_id: str) -> random.Random:
    """Per-sample randomness: the same sample comes out the same whatever the order or batch."""
    return random.Random(f"{seed}:{sample_id}")


class OfflineResponder:
    """Writes the planned shape in the planned responder's style (no model)."""

    name = "offline"

    def __init__(self, seed: int):
        self.seed = seed

    def respond(self, samples: list[dict]) -> list[str]:
        out = []
        for s in samples:
            plan = Plan(**s["meta"]["plan"])
            heldout = s["meta"]["split"] in HELD_OUT_STYLE
            draws = sample_rng(self.seed, (plan.pair_of or s["id"]) + "/r")  # a minimal pair's: shared
            text, template, harm_start = compose_response(draws, plan, s["meta"]["subject"], heldout)
            s["meta"]["response_template"] = template
            if harm_start is not None:  # where it first becomes unsafe: a stream head's token labels
                s["meta"]["harm_start"] = harm_start
            s["meta"]["refusal"] = plan.shape in REFUSAL_SHAPES  # what it wrote: a refusal, or an answer
            out.append(text)
        return out


class ChatResponder:
    """An LLM answers the query as a chatbot would; its answer is whatever it is, the judges label it."""

    def __init__(self, chat, system_prompt: str = ""):
        self.chat, self.system_prompt, self.name = chat, system_prompt, chat.name

    def respond(self, samples: list[dict]) -> list[str]:
        prefix = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return self.chat.complete_many(
            [prefix + [{"role": "user", "content": s["question"]}] for s in samples]
        )
