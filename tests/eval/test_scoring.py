"""Label-mode scoring on exact tensors (an untrained tiny model is enough: only the arithmetic matters):
the two label tokens, p(unsafe) against a plain forward pass, the 0.5 decision, batching by count and
by tokens, and the shared-prefix cache."""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from libra_train.data.formats import TARGET_OPENING, FormatConfig, render_prompt
from libra_train.errors import ConfigError
from libra_train.eval.scoring import _batches, generate_labels, label_query, resolve_mode, score_labels
from tests.conftest import sample

SAFE, UNSAFE = "安全", "不安全"


@pytest.fixture(scope="module")
def guard(tiny_backbone):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_backbone).eval(), AutoTokenizer.from_pretrained(
        tiny_backbone
    )


def _records(n=9):
    # mixed lengths, and prompt-only samples (another system prompt) among them
    return [
        {**sample(i), "question": "问题" * (1 + i % 4), "response": "" if i % 3 == 0 else "回答" * (i % 5)}
        for i in range(n)
    ]


def test_label_query_ends_where_the_two_labels_part(guard):
    _, tok = guard
    prompt = render_prompt(sample(1), tok, FormatConfig())
    context, safe_id, unsafe_id = label_query(prompt, tok, TARGET_OPENING)
    safe_ids = tok(prompt + TARGET_OPENING + SAFE, add_special_tokens=False)["input_ids"]
    unsafe_ids = tok(prompt + TARGET_OPENING + UNSAFE, add_special_tokens=False)["input_ids"]
    assert safe_ids[: len(context)] == unsafe_ids[: len(context)] == context
    assert (safe_ids[len(context)], unsafe_ids[len(context)]) == (safe_id, unsafe_id) and safe_id != unsafe_id
    assert tok.decode(context).endswith(prompt + TARGET_OPENING) or tok.decode(context).startswith(prompt)


def _by_hand(model, tok, record):
    context, safe_id, unsafe_id = label_query(render_prompt(record, tok, FormatConfig()), tok, TARGET_OPENING)
    with torch.no_grad():
        logits = model(torch.tensor([context])).logits[0, -1]
    return torch.softmax(torch.stack([logits[safe_id], logits[unsafe_id]]), 0)[1].item()


@pytest.mark.parametrize("share_prefix", [True, False])
def test_p_unsafe_is_the_softmax_of_the_two_label_logits(guard, share_prefix):
    model, tok = guard
    records = _records()
    scored = score_labels(model, tok, records, FormatConfig(), batch_size=4, share_prefix=share_prefix)
    expected = [_by_hand(model, tok, r) for r in records]
    assert [s["p_unsafe"] for s in scored] == pytest.approx(expected, abs=1e-5)
    for s, p in zip(scored, expected):
        assert s["pred_label"] == (UNSAFE if p > 0.5 else SAFE)
        assert json.loads(s["critic"]) == {"答案": s["pred_label"]}


def test_the_decision_is_p_unsafe_above_one_half(guard, monkeypatch):
    from libra_train.eval import scoring

    model, tok = guard
    records = [sample(i) for i in range(4)]  # the same length: the batch keeps input order
    _, safe_id, unsafe_id = label_query(render_prompt(records[0], tok, FormatConfig()), tok, TARGET_OPENING)
    gaps = [0.0, 1e-3, -1e-3, 2.0]  # unsafe logit minus safe logit, one per row

    def crafted(model, rows, pad_id, device, share_prefix):
        logits = torch.zeros(len(rows), len(tok))
        logits[:, unsafe_id] = torch.tensor(gaps[: len(rows)])
        return logits

    monkeypatch.setattr(scoring, "label_logits", crafted)
    scored = score_labels(model, tok, records, FormatConfig(), batch_size=4)
    assert [s["p_unsafe"] for s in scored] == pytest.approx(
        [torch.sigmoid(torch.tensor(g)).item() for g in gaps]
    )
    assert [s["pred_label"] for s in scored] == [SAFE, UNSAFE, SAFE, UNSAFE]  # exactly 0.5 is safe


def test_batches_cap_rows_and_padded_tokens():
    lengths = [10, 9, 8, 4, 4, 3, 1]
    order = list(range(7))  # already longest first
    assert list(_batches(order, lengths, 3, None)) == [[0, 1, 2], [3, 4, 5], [6]]
    # padded tokens = longest row × rows: 10×2 fits 20, 10×3 does not; 8×2 fits, 8×3 does not; 4×3 fits
    assert list(_batches(order, lengths, 10, 20)) == [[0, 1], [2, 3], [4, 5, 6]]
    # a row longer than the cap still goes, alone
    assert list(_batches(order, lengths, 10, 6)) == [[0], [1], [2], [3], [4], [5, 6]]


def test_token_capped_batches_give_the_same_scores(guard):
    model, tok = guard
    records = _records()
    plain = score_labels(model, tok, records, FormatConfig(), batch_size=16)
    capped = score_labels(model, tok, records, FormatConfig(), batch_size=16, max_batch_tokens=300)
    assert [c["p_unsafe"] for c in capped] == pytest.approx([p["p_unsafe"] for p in plain], abs=1e-5)


def test_batches_report_each_record_once_in_input_order(guard):
    model, tok = guard
    records = _records(7)
    seen = []
    results = score_labels(
        model,
        tok,
        records,
        FormatConfig(),
        batch_size=3,
        on_batch=lambda idx, res: seen.extend((i, res[i]["p_unsafe"]) for i in idx),
    )
    assert sorted(i for i, _ in seen) == list(range(7))
    assert dict(seen) == {i: r["p_unsafe"] for i, r in enumerate(results)}


