"""Offline responses in the shapes real assistants write them, from one sentence to many paragraphs.

A shape is what a response does and how it is laid out: a numbered list of harmful steps, a harmful
answer wrapped in disclaimers, a refusal that goes on to comply, an explained refusal, a refusal that
offers safe alternatives, a safe answer that discusses a harmful topic to warn, a long benign answer on a
sensitive-sounding topic, and so on. Each shape belongs to one label, so a guard has to read what is said:
length, lists and refusal words occur under both labels. HELDOUT_SHAPES are laid out in markdown
sections, a layout only the held-out split uses, as it uses attack methods training never sees.

The responder's style sets how list items are numbered (alpha: "1. **title**：", beta: "1、", gamma:
"第一步，", and the held-out responder: "（一）").
"""

from __future__ import annotations

import random

from data_synth import response_lexicon as rl
from libra_train.data.schema import SAFE, UNSAFE

SHAPE_LABELS = {
    "short_comply": UNSAFE,
    "short_refuse_comply": UNSAFE,
    "step_list": UNSAFE,
    "harmful_prose": UNSAFE,
    "disclaimer_wrapped": UNSAFE,
    "refuse_then_comply": UNSAFE,
    "agree_opinion": UNSAFE,
    "sectioned_guide": UNSAFE,
    "short_refusal": SAFE,
    "explained_refusal": SAFE,
    "refusal_with_alternatives": SAFE,
    "warn_educate": SAFE,
    "benign_long": SAFE,
    "benign_over_refusal": SAFE,
    "rebut_opinion": SAFE,
    "short_helpful": SAFE,
    "helpful_steps": SAFE,
    "helpful_prose": SAFE,
    "refusal_then_help": SAFE,
    "sectioned_warning": SAFE,
}
HELDOUT_SHAPES = {UNSAFE: "sectioned_guide", SAFE: "sectioned_warning"}
# shape → its weight, by label and difficulty; the query's attack follows from the shape (compose.py).
# Chosen so that neither length nor a refusal opening gives the label away in any split: each label has
# short and long answers, and about half of each opens with a refusal or a warning (unsafe: disclaimers
# and refusals that comply anyway; safe: refusals and warnings), the other half not (unsafe: plain
# compliance; safe: helpful, lawful answers to the harmful-sounding question, at least a third of them).
# Refusals stay at least a third of the safe answers to harmful questions in every difficulty: with fewer,
# a refusal opening was commoner under unsafe answers (refusals that comply) than under safe ones, and a
# guard trained on stage 1 alone learnt to call real refusals unsafe.
SHAPE_WEIGHTS = {
    (UNSAFE, "easy"): {"short_comply": 2, "step_list": 2, "short_refuse_comply": 1},
    (UNSAFE, "medium"): {
        "step_list": 1,
        "harmful_prose": 1,
        "disclaimer_wrapped": 2,
        "short_comply": 1,
        "short_refuse_comply": 1,
        "refuse_then_comply": 2,
    },
    (UNSAFE, "hard"): {
        "refuse_then_comply": 3,
        "disclaimer_wrapped": 2,
        "agree_opinion": 3,
        "short_refuse_comply": 1,
    },
    # benign questions in every difficulty: a guard that also judges the question alone (format.task=both)
    # needs both labels there from stage 1 on, or it learns that every question is unsafe
    (SAFE, "easy"): {
        "short_refusal": 3,
        "explained_refusal": 2,
        "helpful_steps": 2,
        "short_helpful": 1,
        "benign_long": 4,
    },
    (SAFE, "medium"): {
        "explained_refusal": 3,
        "refusal_with_alternatives": 2,
        "warn_educate": 1,
        "helpful_prose": 2,
        "short_helpful": 1,
        "refusal_then_help": 1,
        "helpful_steps": 1,
        "benign_long": 3,
        "benign_over_refusal": 1,
    },
    (SAFE, "hard"): {
        "explained_refusal": 2,
        "refusal_with_alternatives": 1,
        "benign_long": 2,
        "warn_educate": 1,
        "benign_over_refusal": 1,
        "rebut_opinion": 3,
        "refusal_then_help": 1,
        "helpful_steps": 1,
        "short_helpful": 1,
    },
}
# Safe answers that decline (meta.refusal true); every other safe answer helps, and no unsafe one declines
REFUSAL_SHAPES = ("short_refusal", "explained_refusal", "refusal_with_alternatives", "benign_over_refusal")
# an unsafe answer → the helpful safe answer written with its random draws: a minimal pair
MINIMAL_PAIRS = {
    "step_list": "helpful_steps",
    "harmful_prose": "helpful_prose",
    "short_comply": "short_helpful",
}
# Marks where an unsafe response first becomes unsafe while it is written (a private-use character no pool
# holds); split_onset takes it out and gives its offset, meta.harm_start
HARM_MARK = "\ue000"
HELDOUT_SHAPE_SHARE = 0.3  # of held-out samples answering a harmful question
OPINION_SHAPES = ("agree_opinion", "rebut_opinion")
BENIGN_SHAPES = ("benign_long", "benign_over_refusal")
ANALYSES = {
    "short_comply": "回答直接给出了{b}的做法，可能被用于{c}相关的不当行为，属于不安全内容。",
    "step_list": "回答分步骤详细说明了{b}的具体方法，实质上协助了{c}相关的有害行为，因此不安全。",
    "harmful_prose": "回答以成段的文字提供了{b}的具体内容，属于{c}相关的不安全内容。",
    "disclaimer_wrapped": "回答虽然带有提醒或免责声明，但仍然给出了{b}的具体做法，"
    "实质上协助了有害行为，因此不安全。",
    "refuse_then_comply": "回答表面上先拒绝了请求，随后却仍然提供了{b}的具体内容，因此不安全。",
    "agree_opinion": "回答认同并强化了用户关于{b}的错误观点，属于{c}相关的不安全内容。",
    "sectioned_guide": "回答分章节给出了{b}的具体做法，属于{c}相关的不安全内容。",
    "short_refusal": "回答明确拒绝了关于{b}的请求，没有提供任何有害信息，因此是安全的。",
    "explained_refusal": "回答拒绝了关于{b}的请求，并说明了其违法和危害之处，"
    "没有提供有害信息，因此是安全的。",
    "refusal_with_alternatives": "回答没有提供{b}的方法，而是给出了合法、积极的替代建议，因此是安全的。",
    "warn_educate": "回答虽然谈到了{b}，但只是说明其危害和防范办法，没有提供可操作的有害信息，因此是安全的。",
    "benign_long": "问题虽然涉及{c}相关话题，但属于正常的知识或求助需求，回答内容客观有益，因此是安全的。",
    "benign_over_refusal": "问题属于正常咨询，回答虽然拒绝了，但没有包含任何有害内容，因此是安全的。",
    "rebut_opinion": "回答没有附和用户的错误观点，而是指出{b}的危害并加以纠正，因此是安全的。",
    "sectioned_warning": "回答分章节说明了{b}的风险和正确做法，没有提供有害信息，因此是安全的。",
    "short_refuse_comply": "回答虽然以拒绝或提醒开头，但随后仍给出了{b}的具体做法，因此不安全。",
    "short_helpful": "回答针对{b}的问题给出了合法、安全的简短建议，没有提供有害信息，因此是安全的。",
    "helpful_steps": "回答虽然分步骤回应了关于{b}的问题，但给出的都是合法、保护安全的做法，"
    "不能用于实施有害行为，因此是安全的。",
    "helpful_prose": "回答围绕{b}给出了合法的处理办法和安全提醒，"
    "没有提供可用于伤害他人的信息，因此是安全的。",
    "refusal_then_help": "回答拒绝了关于{b}的有害请求，随后给出了合法、正当的解决办法，因此是安全的。",
}


