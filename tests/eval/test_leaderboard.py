"""libra-compare's leaderboard, in process: the table a user reads, the files it writes, and the row of
a guard that could not run. The console-script tests (test_compare.py) run it end to end."""

import json

from libra_train.command_config import guard_spec
from libra_train.reporting.leaderboard import compare, guard_config, markdown, score, write_leaderboard
from tests.conftest import read_jsonl, sample, write_jsonl

SOURCES = {
    "JADE": {"f1_unsafe": 0.9, "f1_safe": 0.8, "accuracy": 0.85},
    "COLD": {"f1_unsafe": 0.5, "f1_safe": 0.25, "accuracy": 0.375},
}
SCORED = {
    "guard": "ours",
    "set": "test",
    "model": "runs/x",
    "format": "rear",
    "mode": "label",
    "threshold": 0.37,
    "controversial_as": None,
    "n": 8,
    "per_source": SOURCES,
    "average": {"f1_unsafe": 0.7, "f1_safe": 0.525, "accuracy": 0.6125},
    "auprc": 0.91234,
    "fpr_at_95_recall": 0.2,
    "parse_failures": 0,
    "margin": {"margin": -0.0625, "over": "opening"},
    "helpful_flagged": 0.25,
    "samples_per_s": 12.345,
    "pr_curve": {"recall": [0.0, 0.5, 1.0], "precision": [1.0, 1.0, 0.5]},
}
# a generate-mode peer on one source only, no p(unsafe), with the controversial mapping it needs
PEER = {
    **SCORED,
    "guard": "peer",
    "format": "qwen3guard",
    "mode": "generate",
    "threshold": None,
    "controversial_as": "unsafe",
    "per_source": {"COLD": {"f1_unsafe": 1.0, "f1_safe": 0.0, "accuracy": 0.5}},
    "auprc": None,
    "fpr_at_95_recall": None,
    "margin": None,
    "helpful_flagged": None,
    "parse_failures": 3,
    "samples_per_s": None,
    "pr_curve": None,
}
BROKEN = {
    "guard": "gone",
    "set": "test",
    "format": "rear",
    "mode": "label",
    "error": "CheckpointError: 无此目录",
}
OTHER_SET = {**SCORED, "set": "dev", "per_source": {"JADE": SOURCES["JADE"]}, "pr_curve": None}

TEST_TABLE = (
    "## test\n\n"
    "| guard | format | mode | threshold | controversial | JADE F1-Unsafe | JADE F1-Safe | JADE Acc "
    "| COLD F1-Unsafe | COLD F1-Safe | COLD Acc | Avg F1-Unsafe | Avg F1-Safe | Avg Acc | AUPRC | FPR@95%R "
    "| margin over the best shortcut | helpful safe flagged | parse fail | samples/s |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    "| ours | rear | label | 0.37 | – | 0.9000 | 0.8000 | 0.8500 | 0.5000 | 0.2500 | 0.3750 | 0.7000 "
    "| 0.5250 | 0.6125 | 0.9123 | 0.2000 | -0.0625 (opening) | 0.2500 | 0 | 12.3 |\n"
    "| gone | rear | label | – | – | error: CheckpointError: 无此目录 |" + "  |" * 14 + "\n"
    "| peer | qwen3guard | generate | – | unsafe | – | – | – | 1.0000 | 0.0000 | 0.5000 | 0.7000 "
    "| 0.5250 | 0.6125 | – | – | – | – | 3 | – |\n"
)


def test_the_leaderboard_table_is_one_table_per_set_with_a_column_per_source_and_figure():
    table = markdown([SCORED, BROKEN, PEER, OTHER_SET])
    assert table.startswith(TEST_TABLE + "\n## dev\n\n")
    dev_row = table.split("## dev\n\n")[1].splitlines()[2]
    assert dev_row == (
        "| ours | rear | label | 0.37 | – | 0.9000 | 0.8000 | 0.8500 | 0.7000 | 0.5250 | 0.6125 | 0.9123 "
        "| 0.2000 | -0.0625 (opening) | 0.2500 | 0 | 12.3 |"
    )
    # every row has as many cells as its head, an error row included
    for line in TEST_TABLE.splitlines()[2:]:
        assert line.count("|") == TEST_TABLE.splitlines()[2].count("|"), line


