"""The offline generator writes responses shaped like real assistants': long and short, lists and prose,
disclaimers around harmful steps, refusals that comply anyway, explained refusals, refusals that offer
alternatives, warnings that discuss a harmful topic, long benign answers, and helpful, lawful answers to
harmful-sounding questions. A guard must not be able to tell the labels apart by length or by a refusal
in the opening: in every split a length-only classifier ranks at chance and the opening rule scores at
most 0.60; minimal pairs answer one question both ways in one layout; held-out keeps layouts training
never sees."""

import json
import re
import statistics

import pytest

from data_synth import response_lexicon as rl
from data_synth.pipeline import offline_config, synthesize
from data_synth.shapes import HELDOUT_SHAPES, SHAPE_LABELS
from libra_train.eval.shortcuts import over_flagging, shortcut_metrics
from tests.conftest import read_jsonl

SPLITS = ("stage1", "stage2", "heldout")
LIST = re.compile(r"(^|\n)(\d+\. |\d+、|第[一二三四五六]步，|（[一二三四五六]）)")
# a refusal in the first sentence
REFUSAL_OPENING = re.compile(r"^[^\n。]*(抱歉|对不起|不能|无法|不会|拒绝|恕我|这个请求)")
DISCLAIMER = re.compile(r"违法|法律风险|仅供|请勿|后果|谨慎|三思")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    synthesize(offline_config(output_dir=str(out), cache_dir=None, num_samples=1400))
    return out, {s: read_jsonl(out / f"{s}.jsonl") for s in SPLITS}


def share(records, predicate) -> float:
    return sum(1 for r in records if predicate(r)) / len(records)


def test_every_real_shape_is_in_training_under_its_label(synth):
    _, splits = synth
    train = splits["stage1"] + splits["stage2"]
    for label in ("安全", "不安全"):
        records = [r for r in train if r["label"] == label]
        shapes = {r["meta"]["response_shape"] for r in records}
        assert {SHAPE_LABELS[s] for s in shapes} == {label}
        wanted = {s for s, lab in SHAPE_LABELS.items() if lab == label} - set(HELDOUT_SHAPES.values())
        assert shapes == wanted, (label, wanted - shapes)
        for shape in wanted:
            assert share(records, lambda r, s=shape: r["meta"]["response_shape"] == s) >= 0.02, shape


def test_the_shapes_are_in_the_text_not_only_in_the_metadata(synth):
    _, splits = synth
    train = splits["stage1"] + splits["stage2"]
    unsafe = [r["response"] for r in train if r["label"] == "不安全"]
    safe = [r["response"] for r in train if r["label"] == "安全"]
    # numbered lists under both labels, so a list is no label cue
    assert share(unsafe, LIST.search) > 0.3 and share(safe, LIST.search) > 0.15
    # harmful steps wrapped in disclaimers, and refusals that go on to give them anyway
    assert share(unsafe, DISCLAIMER.search) > 0.1
    assert share(unsafe, lambda t: REFUSAL_OPENING.search(t) and LIST.search(t)) > 0.03
    # refusals that explain, offer alternatives or help lawfully: safe answers of a paragraph or more
    assert share(safe, lambda t: REFUSAL_OPENING.search(t) and len(t) > 100) > 0.05
    assert share(unsafe, lambda t: "\n\n" in t) > 0.05 and share(safe, lambda t: "\n\n" in t) > 0.02


def test_lengths_spread_from_a_sentence_to_paragraphs_under_both_labels(synth):
    out, splits = synth
    stats = json.loads((out / "stats.json").read_text())
    for split in SPLITS:
        for label in ("安全", "不安全"):
            lengths = sorted(len(r["response"]) for r in splits[split] if r["label"] == label)
            assert lengths[0] < 40 and statistics.median(lengths) >= 60 and lengths[-1] >= 250, split
            summary = stats["response_length"][split][label]
            assert (summary["min"], summary["median"], summary["max"]) == (
                lengths[0],
                statistics.median(lengths),
                lengths[-1],
            )
            shares = stats["response_shapes"][split][label]
            assert abs(sum(shares.values()) - 1) < 1e-3 and set(shares) <= set(SHAPE_LABELS)


