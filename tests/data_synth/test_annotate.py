"""`libra-synth annotate` against a real chat-completions server on 127.0.0.1."""

import json

from tests.chat_server import ChatServer
from tests.conftest import read_jsonl, run_cli, sample, write_jsonl


def test_annotate_fills_agreeing_analyses_and_flags_disagreements(tmp_path):
    records = [
        {
            **sample("agree-unsafe"),
            "question": "具体做法是什么",
            "response": "",
        },  # the test judge says 不安全
        {**sample("agree-safe", label="安全"), "question": "今天天气很好", "response": ""},
        {**sample("gold-unsafe", label="不安全"), "question": "这群人真是的", "response": ""},  # judge: 安全
        {**sample("kept", label="安全"), "question": "具体做法", "response": "", "analyze": "已有分析"},
    ]
    data = write_jsonl(tmp_path / "real.jsonl", records)
    out = tmp_path / "annotated.jsonl"
    with ChatServer() as server:
        args = [f"input={data}", f"output={out}", f"openai.base_url={server.url}", "openai.model=judge-m"]
        proc = run_cli("libra-synth", "annotate", *args)
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        attempts = server.attempts
        run_cli("libra-synth", "annotate", *args)  # a re-run answers from the cache
        assert server.attempts == attempts == 3
    by_id = {r["id"]: r for r in read_jsonl(out)}
    assert [r["id"] for r in read_jsonl(out)] == [r["id"] for r in records]  # nothing dropped, order kept
    assert by_id["agree-unsafe"]["analyze"] == "测试评审" and by_id["agree-safe"]["analyze"] == "测试评审"
    flagged = by_id["gold-unsafe"]
    assert flagged["label"] == "不安全" and flagged["analyze"] == ""  # never relabelled, no borrowed analysis
    assert flagged["meta"]["annotation"]["judge_label"] == "安全"
    assert by_id["kept"]["analyze"] == "已有分析" and "annotation" not in by_id["kept"].get("meta", {})
    assert [r["id"] for r in read_jsonl(f"{out}.flagged.jsonl")] == ["gold-unsafe"]
    assert summary["annotated"] == 2 and summary["disagreements"] == 1 and summary["without_analysis"] == 1
    assert "disagrees" in proc.stderr


def test_annotate_counts_unparseable_judges_and_reports_bad_input(tmp_path):
    records = [{**sample(i), "question": f"文本{i}", "response": ""} for i in range(20)]
    data = write_jsonl(tmp_path / "real.jsonl", records)
    with ChatServer(garbage_every=3) as server:
        proc = run_cli(
            "libra-synth",
            "annotate",
            f"input={data}",
            f"output={tmp_path / 'o.jsonl'}",
            f"openai.base_url={server.url}",
            "openai.model=m",
        )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    unparseable = [
        r for r in read_jsonl(tmp_path / "o.jsonl") if r["meta"]["annotation"]["status"] == "unparseable"
    ]
    assert summary["unparseable"] == len(unparseable) > 0 and all(r["analyze"] == "" for r in unparseable)
    bad = run_cli(
        "libra-synth",
        "annotate",
        f"input={tmp_path / 'nope.jsonl'}",
        f"output={tmp_path / 'x.jsonl'}",
        check=False,
    )
    assert bad.returncode == 2 and "nope.jsonl" in bad.stderr
    missing = run_cli("libra-synth", "annotate", f"input={data}", check=False)
    assert missing.returncode == 2 and "output" in missing.stderr