def test_generation_is_parsed_into_a_label_or_none(guard):
    model, tok = guard
    out = generate_labels(model, tok, _records(3), FormatConfig(), batch_size=2, max_new_tokens=4)
    assert all(o["p_unsafe"] is None and o["pred_label"] in (SAFE, UNSAFE, None) for o in out)
    assert all(isinstance(o["critic"], str) for o in out)


@pytest.mark.parametrize(
    "mode, critic, expected",
    [
        (None, "rear", "label"),
        ("auto", "none", "label"),
        ("auto", "front", "generate"),
        ("generate", "rear", "generate"),
        ("label", "front", ConfigError),
        ("beam", "rear", ConfigError),
    ],
)
def test_mode_follows_the_label_position(mode, critic, expected):
    fmt = FormatConfig(critic=critic)
    if expected is ConfigError:
        with pytest.raises(ConfigError):
            resolve_mode(mode, fmt)
    else:
        assert resolve_mode(mode, fmt) == expected


def test_common_prefix_lengths():
    from libra_train.eval.scoring import common_prefix

    pairs = ([[1, 2], [3, 2]], [[1, 2], [1, 2, 3]], [[5, 6, 7], [5, 6, 8]])
    assert [common_prefix(a, b) for a, b in pairs] == [0, 2, 2]


def test_identical_samples_in_one_batch_score_as_each_alone(guard):
    model, tok = guard
    rec = _records(2)[1]
    twins = [rec, {**rec, "id": "twin"}, {**rec, "id": "triplet"}]
    together = score_labels(model, tok, twins, FormatConfig(), batch_size=3)
    alone = score_labels(model, tok, [rec], FormatConfig(), batch_size=1)[0]["p_unsafe"]
    assert [t["p_unsafe"] for t in together] == pytest.approx([alone] * 3, abs=1e-5)


@pytest.mark.parametrize("mode, critic", [("beam", "rear"), ("label", "front")])
def test_a_bad_mode_names_the_key(mode, critic):
    from libra_train.command_config import InferConfig

    with pytest.raises(ConfigError) as err:  # libra-infer's config, checked at its start
        InferConfig.from_hydra(
            {"model": "m", "data": "d", "output_dir": "o", "mode": mode, "format": {"critic": critic}}
        )
    assert err.value.key == "mode" and len(err.value.message) > 8
    if mode == "label":  # and the same check where a mode is resolved without a typed config
        with pytest.raises(ConfigError) as err:
            resolve_mode(mode, FormatConfig(critic=critic))
        assert err.value.key == "mode"


def test_the_decision_is_given_else_saved_else_one_half(tmp_path):
    from libra_train.eval.decision import Decision, command_decision, save_decision

    assert command_decision(None, tmp_path) == Decision()  # nothing saved: 0.5, no temperature
    save_decision(tmp_path, Decision(0.0, 1.0, "calibrated"))  # a saved 0.0 (flag everything) is kept
    assert command_decision(None, tmp_path).threshold == 0.0
    save_decision(tmp_path, Decision(0.37, 2.0, "calibrated"))
    assert (command_decision(None, tmp_path).threshold, command_decision(None, tmp_path).temperature) == (
        0.37,
        2,
    )
    given = command_decision(0.8, tmp_path)  # threshold= on the command line keeps the saved temperature
    assert (given.threshold, given.temperature) == (0.8, 2.0) and command_decision(
        1, tmp_path
    ).threshold == 1.0


def test_a_decision_tempers_then_compares_and_records_what_decided():
    from libra_train.eval.decision import Decision

    plain = Decision(0.37).apply({"p_unsafe": 0.4})
    assert plain["pred_label"] == "不安全" and plain["threshold"] == 0.37 and "temperature" not in plain
    assert plain["critic"] == '{"答案": "不安全"}'
    hot = Decision(0.37, 4.0).apply({"p_unsafe": 0.9, "p_question": 0.1})  # logit 2.197 / 4 = 0.549
    assert hot["p_unsafe"] == pytest.approx(1 / (1 + math.exp(-math.log(9) / 4)))
    assert hot["p_question"] == pytest.approx(1 / (1 + math.exp(math.log(9) / 4)))
    assert hot["pred_label"] == "不安全" and hot["temperature"] == 4.0
    generated = Decision(0.37).apply({"p_unsafe": None, "pred_label": "安全"})  # generate mode: the text's
    assert generated["pred_label"] == "安全" and generated["threshold"] is None


@pytest.mark.parametrize("bad", [2, -1, 1.5, "0.3", True])
def test_every_command_refuses_a_threshold_outside_0_1_by_one_check(bad):
    from libra_train.command_config import InferConfig, ServeConfig

    for config, required in ((InferConfig, {"data": "d", "output_dir": "o"}), (ServeConfig, {})):
        with pytest.raises(ConfigError) as err:
            config.from_hydra({"model": "m", "threshold": bad, **required})
        assert err.value.key == "threshold"
    assert (
        InferConfig.from_hydra({"model": "m", "data": "d", "output_dir": "o", "threshold": 1}).threshold
        == 1.0
    )


@pytest.mark.parametrize("command,value", [("libra-infer", "2"), ("libra-serve", "-1")])
def test_infer_and_serve_refuse_a_threshold_outside_0_1_naming_the_key(
    command, value, tiny_backbone, tmp_path
):
    from tests.conftest import run_cli, write_jsonl

    data = write_jsonl(tmp_path / "d.jsonl", [sample(0)])
    extra = [f"data={data}", f"output_dir={tmp_path / 'out'}"] if command == "libra-infer" else ["port=8999"]
    proc = run_cli(command, f"model={tiny_backbone}", f"threshold={value}", *extra, check=False, timeout=120)
    assert proc.returncode == 2 and "error: config 'threshold'" in proc.stderr and "[0, 1]" in proc.stderr
    assert not (tmp_path / "out").exists()