def test_held_out_keeps_layouts_training_never_sees(synth):
    _, splits = synth
    train = splits["stage1"] + splits["stage2"]
    unseen = set(HELDOUT_SHAPES.values())
    assert not unseen & {r["meta"]["response_shape"] for r in train}
    heldout = splits["heldout"]
    for label, shape in HELDOUT_SHAPES.items():
        records = [r for r in heldout if r["label"] == label]
        assert share(records, lambda r, s=shape: r["meta"]["response_shape"] == s) > 0.1, label
    assert not any("### " in r["response"] for r in train)
    assert share(heldout, lambda r: "### " in r["response"]) > 0.1


def test_neither_length_nor_a_refusal_opening_gives_the_label_away_in_any_split(synth):
    """The shortcuts a guard could learn instead of judging harm (eval/shortcuts.py): a length-only
    classifier ranks at chance (AUROC in [0.40, 0.60]) and the refusal-opening rule scores at most 0.60;
    at least 30% of safe answers are helpful answers, not refusals, with and without a refusal up front."""
    _, splits = synth
    for split in SPLITS:
        rows = [{**r, "pred_label": r["label"]} for r in splits[split]]
        shortcuts = shortcut_metrics(rows, 0.5)
        assert 0.40 <= shortcuts["length"]["auroc"] <= 0.60, (split, shortcuts["length"])
        assert shortcuts["opening"]["accuracy"] <= 0.60, (split, shortcuts["opening"])
        helpful = over_flagging(rows)
        assert helpful["split_by"] == "meta.refusal"  # the generator says which safe answers decline
        assert helpful["helpful_safe"] / (helpful["helpful_safe"] + helpful["refusals"]) >= 0.3, split
        unsafe = [r["response"] for r in splits[split] if r["label"] == "不安全"]
        assert share(unsafe, lambda t: REFUSAL_OPENING.search(t) or DISCLAIMER.search(t[:60])) > 0.2, split


def test_in_stage_1_a_refusal_opening_does_not_point_to_harm(synth):
    """Stage 1 is all that a guard trained on synthetic data alone learns from. Where its safe answers to
    harmful questions were a fifth refusals, refusal openings were commoner among its unsafe answers
    (refusals that go on to comply) than among its safe ones, and that guard called real refusals unsafe
    (BENCHMARKS.md, "JADE recipe"). Now they are at least 30% refusals (about 37% over seeds), and the
    opening rule is no worse than a coin beyond sampling noise."""
    _, splits = synth
    stage1 = splits["stage1"]
    answered = [r for r in stage1 if r["label"] == "安全" and r["meta"]["query_label"] == "不安全"]
    assert share(answered, lambda r: r["meta"]["refusal"]) >= 0.30
    rows = [{**r, "pred_label": r["label"]} for r in stage1]
    assert shortcut_metrics(rows, 0.5)["opening"]["accuracy"] >= 0.46


def test_minimal_pairs_answer_one_question_both_ways_in_one_layout(synth):
    _, splits = synth
    train = {r["id"]: r for r in splits["stage1"] + splits["stage2"]}
    pairs = [(train[r["meta"]["pair"]], r) for r in train.values() if r["meta"].get("pair") in train]
    assert len(pairs) >= 0.05 * len(train)
    for harmful, helpful in pairs:
        assert (harmful["label"], helpful["label"]) == ("不安全", "安全")
        assert harmful["question"] == helpful["question"]
        a, b = harmful["response"], helpful["response"]
        assert bool(LIST.search(a)) == bool(LIST.search(b)) and abs(a.count("\n") - b.count("\n")) <= 2
        assert 0.5 <= len(b) / len(a) <= 2.0 and ("\n\n" in a) == ("\n\n" in b), (a, b)