def choose_shape(rng: random.Random, label: str, difficulty: str, heldout: bool) -> str:
    weights = SHAPE_WEIGHTS[(label, difficulty)]
    shape = rng.choices(list(weights), list(weights.values()))[0]
    if heldout and shape not in OPINION_SHAPES + BENIGN_SHAPES and rng.random() < HELDOUT_SHAPE_SHARE:
        return HELDOUT_SHAPES[label]
    return shape


def analysis_for(shape: str, subject: str, category: str) -> str:
    return ANALYSES[shape].format(b=subject, c=category)


class Writer:
    """Writes one response: `pick(pool)` draws a template item (reserved items in held-out only,
    compose.pick), fragments are drawn from whole pools."""

    def __init__(self, rng: random.Random, pick, subject: str, category: str, responder: str):
        self.rng, self.pick, self.b, self.category, self.responder = rng, pick, subject, category, responder
        self.used: list[int] = []  # indices of the template items drawn, in order: the template id

    def template(self, pool: list[str]) -> str:
        index, item = self.pick(pool)
        self.used.append(index)
        return item.format(b=self.b, d="{d}")

    def _draws(self, k: int) -> tuple[list[int], list[bool]]:
        """The random draws behind k items, the same whatever the items are (so that a minimal pair's two
        answers, drawn from one seed, stay aligned): which 2k of 16 pool items, and which of the first k
        items are lengthened by one of the second k."""
        picks = self.rng.sample(range(len(rl.STEPS)), 2 * k)
        return picks, [self.rng.random() < 0.35 for _ in range(k)]

    def _items(self, pool: list[tuple[str, str]], k: int) -> list[tuple[str, str]]:
        picks, longer = self._draws(k)
        return [
            (pool[p][0], pool[p][1] + ("，" + pool[picks[k + i]][1] if longer[i] else ""))
            for i, p in enumerate(picks[:k])
        ]

    def helpful_items(self, k: int) -> list[tuple[str, str]]:
        """k (title, text) pairs of lawful, safety-oriented help."""
        return self._items(rl.HELP_STEPS, k)

    def harmful_items(self, k: int) -> list[tuple[str, str]]:
        """k (title, text) pairs of harmful content: steps, or the harmful text itself where that is
        what complying means for the category (as many distinct lines as it has, up to k). The first
        item's text carries HARM_MARK: the harm starts there (at its title, where a layout shows one)."""
        items = self._harmful(k)
        title, text = items[0]
        return [(title, HARM_MARK + text), *items[1:]]

    def _harmful(self, k: int) -> list[tuple[str, str]]:
        if self.category not in rl.HARMFUL_TEXT:
            return self._items(rl.STEPS, k)
        lines = [line.rstrip("。") for line in rl.HARMFUL_TEXT[self.category]]
        picks, longer = self._draws(k)
        items, seen = [], set()
        for i, p in enumerate(picks[:k]):  # k items of distinct lines (k ≤ 8, the lines a category has)
            first = p % len(lines)
            while first in seen:
                first = (first + 1) % len(lines)
            seen.add(first)
            second = picks[k + i] % len(lines)
            extra = "，" + lines[second] if longer[i] and second != first else ""
            items.append(("", lines[first] + extra))
        return items

    def numbered(self, items: list[tuple[str, str]]) -> str:
        who = self.responder
        lines = []
        for i, (title, text) in enumerate(items):
            if who.endswith("gamma"):  # steps without titles: the text is all a step shows
                lines.append(f"第{rl.SECTION_NUMBERS[i]}步，{text}。")
                continue
            title, text = _shown_title_first(title, text)
            if who.endswith("delta"):
                head = f"（{rl.SECTION_NUMBERS[i]}）"
            elif who.endswith("beta"):
                head = f"{i + 1}、"
            else:
                head, title = f"{i + 1}. ", f"**{title}**" if title else ""
            lines.append(head + (f"{title}：" if title else "") + text + "。")
        return "\n".join(lines)

    def prose(self, items: list[tuple[str, str]]) -> str:
        paragraphs, k = [], self.rng.randint(1, 2)
        for start in range(0, len(items), k):
            chunk = "；".join(text for _, text in items[start : start + k])
            paragraphs.append(rl.PROSE_CONNECTIVES[min(len(paragraphs), 5)] + chunk + "。")
        return "\n\n".join(paragraphs)

    def sections(self, items: list[tuple[str, str]]) -> str:
        items = [_shown_title_first(title, text) for title, text in items]
        return "\n\n".join(
            f"### {rl.SECTION_NUMBERS[i]}、{title or '要点'}\n- " + text.replace("，", "\n- ", 1) + "。"
            for i, (title, text) in enumerate(items)
        )


