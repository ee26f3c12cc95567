"""Streaming moderation: the stop rule and its figures on hand-computed cases, token labels from the
harm onset, a session whose cached steps give what one whole pass gives, and a head that learns."""

import math

import pytest
import torch

from libra_train.stream.head import (
    IGNORE,
    SAFE_CLASS,
    UNSAFE_CLASS,
    StreamGuard,
    StreamHead,
    p_unsafe,
    token_labels,
)
from libra_train.stream.metrics import StreamCase, fire_level, stop_index, stop_threshold_for, stream_metrics
from libra_train.stream.session import StreamSession, response_spans


@pytest.mark.parametrize(
    "probs, k, expected",
    [
        ([0.1, 0.9, 0.9, 0.9], 2, 2),  # the second of two in a row
        ([0.9, 0.1, 0.9, 0.1], 2, None),  # never two in a row
        ([0.9, 0.1, 0.9, 0.1], 1, 0),
        ([0.5, 0.5, 0.5], 1, None),  # p > threshold, not ≥
        ([], 1, None),
    ],
)
def test_the_stop_rule_fires_on_the_kth_consecutive_token_above_the_threshold(probs, k, expected):
    assert stop_index(probs, 0.5, k) == expected


@pytest.mark.parametrize(
    "probs, k, level",
    [
        ([0.1, 0.9, 0.7, 0.95], 2, 0.7),  # windows (0.1, 0.9) (0.9, 0.7) (0.7, 0.95): mins 0.1 0.7 0.7
        ([0.1, 0.9, 0.7, 0.95], 1, 0.95),
        ([0.1, 0.9, 0.7, 0.95], 3, 0.7),  # mins 0.1 and 0.7
        ([0.9], 2, 0.0),  # shorter than k: never stops
    ],
)
def test_the_fire_level_is_the_highest_threshold_that_still_stops_the_response(probs, k, level):
    assert fire_level(probs, k) == pytest.approx(level)
    assert stop_index(probs, level - 1e-9, k) is not None or level == 0.0
    assert stop_index(probs, level, k) is None


def test_the_calibrated_threshold_is_the_lowest_that_stops_at_most_the_share_of_safe_responses():
    safe = [StreamCase([p, p], False) for p in (0.2, 0.4, 0.6, 0.8, 0.9)]  # fire levels with k = 2
    cases = [*safe, StreamCase([0.99, 0.99], True)]  # unsafe responses do not move it
    assert stop_threshold_for(cases, 2, 0.0) == 0.9  # none may stop: at the highest level
    assert stop_threshold_for(cases, 2, 0.2) == 0.8  # ⌊0.2 × 5⌋ = 1 may stop: the 0.9 one
    assert stop_threshold_for(cases, 2, 0.39) == 0.8  # ⌊1.95⌋ = 1
    assert stop_threshold_for(cases, 2, 0.4) == 0.6  # 2 may stop
    assert stream_metrics(cases, 0.6, 2)["early_stop"]["safe"] == pytest.approx(2 / 5)
    assert stop_threshold_for(cases, 3, 0.0) == 0.0  # no response has 3 tokens: nothing ever stops
    with pytest.raises(ValueError, match="no safe response"):
        stop_threshold_for(cases[-1:], 2, 0.05)


def test_the_stop_rule_set_is_held_out_label_by_label_and_never_takes_a_labels_last_response():
    from libra_train.stream.train import hold_out

    records = [{"id": i, "response": "r", "label": "不安全" if i < 30 else "安全"} for i in range(40)]
    records += [{"id": 40, "response": "", "label": "安全"}]  # no response: nothing to stream
    kept, held = hold_out(records, 0.1, seed=0)
    assert sorted(r["id"] for r in kept + held) == list(range(41))
    assert [r["label"] for r in held].count("不安全") == 3 and [r["label"] for r in held].count("安全") == 1
    assert hold_out(records, 0.1, seed=0) == (kept, held) and hold_out(records, 0.1, seed=1) != (kept, held)
    assert len(hold_out(records[:1], 0.5, seed=0)[1]) == 0  # a label's only response is trained on


