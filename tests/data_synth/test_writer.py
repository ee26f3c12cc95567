"""The response writer, one part at a time: each responder's list style, paragraphs, sections, the random
draws behind a list's items, how many items each shape writes, which layouts it chooses between, and
where the held-out layouts replace a training one."""

import random
import re
from collections import Counter

import pytest

from data_synth import response_lexicon as rl
from data_synth.shapes import (
    BENIGN_SHAPES,
    HARM_MARK,
    HELDOUT_SHAPES,
    OPINION_SHAPES,
    SHAPE_WEIGHTS,
    Writer,
    analysis_for,
    choose_shape,
    render,
    split_onset,
)

ITEMS = [("标题甲", "做甲，再做乙"), ("", "做丙"), ("标题丁", "做丁")]
SEEDS = range(300)


def writer(seed: int = 0, responder: str = "model-alpha", category: str = "违法犯罪") -> Writer:
    """A writer that always draws each pool's first template."""
    return Writer(random.Random(seed), lambda pool: (0, pool[0]), "撬锁", category, responder)


@pytest.mark.parametrize(
    "responder, expected",
    [
        ("model-alpha", "1. **标题甲**：做甲，再做乙。\n2. 做丙。\n3. **标题丁**：做丁。"),
        ("model-beta", "1、标题甲：做甲，再做乙。\n2、做丙。\n3、标题丁：做丁。"),
        ("model-gamma", "第一步，做甲，再做乙。\n第二步，做丙。\n第三步，做丁。"),
        ("model-delta", "（一）标题甲：做甲，再做乙。\n（二）做丙。\n（三）标题丁：做丁。"),
    ],
)
def test_each_responder_numbers_a_list_in_its_own_style(responder, expected):
    assert writer(responder=responder).numbered(ITEMS) == expected


@pytest.mark.parametrize("responder", ["model-gamma", "model-delta"])
def test_a_list_of_eight_is_numbered_one_to_eight_without_starting_again(responder):
    lines = writer(responder=responder).numbered([("", f"第{i}项") for i in range(8)]).split("\n")
    heads = [re.match(r"第?（?([一二三四五六七八])", line).group(1) for line in lines]
    assert heads == list("一二三四五六七八")


