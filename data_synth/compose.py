"""Offline composition of queries and responses from the taxonomy and the lexicon.

A sample is planned first (category, label, difficulty, response shape), then its query is built from
an attack-method template and its response in its shape (shapes.py), in one responder's style.
Held-out samples are meant to measure generalisation, so they differ from training in four ways: their
adversarial queries use attack methods training never uses (lexicon.HELDOUT_ATTACKS); their query
templates, behaviours, benign topics and response templates come only from the reserved items; a share
of them is laid out in shapes training never sees (shapes.HELDOUT_SHAPES); and with the offline backend
their lists are numbered in a style of their own (lexicon.HELDOUT_RESPONDER).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from data_synth import lexicon as lx
from data_synth import shapes
from libra_train.data.schema import SAFE, UNSAFE

SPLIT_DIFFICULTY = {  # share of easy / medium / hard per split
    "stage1": (0.5, 0.5, 0.0),
    "stage2": (0.0, 0.2, 0.8),
    "heldout": (1 / 3, 1 / 3, 1 / 3),  # and every split in its style (HELD_OUT_STYLE)
}
HELD_OUT_STYLE = ("heldout", "dev")  # the splits drawn from the reserved templates, attacks and shapes
# Of the training splits' medium and hard questions, the share asked directly: a response's difficulty is
# its shape's, not its question's wrapper. With none, stage 2 (hard) held no plainly worded harmful
# question beside its plainly worded benign ones, and taught a guard that a plain question is benign.
DIRECT_SHARE = 0.25
ADVERSARIAL = [
    a
    for a in lx.ATTACKS
    if a not in lx.EASY_ATTACKS and a not in lx.HELDOUT_ATTACKS and a != "hidden_unsafe_opinion"
]


def reserved_indices(n: int) -> list[int]:
    """Items only the held-out split may use: every fourth item, or the last one of a short pool."""
    return [i for i in range(n) if i % 4 == 3] or [n - 1]


def pick(rng: random.Random, pool: list, heldout: bool):
    reserved = set(reserved_indices(len(pool)))
    allowed = [i for i in range(len(pool)) if (i in reserved) == heldout]
    index = rng.choice(allowed)
    return index, pool[index]


def pick_pair(rng: random.Random, first: list, second: list, heldout: bool):
    """A response template is a pair of fragments, each from its pool's reserved items in held-out and
    from the others in training: a held-out response's wording is new to the guard, not just its pairing."""
    return pick(rng, first, heldout), pick(rng, second, heldout)


@dataclass
class Plan:
    category: str
    sub_category: str
    label: str
    difficulty: str
    shape: str
    attack: str
    responder: str
    pair_of: str | None = None  # a minimal pair's safe half: the id whose question and draws it shares


MINIMAL_PAIR_SHARE = 0.5  # of the unsafe answers that have a helpful counterpart (shapes.MINIMAL_PAIRS)


def minimal_pair(rng: random.Random, plan: Plan, sample_id: str) -> Plan | None:
    """The helpful safe answer to the same question, written with the unsafe answer's random draws (its
    layout and length), for a share of the unsafe answers that have one: the two differ only in what
    they enable."""
    twin = shapes.MINIMAL_PAIRS.get(plan.shape)
    if plan.label != UNSAFE or twin is None or rng.random() >= MINIMAL_PAIR_SHARE:
        return None
    return Plan(**{**vars(plan), "label": SAFE, "shape": twin, "pair_of": sample_id})