def test_stream_figures_on_hand_computed_cases():
    hi, lo = 0.9, 0.1
    cases = [
        StreamCase([lo] * 5 + [hi] * 5, True, onset=4),  # stops at 6: latency 2, on time
        StreamCase([lo] * 30 + [hi] * 2, True, onset=10),  # stops at 31: latency 21, late
        StreamCase([hi, hi] + [lo] * 8, True, onset=5),  # stops at 1, before its onset
        StreamCase([lo] * 200 + [hi, hi], True),  # no onset known: stops at 201, past the first 128
        StreamCase([lo] * 10, True, onset=3),  # never stops: a miss
        StreamCase([lo, hi, hi, lo], False),  # a safe response stopped at 2
        StreamCase([lo] * 6, False),
        StreamCase([hi, lo, hi, lo], False),
    ]
    m = stream_metrics(cases, threshold=0.5, k=2)
    # fired: 1 1 1 1 0 | 1 0 0 against unsafe 1 1 1 1 1 | 0 0 0 → TP 4, FN 1, FP 1, TN 2
    assert m["accuracy"] == pytest.approx(6 / 8) and m["f1"] == pytest.approx(8 / 10)
    assert (m["n"], m["n_with_onset"]) == (8, 4)
    assert m["on_time"] == pytest.approx(1 / 4)  # latencies 2 and 21 among 4 with an onset
    assert m["early_stop"] == {"safe": pytest.approx(1 / 3), "unsafe_before_onset": pytest.approx(1 / 4)}
    assert m["latency_tokens"] == {"median": 11.5, "p90": pytest.approx(2 + 0.9 * 19)}
    assert m["stopped_within_128"] == pytest.approx(3 / 5)  # stops at 6, 31 and 1; 201 and none are not
    assert m["latency_histogram"] == {
        "edges": [0, 1, 2, 4, 8, 16, 32, 64],
        "counts": [0, 0, 1, 0, 0, 1, 0, 0],
    }


def test_stream_figures_at_their_boundaries():
    hi, lo = 0.9, 0.1

    def stopped_at(i: int, onset: int | None) -> StreamCase:  # k = 1: the stop is the first high token
        return StreamCase([lo] * i + [hi], True, onset=onset)

    cases = [
        stopped_at(5, 5),  # at its onset: latency 0, on time, not before it
        stopped_at(26, 10),  # 16 tokens after: the last on time
        stopped_at(27, 10),  # 17 after: late
        stopped_at(127, None),  # the 128th token: within the first 128
        stopped_at(128, None),  # the 129th: not
    ]
    m = stream_metrics(cases, threshold=0.42, k=1)
    assert (m["threshold"], m["k"]) == (0.42, 1)
    assert m["on_time"] == pytest.approx(2 / 3)
    assert m["early_stop"]["unsafe_before_onset"] == 0.0
    assert m["latency_tokens"]["median"] == 16.0
    assert m["stopped_within_128"] == pytest.approx(4 / 5)


def test_stream_figures_of_a_set_that_gives_them_nothing_to_count():
    never = stream_metrics([StreamCase([0.1, 0.1], False)], threshold=0.5, k=2)
    assert (never["accuracy"], never["f1"]) == (1.0, 0.0)  # no unsafe response and none stopped
    assert never["on_time"] is None and never["stopped_within_128"] is None
    assert never["latency_tokens"] == {"median": None, "p90": None}
    missed = stream_metrics([StreamCase([0.1] * 3, True, onset=1)], threshold=0.5, k=2)
    assert missed["on_time"] == 0.0 and missed["latency_tokens"]["median"] is None


def test_a_rule_allowed_to_stop_every_safe_response_has_threshold_zero():
    cases = [StreamCase([p, p], False) for p in (0.2, 0.4)]
    assert stop_threshold_for(cases, 2, 1.0) == 0.0
    assert stop_threshold_for(cases, 2, 0.5) == 0.2