def _harmful_openings() -> tuple[str, ...]:
    """What harmful content opens with: a harmful step's title (where a layout shows it) or text, or a
    category's harmful line, up to its first comma (a sectioned layout breaks the line there)."""
    steps = [text for _, text in rl.STEPS] + [title for title, _ in rl.STEPS]
    lines = [line.rstrip("。") for pool in rl.HARMFUL_TEXT.values() for line in pool]
    return tuple(text.split("，")[0] for text in steps + lines)


def test_every_unsafe_response_records_where_its_harm_starts_and_no_safe_one_does(synth):
    _, splits = synth
    openings = _harmful_openings()
    for split, records in splits.items():
        for r in records:
            start, shape = r["meta"].get("harm_start"), r["meta"]["response_shape"]
            if r["label"] == "安全":
                assert start is None, (split, r["id"])
                continue
            response = r["response"]
            assert isinstance(start, int) and 0 <= start < len(response), (split, r["id"], start)
            if shape == "agree_opinion":  # agreeing is the harm, from the first word
                assert start == 0
            else:
                assert response[start:].startswith(openings), (split, shape, response[start : start + 30])
            if shape in ("refuse_then_comply", "short_refuse_comply", "disclaimer_wrapped"):
                # what comes before the onset declines or warns, and is not itself harmful
                assert start > 0 and not response[:start].endswith(openings), (split, shape)
    assert all("\ue000" not in r["response"] for records in splits.values() for r in records)


def _writer(seed: int = 0):
    """A writer that always draws each pool's first template, so the text around the harm is known."""
    import random

    from data_synth.shapes import Writer

    return Writer(random.Random(seed), lambda pool: (0, pool[0]), "撬锁", "违法犯罪", "alpha")


def test_the_onset_of_a_hand_built_composition_is_where_its_harmful_part_begins():
    from data_synth.shapes import render, split_onset

    assert split_onset("抱歉。第一步") == ("抱歉。第一步", None)
    assert split_onset("抱歉。\ue000第一步") == ("抱歉。第一步", 3)

    text, start = split_onset(render(_writer(), "short_comply"))
    assert text.startswith("好的，撬锁其实很简单：") and start == len("好的，撬锁其实很简单：")

    text, start = split_onset(render(_writer(), "refuse_then_comply"))
    lead = "抱歉，我不能帮助你撬锁。不过，如果你只是想了解一般情况，大致过程如下：\n"
    assert text.startswith(lead) and start > len(lead)  # after the refusal and its turn
    between = text[len(lead) : start]  # only the first item's list head, or a paragraph's connective
    assert between in (*rl.PROSE_CONNECTIVES, "1. **"), between

    # a shown title is where a harmful step starts: "1. **不留痕迹**：…" is harmful from 不留痕迹 on
    text, start = split_onset(render(_writer(), "step_list"))
    intro = "关于撬锁，可以参考下面几个步骤：\n"
    assert text.startswith(intro) and text[len(intro) : start] == "1. **"
    assert text[start:].startswith(tuple(title for title, _ in rl.STEPS))
    w = _writer()
    w.responder = "model-gamma"  # gamma's steps have no title: the harm starts at the step's text
    text, start = split_onset(w.numbered(w.harmful_items(2)))
    assert text[:start] == "第一步，" and text[start:].startswith(tuple(t for _, t in rl.STEPS))
    text, start = split_onset(_writer().sections(_writer().harmful_items(2)))
    assert text[:start] == "### 一、" and text[start:].startswith(tuple(title for title, _ in rl.STEPS))

    assert split_onset(render(_writer(), "agree_opinion"))[1] == 0  # agreeing is the harm itself
    for safe in ("helpful_steps", "refusal_then_help", "short_refusal", "benign_long"):
        assert split_onset(render(_writer(), safe))[1] is None, safe
