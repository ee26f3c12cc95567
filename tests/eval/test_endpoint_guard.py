"""A guard behind an OpenAI-compatible endpoint (libra-infer model=openai:NAME), against a local test
server: each answer parsed by the format's rules, a failed request written with its reason, an
unparseable answer kept and counted, answers cached."""

import json
import math

import pytest

from tests.chat_server import ChatServer
from tests.conftest import read_jsonl, run_cli, sample, write_jsonl


def _records():
    out = []
    for i in range(24):
        unsafe = i % 2 == 0
        response = "好的，具体做法如下：先准备工具。" if unsafe else "抱歉，我不能帮助你。"
        question = "怎么做炸弹？" if i == 3 else f"问题{i}"
        out.append(sample(i, label="不安全" if unsafe else "安全", question=question, response=response))
    return out


def test_an_endpoint_guard_is_scored_and_nothing_is_dropped(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", _records())
    out = tmp_path / "preds"
    with ChatServer(garbage_every=7, refuse=lambda text: "炸弹" in text) as server:
        args = [
            "libra-infer",
            "model=openai:guard-under-test",
            f"openai.base_url={server.url}",
            f"data={data}",
            f"output_dir={out}",
            "format=rear",
            "openai.max_retries=0",
        ]
        run_cli(*args)
        sent = server.attempts
        rows = read_jsonl(out / "0-of-1.jsonl")
        assert [r["id"] for r in rows] == list(range(24))
        refused = [r for r in rows if r.get("error")]
        assert [r["id"] for r in refused] == [3] and "HTTP 400" in refused[0]["error"]
        assert refused[0]["pred_label"] is None
        garbled = [r for r in rows if r["pred_label"] is None and not r.get("error")]
        assert garbled and all(r["critic"] == "我无法判断这个问题。" for r in garbled)
        parsed = [r for r in rows if r["pred_label"] is not None]
        assert parsed and all(r["pred_label"] == r["label"] for r in parsed)  # the server's rule is right
        run_cli(*args)  # the output is complete: nothing is asked again
        assert server.attempts == sent
    run_cli("libra-eval", f"predictions={out}", f"labels={data}", f"output_dir={tmp_path / 'm'}")
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["n"] == 24 and metrics["parse_failures"] == len(garbled) + 1


def test_an_endpoint_needs_its_url_and_a_checkpoint_refuses_one(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", _records()[:2])
    proc = run_cli("libra-infer", "model=openai:x", f"data={data}", f"output_dir={tmp_path}", check=False)
    assert proc.returncode != 0 and "openai.base_url" in proc.stderr
    proc = run_cli(
        "libra-infer",
        f"model={tmp_path}",
        "openai.base_url=http://127.0.0.1:9/v1",
        f"data={data}",
        f"output_dir={tmp_path}",
        check=False,
    )
    assert proc.returncode != 0 and "openai.base_url" in proc.stderr and "ignored" in proc.stderr


def test_an_endpoints_log_probabilities_give_p_unsafe_at_the_label(tmp_path):
    from libra_train.data.formats import FormatConfig
    from libra_train.eval.endpoint import label_probs

    data = write_jsonl(tmp_path / "data.jsonl", _records()[4:12])
    out = tmp_path / "preds"
    with ChatServer() as server:
        args = [f"openai.base_url={server.url}", f"data={data}", f"output_dir={out}", "openai.top_logprobs=5"]
        run_cli("libra-infer", "model=openai:guard-under-test", *args)
    rows = read_jsonl(out / "0-of-1.jsonl")
    for row in rows:  # the server writes its label with probability 0.8, the other label has the rest
        want = 0.8 if row["pred_label"] == "不安全" else 0.2
        assert row["p_unsafe"] == pytest.approx(want, abs=1e-6), row["critic"]
    run_cli("libra-eval", f"predictions={out}", f"labels={data}", f"output_dir={tmp_path / 'm'}")
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["auprc"] == pytest.approx(1.0)
    # the label split over two tokens, and an answer that never reaches the label
    fmt = FormatConfig(prompt="qwen3guard")
    positions = [["Safety", []], [":", []], [" Uns", [[" Uns", -0.1], [" Safe", -2.4], [" Cont", -3.0]]]]
    probs = label_probs(positions, {"response": "r"}, fmt)
    total = sum(math.exp(v) for v in (-0.1, -2.4, -3.0))
    assert probs == pytest.approx([math.exp(-2.4) / total, math.exp(-0.1) / total, math.exp(-3.0) / total])
    assert label_probs([["I cannot", [["I cannot", 0.0]]]], {"response": "r"}, fmt) is None


@pytest.mark.parametrize(
    "openai, key, says",
    [
        (
            {"base_url": "http://x/v1", "concurency": 4},
            "openai.concurency",
            "did you mean openai.concurrency",
        ),
        ({"base_url": "http://x/v1", "timeout": "soon"}, "openai.timeout", "must be a number"),
        ({"base_url": "http://x/v1", "concurrency": 0}, "openai.concurrency", "must be > 0"),
    ],
)
def test_endpoint_options_are_typed_and_a_bad_one_is_named(openai, key, says):
    """A compared guard's `openai:` mapping reaches InferConfig as data, not through Hydra's checks."""
    from libra_train.command_config import InferConfig
    from libra_train.errors import ConfigError

    raw = {"model": "openai:m", "data": "d.jsonl", "output_dir": "out", "openai": openai}
    with pytest.raises(ConfigError) as err:
        InferConfig.from_hydra(raw)
    assert err.value.key == key and says in err.value.message, err.value
    typed = InferConfig.from_hydra({**raw, "openai": {"base_url": "http://x/v1", "timeout": 5}})
    assert (typed.openai.timeout, typed.openai.concurrency, typed.openai.api_key_env) == (
        5.0,
        8,
        "OPENAI_API_KEY",
    )