def test_p_unsafe_adds_the_controversial_class_only_where_it_counts_as_unsafe():
    # a batch of one response of two tokens; the classes: safe, unsafe, controversial
    probs = torch.tensor([[[0.5, 0.2, 0.3], [0.1, 0.6, 0.3]]])
    logits = probs.log() + 1.7  # a shift in every class leaves the softmax as it was
    assert p_unsafe(logits).tolist() == [pytest.approx([0.5, 0.9])]
    assert p_unsafe(logits, "unsafe").tolist() == [pytest.approx([0.5, 0.9])]
    assert p_unsafe(logits, "safe").tolist() == [pytest.approx([0.2, 0.6])]
    assert p_unsafe(logits[0], "safe").tolist() == pytest.approx([0.2, 0.6])  # a session's (tokens, classes)


def test_the_head_gives_three_risk_classes_and_categories_only_when_asked():
    hidden = torch.randn(2, 5, 16)
    risk, category = StreamHead(16)(hidden)
    assert risk.shape == (2, 5, 3) and category is None
    risk, category = StreamHead(16, num_categories=7)(hidden)
    assert risk.shape == (2, 5, 3) and category.shape == (2, 5, 7)


def test_token_labels_start_at_the_harm_onset_and_fall_back_to_the_last_token():
    spans = [(0, 3), (3, 5), (5, 9), (9, 12)]
    assert token_labels(spans, "不安全", 4) == [SAFE_CLASS, UNSAFE_CLASS, UNSAFE_CLASS, UNSAFE_CLASS]
    assert token_labels(spans, "不安全", 5) == [SAFE_CLASS, SAFE_CLASS, UNSAFE_CLASS, UNSAFE_CLASS]
    assert token_labels(spans, "不安全", None) == [IGNORE, IGNORE, IGNORE, UNSAFE_CLASS]
    assert token_labels(spans, "安全", None) == [SAFE_CLASS] * 4
    assert token_labels([], "不安全", None) == []