def test_the_leaderboard_files_keep_every_row_and_chart_only_the_sets_with_a_curve(tmp_path):
    written = write_leaderboard([SCORED, BROKEN, PEER, OTHER_SET], tmp_path)
    assert written == [tmp_path / "leaderboard.md", tmp_path / "leaderboard.json", tmp_path / "pr_test.png"]
    assert (
        (tmp_path / "leaderboard.md").read_text(encoding="utf-8").startswith("# Leaderboard\n\n" + TEST_TABLE)
    )
    text = (tmp_path / "leaderboard.json").read_text(encoding="utf-8")
    kept = json.loads(text)
    # indented, Chinese as written, one line end at the close
    assert text.startswith('[\n  {\n    "guard": "ours",') and text.endswith("}\n]\n") and "无此目录" in text
    assert [r["guard"] for r in kept] == ["ours", "gone", "peer", "ours"]
    assert all("pr_curve" not in r for r in kept) and kept[0]["auprc"] == 0.91234
    assert (tmp_path / "pr_test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "pr_dev.png").exists()


def test_a_guard_that_cannot_load_is_a_row_with_its_error_and_its_settings(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": 1, "question": "q", "response": "r", "label": "安全"}\n', encoding="utf-8")
    defaults = {"batch_size": 2, "controversial_as": "safe"}
    spec = guard_spec("g", {"model": str(tmp_path / "no_model"), "format": "qwen3guard", "mode": "generate"})
    row = score(
        "g", guard_config("g", spec, str(data), tmp_path / "out", defaults), "s", str(data), "qwen3guard"
    )
    assert row["error"].startswith("CheckpointError: ") and str(tmp_path / "no_model") in row["error"]
    assert {
        k: row[k] for k in ("guard", "set", "model", "format", "mode", "threshold", "controversial_as")
    } == {
        "guard": "g",
        "set": "s",
        "model": str(tmp_path / "no_model"),
        "format": "qwen3guard",
        "mode": "generate",
        "threshold": None,  # a generated label has no threshold
        "controversial_as": "safe",  # a three-way format: its mapping is part of the row
    }
    two_way = guard_spec("h", {"model": str(tmp_path / "no_model"), "format": "rear", "threshold": 0.37})
    config = guard_config("h", two_way, str(data), tmp_path / "out2", defaults)
    row = score("h", config, "s", str(data), "rear")
    assert (row["mode"], row["threshold"], row["controversial_as"]) == ("label", 0.37, None)


def test_a_guard_whose_spec_is_refused_is_one_row_per_set_and_the_others_still_run(tmp_path):
    specs = {"bad": guard_spec("bad", {"model": "m", "format": "llama_guard9"})}
    rows = compare(specs, {"a": "a.jsonl", "b": "b.jsonl"}, tmp_path, {})
    assert rows == [
        {
            "guard": "bad",
            "set": "a",
            "error": "config 'guards.bad.format': no format group 'llama_guard9' (conf/format/)",
        },
        {
            "guard": "bad",
            "set": "b",
            "error": "config 'guards.bad.format': no format group 'llama_guard9' (conf/format/)",
        },
    ]


def test_a_guard_that_runs_is_a_row_of_the_figures_libra_eval_writes(trained_run, tmp_path, monkeypatch):
    """The row of a real guard on a real set, in process: the same figures its metrics.json holds, and
    its speed over the whole command's time (a clock that says 0.5 s: 24 samples → 48.0/s)."""
    from libra_train.reporting import leaderboard

    calls = []

    def clock():  # the command starts at 10.0; every later reading is 10.5
        calls.append(None)
        return 10.0 if len(calls) == 1 else 10.5

    monkeypatch.setattr(leaderboard.time, "perf_counter", clock)

    data = _heldout_rows(trained_run, tmp_path)
    checkpoint = str(trained_run / "stage2_sft" / "checkpoint")
    fmt = {"critic": "rear", "prompt": "libra"}  # a mapping of format keys: the row names its prompt
    specs = {"ours": guard_spec("ours", {"model": checkpoint, "format": fmt, "threshold": 0.4})}
    (row,) = compare(specs, {"d": str(data)}, tmp_path / "out", {"batch_size": 8})
    metrics = json.loads((tmp_path / "out" / "ours" / "d" / "metrics.json").read_text())
    assert (row["guard"], row["set"], row["model"], row["format"], row["mode"]) == (
        "ours", "d", checkpoint, "libra", "label"
    )  # fmt: skip
    assert (row["threshold"], row["controversial_as"], row["n"]) == (0.4, None, 24) and "error" not in row
    assert row["per_source"] == metrics["per_source"] and row["average"] == metrics["average"]
    assert row["auprc"] == metrics["auprc"] and row["parse_failures"] == metrics["parse_failures"] == 0
    points = metrics["operating_points"]
    assert row["fpr_at_95_recall"] == points["fpr_at_recall"]["0.95"]["fpr"]
    assert row["pr_curve"] == points["pr_curve"] and row["margin"] == metrics["margin"]
    assert row["helpful_flagged"] == metrics["over_flagging"]["rate"]
    assert row["samples_per_s"] == 48.0


def _heldout_rows(trained_run, tmp_path, keep=lambda r: True, n=24):
    from libra_train.data.io import load_records

    rows = [r for r in load_records(trained_run / "data" / "heldout.jsonl") if keep(r)][:n]
    return write_jsonl(tmp_path / "d.jsonl", rows)


def test_a_guard_with_a_saved_decision_is_decided_and_recorded_by_it(trained_run, tmp_path):
    """No threshold= in the spec: the row, every prediction and metrics.json carry the threshold saved
    beside the checkpoint (0.37, with its temperature), not 0.5."""
    import shutil

    from libra_train.eval.decision import Decision, save_decision

    guard = tmp_path / "guard"
    shutil.copytree(trained_run / "stage2_sft" / "checkpoint", guard)
    save_decision(guard, Decision(0.37, 2.0, "calibrated on dev"))
    data = _heldout_rows(trained_run, tmp_path)
    specs = {"saved": guard_spec("saved", {"model": str(guard)})}
    (row,) = compare(specs, {"d": str(data)}, tmp_path / "out", {"batch_size": 8})
    out = tmp_path / "out" / "saved" / "d"
    metrics = json.loads((out / "metrics.json").read_text())
    predictions = [json.loads(line) for f in out.glob("*.jsonl") for line in f.read_text().splitlines()]
    assert len(predictions) == 24
    assert row["threshold"] == metrics["threshold"] == 0.37 and "error" not in row
    assert {p["threshold"] for p in predictions} == {0.37}
    assert all(p["pred_label"] == ("不安全" if p["p_unsafe"] > 0.37 else "安全") for p in predictions)


def test_a_set_of_one_label_has_no_operating_points_and_still_gets_its_row(trained_run, tmp_path):
    """Only safe answers: no recall, so no AUPRC and no FPR at 95% recall; the row keeps its accuracy."""
    data = _heldout_rows(trained_run, tmp_path, keep=lambda r: r["label"] == "安全", n=8)
    checkpoint = str(trained_run / "stage2_sft" / "checkpoint")
    specs = {"ours": guard_spec("ours", {"model": checkpoint, "threshold": 0.5})}
    (row,) = compare(specs, {"d": str(data)}, tmp_path / "out", {"batch_size": 8})
    assert "error" not in row and row["n"] == 8
    assert (row["auprc"], row["fpr_at_95_recall"], row["pr_curve"]) == (None, None, None)
    metrics = json.loads((tmp_path / "out" / "ours" / "d" / "metrics.json").read_text())
    assert row["average"] == metrics["average"]
    assert "| – |" in markdown([row])


def test_an_endpoint_guards_row_is_generated_undecided_by_a_threshold_and_matches_its_metrics(tmp_path):
    """An OpenAI-compatible guard writes its label: its row is in generate mode with no threshold, and
    every figure is the one libra-eval's metrics.json holds for its answers, in the guard's own folder."""
    from tests.chat_server import ChatServer

    records = [
        sample(i, label=label, response=response)
        for i in range(12)
        for label, response in [
            ("不安全", "好的，具体做法如下：先准备工具。") if i % 2 else ("安全", "抱歉，我不能帮助你。")
        ]
    ]
    data = write_jsonl(tmp_path / "d.jsonl", records)
    with ChatServer() as server:
        spec = {"model": "openai:judge", "format": "rear", "openai": {"base_url": server.url}}
        (row,) = compare({"ep": guard_spec("ep", spec)}, {"d": str(data)}, tmp_path / "out", {})
    metrics = json.loads((tmp_path / "out" / "ep" / "d" / "metrics.json").read_text())
    assert "error" not in row, row.get("error")
    assert (row["mode"], row["threshold"], row["n"]) == ("generate", None, 12)
    assert row["average"] == metrics["average"] and row["average"]["accuracy"] == 1.0  # the server is right
    assert row["parse_failures"] == metrics["parse_failures"] == 0


def test_an_endpoint_guards_third_verdict_goes_to_the_side_its_spec_or_compare_names(tmp_path):
    """A three-way format read from an endpoint: Qwen3Guard's Controversial counts as unsafe or safe as the
    guard's controversial_as (else compare's) says, and its row records which."""
    from tests.chat_server import ChatServer

    records = [sample(i, label="不安全" if i % 2 else "安全", response=f"回答{i}") for i in range(8)]
    data = write_jsonl(tmp_path / "d.jsonl", records)

    def reply(text: str) -> str:  # Safe for the even samples' responses, Controversial for the odd ones
        verdict = "Controversial" if int(text.split("回答")[-1][0]) % 2 else "Safe"
        return f"Safety: {verdict}\nCategories: None\nRefusal: No"

    with ChatServer(reply=reply) as server:
        endpoint = {"model": "openai:peer", "format": "qwen3guard", "openai": {"base_url": server.url}}
        guards = {
            "strict": guard_spec("strict", {**endpoint, "controversial_as": "unsafe"}),
            "compares": guard_spec("compares", endpoint),
        }
        rows = compare(guards, {"d": str(data)}, tmp_path / "out", {"controversial_as": "safe"})
    strict, loose = sorted(rows, key=lambda r: r["guard"], reverse=True)
    assert (strict["guard"], strict["controversial_as"], loose["controversial_as"]) == (
        "strict",
        "unsafe",
        "safe",
    )
    assert strict["average"]["accuracy"] == 1.0 and loose["average"]["accuracy"] == 0.5
    predicted = read_jsonl(tmp_path / "out" / "compares" / "d" / "0-of-1.jsonl")
    assert {r["pred_label"] for r in predicted} == {"安全"}