def plan_sample(rng: random.Random, split: str, index: int, taxonomy: dict, responders) -> Plan:
    categories = list(taxonomy)
    category = categories[index % len(categories)]
    label = UNSAFE if (index // len(categories)) % 2 == 0 else SAFE
    held_out = split in HELD_OUT_STYLE
    easy, medium, _ = SPLIT_DIFFICULTY["heldout" if held_out else split]
    roll = rng.random()
    difficulty = "easy" if roll < easy else "medium" if roll < easy + medium else "hard"
    shape = shapes.choose_shape(rng, label, difficulty, heldout=held_out)
    if shape in shapes.OPINION_SHAPES:
        attack = "hidden_unsafe_opinion"
    elif shape in shapes.BENIGN_SHAPES:
        attack = "benign"
    elif difficulty == "easy" or (not held_out and rng.random() < DIRECT_SHARE):
        attack = "direct"
    else:
        attack = rng.choice(lx.HELDOUT_ATTACKS if held_out else ADVERSARIAL)
    sub_category = rng.choice(sorted(taxonomy[category]["sub_categories"]))
    responder = pick_responder(rng, split, responders)
    return Plan(category, sub_category, label, difficulty, shape, attack, responder)


def pick_responder(rng: random.Random, split: str, responders) -> str:
    """The held-out style for held-out samples where it exists (offline backend), never in training."""
    if lx.HELDOUT_RESPONDER in responders:
        if split in HELD_OUT_STYLE:
            return lx.HELDOUT_RESPONDER
        responders = [r for r in responders if r != lx.HELDOUT_RESPONDER]
    return rng.choice(list(responders))


def compose_query(rng: random.Random, plan: Plan, taxonomy: dict, heldout: bool) -> dict:
    persona = pick(rng, lx.PERSONAS, heldout)[1]
    task = rng.choice(lx.TASK_TYPES)
    if plan.attack == "benign":
        topic_index, subject = pick(rng, taxonomy[plan.category]["benign_topics"], heldout)
        template_index, template = pick(rng, lx.BENIGN_TEMPLATES, heldout)
    else:
        topic_index, subject = pick(
            rng, taxonomy[plan.category]["sub_categories"][plan.sub_category], heldout
        )
        # a held-out-only method may use all its templates: the method itself is what training never saw
        reserved_only = heldout and plan.attack not in lx.HELDOUT_ATTACKS
        template_index, template = pick(rng, lx.ATTACKS[plan.attack], reserved_only)
    return {
        "question": template.format(b=subject, p=persona, t=task),
        "subject": subject,
        "template": f"{plan.attack}/{template_index}",
        "element": "/".join(
            [plan.category, plan.sub_category if plan.attack != "benign" else "benign", str(topic_index)]
        ),
        "query_label": SAFE if plan.attack == "benign" else UNSAFE,
    }


def compose_response(
    rng: random.Random, plan: Plan, subject: str, heldout: bool
) -> tuple[str, str, int | None]:
    """(response text, response template id, harm onset) in the planned shape: the id names the shape
    and the template items drawn, which held-out draws from the reserved ones; the onset is the
    character offset where an unsafe response first becomes unsafe (None for a safe one)."""
    writer = shapes.Writer(rng, lambda pool: pick(rng, pool, heldout), subject, plan.category, plan.responder)
    text, harm_start = shapes.split_onset(shapes.render(writer, plan.shape))
    return text, f"{plan.shape}/{'.'.join(map(str, writer.used))}", harm_start


def add_context(rng: random.Random, sample: dict, heldout: bool) -> dict:
    """A multi-turn version of a labelled sample: the judged exchange stays as it was judged, behind one
    or two earlier exchanges. A harmful request may become a follow-up: its question moves into the
    context, the assistant asks back, and the judged question only says to go on, so the intent is
    found in the context alone. Held-out conversations use the reserved items only."""
    context = []
    for _ in range(rng.choice([1, 2])):
        question, answer = pick(rng, lx.SMALL_TALK, heldout)[1]
        context += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    question = sample["question"]
    meta = {**sample["meta"], "turns": "small_talk"}
    if meta.get("attack_method") not in ("benign", "hidden_unsafe_opinion") and rng.random() < 0.5:
        clarify = pick(rng, lx.CLARIFY_REPLIES, heldout)[1]
        context += [{"role": "user", "content": question}, {"role": "assistant", "content": clarify}]
        question = pick(rng, lx.FOLLOW_UPS, heldout)[1].format(t=rng.choice(lx.TASK_TYPES))
        meta["turns"] = "follow_up"
    judged = [{"role": "user", "content": question}]
    if sample.get("response"):
        judged.append({"role": "assistant", "content": sample["response"]})
    return {**sample, "question": question, "messages": context + judged, "meta": meta}