def test_prose_keeps_the_items_in_order_one_or_two_to_a_paragraph_after_a_connective():
    items = [("", f"内容{i}") for i in range(7)]
    per_paragraph = Counter()
    for seed in range(40):
        paragraphs = writer(seed).prose(items).split("\n\n")
        k = -(-7 // len(paragraphs))
        per_paragraph[k] += 1
        for j, paragraph in enumerate(paragraphs):
            chunk = "；".join(text for _, text in items[j * k : (j + 1) * k])
            assert paragraph == rl.PROSE_CONNECTIVES[min(j, 5)] + chunk + "。"
    assert set(per_paragraph) == {1, 2}  # seven paragraphs of one item, or four of up to two


def test_sections_give_each_item_a_numbered_heading_and_its_clauses_as_bullets():
    assert writer().sections(ITEMS) == (
        "### 一、标题甲\n- 做甲\n- 再做乙。\n\n### 二、要点\n- 做丙。\n\n### 三、标题丁\n- 做丁。"
    )
    assert writer().sections([("题", "一，二，三")]) == "### 一、题\n- 一\n- 二，三。"  # the first comma only


def test_a_template_is_filled_with_the_subject_and_its_index_is_recorded():
    w = Writer(random.Random(0), lambda pool: (1, pool[1]), "撬锁", "违法犯罪", "model-alpha")
    assert w.template(["甲{b}", "乙{b}，先{d}"]) == "乙撬锁，先{d}"  # {d} is filled later, by _short
    w.template(["甲", "乙"])
    assert w.used == [1, 1]
    assert analysis_for("short_comply", "撬锁", "违法犯罪") == (
        "回答直接给出了撬锁的做法，可能被用于违法犯罪相关的不当行为，属于不安全内容。"
    )


def test_items_come_from_distinct_pool_entries_and_about_a_third_are_lengthened_by_another():
    own = dict(rl.HELP_STEPS)
    longer, total = 0, 0
    for seed in SEEDS:
        items = writer(seed)._items(rl.HELP_STEPS, 8)
        titles = [title for title, _ in items]
        assert len(set(titles)) == 8 and set(titles) <= set(own)
        for title, text in items:
            total += 1
            if text == own[title]:
                continue
            longer += 1
            assert text.startswith(own[title] + "，")
            extra = text[len(own[title]) + 1 :]
            # another entry, not one of the list's own items
            assert extra in own.values() and extra not in {own[t] for t in titles}
    assert 0.28 < longer / total < 0.42  # 0.35 drawn per item


def test_harmful_text_items_are_distinct_lines_of_the_category_without_their_full_stop():
    lines = [line.rstrip("。") for line in rl.HARMFUL_TEXT["偏见歧视"]]
    longer = 0
    for seed in SEEDS:
        items = writer(seed, category="偏见歧视")._harmful(8)
        firsts = []
        for title, text in items:
            assert title == ""
            first = next(line for line in lines if text.startswith(line))
            firsts.append(first)
            rest = text[len(first) :]
            assert rest == "" or (rest.startswith("，") and rest[1:] in lines and rest[1:] != first)
            longer += rest != ""
        assert sorted(firsts) == sorted(lines)  # eight items: every line once
    assert longer > 0


def test_only_the_first_harmful_item_carries_the_onset_mark():
    for category in ("违法犯罪", "仇恨辱骂"):
        items = writer(3, category=category).harmful_items(4)
        assert items[0][1].startswith(HARM_MARK)
        assert all(HARM_MARK not in text for _, text in items[1:])
        assert all(HARM_MARK not in title for title, _ in items)


class CountingWriter(Writer):
    """Records how many items each harmful_items/helpful_items call asks for."""

    def __init__(self, seed: int):
        super().__init__(random.Random(seed), lambda pool: (0, pool[0]), "撬锁", "违法犯罪", "model-alpha")
        self.asked: list[int] = []

    def _items(self, pool, k):
        self.asked.append(k)
        return super()._items(pool, k)


@pytest.mark.parametrize(
    "shape, low, high",
    [
        ("step_list", 3, 8),
        ("helpful_steps", 3, 8),
        ("harmful_prose", 2, 8),
        ("helpful_prose", 2, 8),
        ("refuse_then_comply", 2, 5),
        ("refusal_then_help", 2, 5),
        ("disclaimer_wrapped", 2, 7),
        ("sectioned_guide", 2, 5),
        ("short_comply", 1, 1),
        ("short_helpful", 1, 1),
        ("short_refuse_comply", 1, 1),
    ],
)
def test_each_shape_writes_its_range_of_items(shape, low, high):
    counts = set()
    for seed in SEEDS:
        w = CountingWriter(seed)
        text = render(w, shape)
        assert len(w.asked) == 1
        counts.add(w.asked[0])
        assert "{" not in text and "}" not in text
    assert counts == set(range(low, high + 1))


def test_a_step_list_numbers_five_steps_and_writes_the_rest_as_prose():
    for seed in range(60):
        w = CountingWriter(seed)
        text, _ = split_onset(render(w, "step_list"))
        numbered = re.findall(r"^\d+\. ", text, flags=re.M)
        assert len(numbered) == min(w.asked[0], 5)
        assert (rl.PROSE_CONNECTIVES[0] in text) == (w.asked[0] > 5)
        if w.asked[0] > 5:  # the sixth step opens a paragraph right after the fifth
            assert re.search(r"^5\. .*。\n\n" + rl.PROSE_CONNECTIVES[0], text, flags=re.M), text
        assert text.startswith(rl.HOW_TO_INTROS[0].format(b="撬锁")) and text.endswith(
            rl.HOW_TO_CLOSERS[0].format(b="撬锁")
        )


def _count(pool, text: str) -> int:
    return sum(1 for item in pool if (item[1] if isinstance(item, tuple) else item.rstrip("。")) in text)


@pytest.mark.parametrize(
    "shape, pool, low, high",
    [
        ("explained_refusal", rl.REFUSAL_REASONS, 1, 3),
        ("refusal_with_alternatives", rl.ALTERNATIVES, 2, 5),
        ("warn_educate", rl.RISKS, 2, 6),
        ("benign_long", rl.BENIGN_POINTS, 2, 8),
        ("rebut_opinion", rl.REBUT_REASONS, 0, 3),
        ("agree_opinion", rl.AGREE_REASONS, 0, 3),
    ],
)
def test_each_safe_or_opinion_shape_draws_its_range_of_points(shape, pool, low, high):
    counts = {_count(pool, split_onset(render(writer(seed), shape))[0]) for seed in SEEDS}
    assert counts == set(range(low, high + 1))


def test_a_sectioned_warning_holds_one_to_three_risks_and_one_or_two_alternatives():
    seen = set()
    for seed in SEEDS:
        text = render(writer(seed), "sectioned_warning")
        risks, alternatives = _count(rl.RISKS, text.replace("\n- ", "，")), 0
        alternatives = sum(1 for title, _ in rl.ALTERNATIVES if f"、{title}\n" in text)
        assert text.count("### ") == risks + alternatives
        seen.add((risks, alternatives))
    assert seen == {(r, a) for r in (1, 2, 3) for a in (1, 2)}


@pytest.mark.parametrize(
    "shape, numbered_share",
    [("warn_educate", 0.7), ("benign_long", 0.6), ("refuse_then_comply", 0.6), ("refusal_then_help", 0.6)],
)
def test_list_or_prose_is_drawn_at_the_shapes_share(shape, numbered_share):
    numbered = sum(1 for seed in SEEDS if re.search(r"^\d+\. ", render(writer(seed), shape), flags=re.M))
    assert abs(numbered / len(SEEDS) - numbered_share) < 0.08


def test_half_of_the_prose_answers_open_neutrally_and_half_in_their_own_voice():
    neutral = rl.HOW_TO_INTROS[0].format(b="撬锁")
    for shape, own in (("harmful_prose", rl.UNSAFE_INTROS), ("helpful_prose", rl.BENIGN_INTROS)):
        openings = Counter(render(writer(seed), shape).startswith(neutral) for seed in SEEDS)
        assert abs(openings[True] / len(SEEDS) - 0.5) < 0.08, shape
        own_first = own[0].format(b="撬锁")
        assert all(render(writer(seed), shape).startswith((neutral, own_first)) for seed in range(20)), shape


def test_a_sectioned_guide_opens_with_a_disclaimer_half_the_time():
    disclaimer = rl.OPENING_DISCLAIMERS[0].format(b="撬锁")
    share = sum(render(writer(seed), "sectioned_guide").startswith(disclaimer) for seed in SEEDS) / len(SEEDS)
    assert abs(share - 0.5) < 0.08


def test_shapes_are_drawn_at_their_weights_and_held_out_swaps_a_third_of_the_others():
    for (label, difficulty), weights in SHAPE_WEIGHTS.items():
        rng, n = random.Random(0), 4000
        drawn = Counter(choose_shape(rng, label, difficulty, heldout=False) for _ in range(n))
        total = sum(weights.values())
        assert set(drawn) == set(weights)
        for shape, weight in weights.items():
            assert abs(drawn[shape] / n - weight / total) < 0.03, (label, difficulty, shape)
        held = Counter(choose_shape(rng, label, difficulty, heldout=True) for _ in range(n))
        swappable = sum(w for s, w in weights.items() if s not in OPINION_SHAPES + BENIGN_SHAPES) / total
        assert abs(held[HELDOUT_SHAPES[label]] / n - 0.3 * swappable) < 0.03, (label, difficulty)
        for shape in set(weights) & set(OPINION_SHAPES + BENIGN_SHAPES):
            assert abs(held[shape] / n - weights[shape] / total) < 0.03, shape  # never swapped


def _first(pool) -> str:
    return pool[0].format(b="撬锁", d="{d}")


# shape → (its opening, or the openings it draws between; what follows the opening; what precedes the
# closing; its closing)
LAYOUTS = {
    "step_list": (_first(rl.HOW_TO_INTROS), "\n1. ", "。\n", _first(rl.HOW_TO_CLOSERS)),
    "helpful_steps": (_first(rl.HOW_TO_INTROS), "\n1. ", "。\n", _first(rl.HOW_TO_CLOSERS)),
    "disclaimer_wrapped": (
        _first(rl.OPENING_DISCLAIMERS) + _first(rl.DISCLAIMER_TURNS), "\n1. ", "。\n",
        _first(rl.CLOSING_DISCLAIMERS),
    ),
    "refusal_with_alternatives": (_first(rl.ALTERNATIVE_INTROS), "\n1. ", "。\n", _first(rl.SAFE_CLOSERS)),
    "warn_educate": (_first(rl.WARN_INTROS), "\n", "。\n", _first(rl.BENIGN_CLOSERS)),
    "benign_long": (_first(rl.BENIGN_INTROS), "\n", "。\n", _first(rl.BENIGN_CLOSERS)),
    "sectioned_warning": (_first(rl.WARN_INTROS), "\n\n### 一、", "。\n\n", _first(rl.SAFE_CLOSERS)),
    "sectioned_guide": (
        (_first(rl.OPENING_DISCLAIMERS), _first(rl.UNSAFE_INTROS)), "\n\n### 一、", "。\n\n",
        _first(rl.UNSAFE_CLOSERS),
    ),
    "harmful_prose": (
        (_first(rl.HOW_TO_INTROS), _first(rl.UNSAFE_INTROS)), "\n\n" + rl.PROSE_CONNECTIVES[0], "。", ""
    ),
    "helpful_prose": (
        (_first(rl.HOW_TO_INTROS), _first(rl.BENIGN_INTROS)), "\n\n" + rl.PROSE_CONNECTIVES[0], "。", ""
    ),
}  # fmt: skip


@pytest.mark.parametrize("shape", sorted(LAYOUTS))
def test_each_layout_joins_its_opening_body_and_closing_as_laid_out(shape):
    openings, after, before, closing = LAYOUTS[shape]
    for seed in range(40):
        text, _ = split_onset(render(writer(seed), shape))
        opening = next(
            (o for o in (openings if isinstance(openings, tuple) else (openings,)) if text.startswith(o)),
            None,
        )
        assert opening is not None and text.endswith(before + closing), (seed, text)
        body = text[len(opening) : len(text) - len(closing)]
        if after.strip():
            assert body.startswith(after), (seed, text)
        else:  # a list or paragraphs after a single line break
            assert body.startswith(after) and body[len(after)] not in "\n", (seed, text)
        assert "\n\n\n" not in text and not body.endswith("\n\n" + "。")


def test_a_step_list_of_five_or_fewer_steps_has_no_paragraph_after_it():
    for seed in range(80):
        w = CountingWriter(seed)
        text, _ = split_onset(render(w, "step_list"))
        body = text[len(_first(rl.HOW_TO_INTROS)) + 1 : -len(_first(rl.HOW_TO_CLOSERS)) - 1]
        assert ("\n\n" in body) == (w.asked[0] > 5), (w.asked[0], text)


def _joined(rest: str, lead: str, pool: list[str], sep: str, end: str) -> list[str]:
    """The pool items that `rest` is made of, as lead + items joined by sep + end ([] for no rest)."""
    if not rest:
        return []
    assert rest.startswith(lead) and rest.endswith(end), rest
    parts = rest[len(lead) : len(rest) - len(end)].split(sep)
    assert all(part in pool for part in parts), parts
    return parts


@pytest.mark.parametrize(
    "shape, openers, bodies, lead, pool",
    [
        ("agree_opinion", rl.AGREE_OPENERS, rl.AGREE_BODIES, "理由很简单：", rl.AGREE_REASONS),
        ("rebut_opinion", rl.REBUT_OPENERS, rl.REBUT_BODIES, "要知道，", rl.REBUT_REASONS),
    ],
)
def test_an_opinion_answer_gives_its_reasons_after_a_lead_or_none_at_all(shape, openers, bodies, lead, pool):
    counts = set()
    for seed in SEEDS:
        text, _ = split_onset(render(writer(seed), shape))
        start = _first(openers) + _first(bodies)
        assert text.startswith(start)
        counts.add(len(_joined(text[len(start) :], lead, pool, "；", "。")))
    assert counts == {0, 1, 2, 3}


def test_an_explained_refusal_is_its_opening_its_reasons_run_together_and_a_closing():
    for seed in range(60):
        text = render(writer(seed), "explained_refusal")
        opening, closing = _first(rl.EXPLAINED_REFUSALS), _first(rl.SAFE_CLOSERS)
        assert text.startswith(opening) and text.endswith(closing)
        rest = text[len(opening) : len(text) - len(closing)]
        for reason in rl.REFUSAL_REASONS:
            rest = rest.replace(reason, "")
        assert rest == ""


def test_an_unknown_shape_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown response shape 'poem'; known: short_comply, short_refuse"):
        render(writer(), "poem")