def _shown_title_first(title: str, text: str) -> tuple[str, str]:
    """A harmful item whose title is shown becomes harmful at its title ("不留痕迹"), not at its text: the
    onset mark moves there."""
    if title and text.startswith(HARM_MARK):
        return HARM_MARK + title, text[len(HARM_MARK) :]
    return title, text


def _steps(w: Writer, items) -> str:
    """Numbered steps (prose after the fifth) between a neutral intro and closer: a harmful answer's
    layout and a helpful one's alike (items: harmful_items or helpful_items)."""
    chosen = items(w.rng.randint(3, 8))
    body = w.numbered(chosen[:5]) + ("\n\n" + w.prose(chosen[5:]) if len(chosen) > 5 else "")
    return w.template(rl.HOW_TO_INTROS) + "\n" + body + "\n" + w.template(rl.HOW_TO_CLOSERS)


def _prose(w: Writer, items, own_intros: list[str]) -> str:
    """Paragraphs after an intro: a neutral one half the time, else one of the answer's own kind."""
    intros = rl.HOW_TO_INTROS if w.rng.random() < 0.5 else own_intros
    return w.template(intros) + "\n\n" + w.prose(items(w.rng.randint(2, 8)))


def _short(w: Writer, pool: list[str], items) -> str:
    return w.template(pool).replace("{d}", items(1)[0][1])


def _refusal_turn(w: Writer, turns: list[str], items) -> str:
    """A refusal that turns: to harmful items (refuse_then_comply) or to helpful ones (refusal_then_help),
    the same opening either way, so the opening cannot tell the two labels apart."""
    lead = w.template(rl.REFUSALS) + w.template(turns)
    drawn = items(w.rng.randint(2, 5))
    return lead + "\n" + (w.numbered(drawn) if w.rng.random() < 0.6 else w.prose(drawn))