@pytest.fixture(scope="module")
def guard(qwen_backbone):
    """Qwen's real vocabulary: its tokens span several characters, so text chunks split them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_pretrained(qwen_backbone, dtype=torch.float32)
    return StreamGuard(lm, StreamHead(lm.config.hidden_size)), AutoTokenizer.from_pretrained(qwen_backbone)


def test_a_session_fed_in_chunks_scores_what_one_whole_pass_scores(guard):
    model, tokenizer = guard
    question, response = "怎么撬锁？", "第一步，准备一根细铁丝。第二步，把铁丝插进锁孔。"
    prefix, ids, _ = response_spans(tokenizer, question, response)
    model.eval()
    with torch.no_grad():
        whole = p_unsafe(model(torch.tensor([prefix + ids]))["risk_logits"][0, len(prefix) :])
    session = StreamSession(model, tokenizer, question)
    streamed = []
    for start in range(0, len(response), 2):  # "第一" then "步，": 第一步 is one token
        new = session.feed_text(response[start : start + 2])
        streamed = streamed[: len(session.fed) - len(new)] + new
    assert session.fed == ids
    assert torch.allclose(torch.tensor(streamed), whole, atol=1e-5)
    by_ids = StreamSession(model, tokenizer, question)
    assert torch.allclose(torch.tensor(by_ids.feed_ids(ids[:4]) + by_ids.feed_ids(ids[4:])), whole, atol=1e-5)


def test_the_streamed_input_is_the_question_in_its_prefix_then_the_response_token_by_token(guard):
    _, tokenizer = guard
    response = "第一步，准备铁丝。"
    prefix, ids, spans = response_spans(tokenizer, "怎么撬锁？", response)
    assert tokenizer.decode(prefix) == "用户：怎么撬锁？\n助手："
    assert len(spans) == len(ids) and "".join(response[a:b] for a, b in spans) == response
    assert tokenizer.decode(ids) == response


def test_the_guard_gives_a_loss_only_with_labels_and_category_logits_only_with_categories(guard):
    model, _ = guard
    ids = torch.tensor([[11, 12, 13]])
    with torch.no_grad():
        out = model(ids)
        assert out["loss"] is None and out["category_logits"] is None
        assert out["risk_logits"].shape == (1, 3, 3)
        with_categories = StreamGuard(model.backbone, StreamHead(model.backbone.config.hidden_size, 4))
        assert with_categories(ids)["category_logits"].shape == (1, 3, 4)
        loss = model(ids, labels=torch.tensor([[IGNORE, SAFE_CLASS, UNSAFE_CLASS]]))["loss"]
    expected = torch.nn.functional.cross_entropy(out["risk_logits"][0, 1:], torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_head_learns_the_onset_and_the_backbone_can_stay_frozen(guard):
    model, tokenizer = guard
    backbone_before = [p.detach().clone() for p in model.backbone.parameters()]
    head_before = [p.detach().clone() for p in model.head.parameters()]
    samples = [
        ("怎么撬锁？", "抱歉，我不能帮忙。不过第一步，准备铁丝。", "不安全", 9),
        ("怎么撬锁？", "抱歉，我不能帮忙。请联系开锁公司。", "安全", None),
    ]
    batch = []
    for question, response, label, onset in samples:
        prefix, ids, spans = response_spans(tokenizer, question, response)
        batch.append((prefix + ids, [IGNORE] * len(prefix) + token_labels(spans, label, onset)))
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.tensor([ids + [0] * (width - len(ids)) for ids, _ in batch])
    labels = torch.tensor([lab + [IGNORE] * (width - len(lab)) for _, lab in batch])
    mask = (labels != IGNORE) | (torch.arange(width) < torch.tensor([len(i) for i, _ in batch])[:, None])
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(30):
        loss = model(input_ids, attention_mask=mask.long(), labels=labels)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(a, b) for a, b in zip(backbone_before, model.backbone.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(head_before, model.head.parameters()))


def _stream_stage(trained_run, tmp_path, *overrides):
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR
    from libra_train.config import RunConfig

    heldout = trained_run / "data" / "heldout.jsonl"
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            [f"paths.run_dir={tmp_path}", "curriculum=stream", f"data.eval_sets={{heldout: {heldout}}}",
             "train.batch_size=8", "train.logging_steps=5", "+curriculum.stages.2.max_steps=40", *overrides],
        )  # fmt: skip
    run = RunConfig.from_hydra(cfg)
    return run, run.stages[2]


def test_a_stream_stage_trains_the_head_on_a_frozen_guard_and_scores_every_eval_set(trained_run, tmp_path):
    """The stage in process on the shared trained guard: the head learns (loss falls, its weights move),
    the guard's own weights are copied unchanged, and each eval set's metrics gain a "stream" block."""
    import json

    from safetensors.torch import load_file

    from libra_train.data.io import load_records
    from libra_train.stream.metrics import stop_threshold_for
    from libra_train.stream.train import (
        evaluate_stream,
        hold_out,
        load_stream_guard,
        stream_cases,
        train_stream_stage,
    )

    heldout = trained_run / "data" / "heldout.jsonl"
    run, stage = _stream_stage(trained_run, tmp_path, "curriculum.stages.2.backbone=frozen")
    init = trained_run / "stage2_sft" / "checkpoint"
    records = load_records(trained_run / "data" / "stage1.jsonl")[:120]
    result = train_stream_stage(stage, records, str(init), tmp_path / stage.name, run)
    checkpoint = tmp_path / stage.name / "checkpoint"
    assert result["steps"] == 40 and result["loss_last"] < result["loss_first"]
    assert result["data"]["with_onset"] > 0 and result["data"]["safe"] > 0
    assert result["backbone"] == "frozen" and "label_views" not in result["data"]
    assert (
        load_file(str(checkpoint / "model.safetensors")).keys()
        == load_file(str(init / "model.safetensors")).keys()
    )
    assert (checkpoint / "model.safetensors").read_bytes() == (init / "model.safetensors").read_bytes()
    head = json.loads((checkpoint / "stream_head.json").read_text())
    assert head["num_categories"] == 0 and head["prefix"] == "用户：{question}\n助手："
    # eval.stream_threshold=calibrate (the default) with no calibration set: 10% of each label's
    # responses are kept out of training and the rule is chosen on them
    kept, held = hold_out(records, 0.1, run.seed)
    assert sum(result["data"][k] for k in ("with_onset", "last_token_only", "safe", "no_response")) == len(
        kept
    )
    guard, tokenizer = load_stream_guard(checkpoint)
    chosen = stop_threshold_for(stream_cases(guard, tokenizer, held, 384), 2, 0.05)
    assert result["stop_rule"]["threshold"] == chosen > 0 and result["stop_rule"]["k"] == 2
    assert head["stop_rule"] == {k: result["stop_rule"][k] for k in ("threshold", "k", "source")}
    assert result["stop_rule"]["on_calibration_set"]["n"] == len(held)
    assert head["stop_rule"]["source"].startswith(f"calibrated on {len(held)} responses held out")
    figures = evaluate_stream(checkpoint, run, tmp_path / stage.name / "eval", stage.train.max_length)
    written = json.loads((tmp_path / stage.name / "eval" / "heldout" / "metrics.json").read_text())
    assert written["stream"] == figures["heldout"]
    assert figures["heldout"]["n"] == len([r for r in load_records(heldout) if r["response"]])
    assert (figures["heldout"]["k"], figures["heldout"]["threshold"]) == (2, chosen)
    assert figures["heldout"]["rule_source"] == head["stop_rule"]["source"]


def test_a_shared_backbone_learns_with_the_head_and_stays_a_guard(trained_run, tmp_path):
    """backbone: shared: the guard's weights move and are saved, the label-mode loss is in every step
    (its views counted), and the checkpoint still scores in label mode and loads with its head."""
    from safetensors.torch import load_file

    from libra_train.data.formats import task_views
    from libra_train.data.io import load_records
    from libra_train.eval.scoring import score_labels
    from libra_train.stream.train import load_stream_guard, train_stream_stage

    run, stage = _stream_stage(trained_run, tmp_path, "eval.stream_threshold=0.7", "eval.stream_k=3")
    assert (stage.stream.backbone, stage.stream.backbone_learning_rate) == ("shared", 1e-4)
    init = trained_run / "stage2_sft" / "checkpoint"
    records = load_records(trained_run / "data" / "stage1.jsonl")[:120]
    result = train_stream_stage(stage, records, str(init), tmp_path / stage.name, run)
    checkpoint = tmp_path / stage.name / "checkpoint"
    assert result["backbone"] == "shared" and result["loss_last"] < result["loss_first"]
    assert result["stop_rule"] == {"threshold": 0.7, "k": 3, "source": "eval.stream_threshold"}
    assert sum(result["data"][k] for k in ("with_onset", "last_token_only", "safe", "no_response")) == len(
        records
    )
    views = sum(len(task_views(r, run.format.task)) for r in records)
    assert result["data"]["label_views"] + result["data"]["label_views_too_long"] == views
    before, after = (
        load_file(str(init / "model.safetensors")),
        load_file(str(checkpoint / "model.safetensors")),
    )
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    guard, tokenizer = load_stream_guard(checkpoint)
    assert all(torch.equal(after[k], v) for k, v in guard.backbone.state_dict().items() if k in after)
    heldout = load_records(trained_run / "data" / "heldout.jsonl")[:20]
    scored = score_labels(guard.backbone, tokenizer, heldout, run.format, decision=None)
    assert all(0.0 <= s["p_unsafe"] <= 1.0 for s in scored)


def test_the_label_loss_is_the_mean_negative_log_probability_label_mode_gives_the_true_label(trained_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from libra_train.data.formats import FormatConfig
    from libra_train.data.io import load_records
    from libra_train.eval.scoring import score_labels
    from libra_train.stream.train import label_loss, label_queries

    checkpoint = trained_run / "stage2_sft" / "checkpoint"
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    fmt = FormatConfig(task="response")
    records = load_records(trained_run / "data" / "heldout.jsonl")[:12]
    queries, too_long = label_queries(records, tokenizer, fmt, max_length=4096)
    assert too_long == 0 and len(queries) == 12
    assert [q[2] for q in queries] == [int(r["label"] == "不安全") for r in records]
    with torch.no_grad():
        loss = label_loss(model, queries, tokenizer.pad_token_id or 0).item()
    scored = score_labels(model, tokenizer, records, fmt, decision=None, share_prefix=False)
    expected = [
        -math.log(s["p_unsafe"] if r["label"] == "不安全" else 1 - s["p_unsafe"])
        for s, r in zip(scored, records)
    ]
    assert loss == pytest.approx(sum(expected) / len(expected), rel=1e-4)
    assert label_queries(records, tokenizer, fmt, max_length=len(queries[0][0]))[1] >= 1  # counted, not lost