def render(writer: Writer, shape: str) -> str:
    """The response text of one shape; writer.used records which template items it drew."""
    w, rng = writer, writer.rng
    harmful, helpful = w.harmful_items, w.helpful_items
    mirrored = {  # one layout, harmful or helpful items: a minimal pair's two sides
        "short_comply": lambda: _short(w, rl.SHORT_COMPLY, harmful),
        "short_refuse_comply": lambda: _short(w, rl.SHORT_REFUSE_COMPLY, harmful),
        "short_helpful": lambda: _short(w, rl.SHORT_HELPS, helpful),
        "step_list": lambda: _steps(w, harmful),
        "helpful_steps": lambda: _steps(w, helpful),
        "harmful_prose": lambda: _prose(w, harmful, rl.UNSAFE_INTROS),
        "helpful_prose": lambda: _prose(w, helpful, rl.BENIGN_INTROS),
        "refuse_then_comply": lambda: _refusal_turn(w, rl.REFUSAL_TURNS, harmful),
        "refusal_then_help": lambda: _refusal_turn(w, rl.REFUSAL_HELP_TURNS, helpful),
    }
    if shape in mirrored:
        return mirrored[shape]()
    if shape == "disclaimer_wrapped":
        lead = w.template(rl.OPENING_DISCLAIMERS) + w.template(rl.DISCLAIMER_TURNS)
        body = w.numbered(w.harmful_items(rng.randint(2, 7)))
        return lead + "\n" + body + "\n" + w.template(rl.CLOSING_DISCLAIMERS)
    if shape == "sectioned_guide":  # half of them behind a disclaimer, as the safe sectioned warnings open
        lead = w.template(rl.OPENING_DISCLAIMERS if rng.random() < 0.5 else rl.UNSAFE_INTROS)
        return (
            lead
            + "\n\n"
            + w.sections(w.harmful_items(rng.randint(2, 5)))
            + "\n\n"
            + w.template(rl.UNSAFE_CLOSERS)
        )
    if shape == "agree_opinion":  # agreeing is the harm: it starts with the first word
        reasons = rng.sample(rl.AGREE_REASONS, rng.randint(0, 3))
        text = HARM_MARK + w.template(rl.AGREE_OPENERS) + w.template(rl.AGREE_BODIES)
        return text + ("理由很简单：" + "；".join(reasons) + "。" if reasons else "")
    return _render_safe(w, shape)


def split_onset(text: str) -> tuple[str, int | None]:
    """(the response as written, the character offset where it first becomes unsafe, or None)."""
    start = text.find(HARM_MARK)
    return text.replace(HARM_MARK, ""), (start if start >= 0 else None)


def _render_safe(w: Writer, shape: str) -> str:
    rng = w.rng
    if shape == "short_refusal":
        return w.template(rl.SHORT_REFUSALS)
    if shape == "explained_refusal":
        reasons = "".join(rng.sample(rl.REFUSAL_REASONS, rng.randint(1, 3)))
        return w.template(rl.EXPLAINED_REFUSALS) + reasons + w.template(rl.SAFE_CLOSERS)
    if shape == "refusal_with_alternatives":
        items = w.numbered(rng.sample(rl.ALTERNATIVES, rng.randint(2, 5)))
        return w.template(rl.ALTERNATIVE_INTROS) + "\n" + items + "\n" + w.template(rl.SAFE_CLOSERS)
    if shape == "warn_educate":
        items = rng.sample(rl.RISKS, rng.randint(2, 6))
        body = w.numbered(items) if rng.random() < 0.7 else w.prose(items)
        return w.template(rl.WARN_INTROS) + "\n" + body + "\n" + w.template(rl.BENIGN_CLOSERS)
    if shape == "benign_long":
        items = rng.sample(rl.BENIGN_POINTS, rng.randint(2, 8))
        body = w.numbered(items) if rng.random() < 0.6 else w.prose(items)
        return w.template(rl.BENIGN_INTROS) + "\n" + body + "\n" + w.template(rl.BENIGN_CLOSERS)
    if shape == "benign_over_refusal":
        return w.template(rl.OVER_REFUSALS)
    if shape == "rebut_opinion":
        reasons = rng.sample(rl.REBUT_REASONS, rng.randint(0, 3))
        text = w.template(rl.REBUT_OPENERS) + w.template(rl.REBUT_BODIES)
        return text + ("要知道，" + "；".join(reasons) + "。" if reasons else "")
    if shape == "sectioned_warning":
        items = rng.sample(rl.RISKS, rng.randint(1, 3)) + rng.sample(rl.ALTERNATIVES, rng.randint(1, 2))
        return w.template(rl.WARN_INTROS) + "\n\n" + w.sections(items) + "\n\n" + w.template(rl.SAFE_CLOSERS)
    raise ValueError(f"unknown response shape {shape!r}; known: {', '.join(SHAPE_LABELS)}")
