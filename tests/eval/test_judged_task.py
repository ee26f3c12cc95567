"""A guard judges what it was trained to judge (its recorded format.task): a guard trained on responses is
refused a question alone, with one line naming format.task, by libra-infer, libra-serve and an export's
`guard` chat template, unless the user gives format.task otherwise; the moderation endpoint reads
`input` as documented (a text: a question alone; {question, response}: that response)."""

from __future__ import annotations

import json
import shutil

import pytest

from libra_train.data.formats import FormatConfig, untrained_task
from libra_train.data.recorded_format import trained_task
from tests.conftest import read_jsonl, run_cli, sample, write_jsonl
from tests.serve.test_serve import load_scorer, running

QUESTION = {"id": "q", "question": "如何制作炸弹？"}
EXCHANGE = {"id": "r", "question": "如何制作炸弹？", "response": "抱歉，我不能提供帮助。"}


@pytest.mark.parametrize(
    "record, task, trained, refused",
    [
        (
            QUESTION,
            "response",
            "response",
            True,
        ),  # the quick-start bug: a question judged by a response guard
        (EXCHANGE, "response", "response", False),
        (QUESTION, "both", "response", False),  # the user said so: format.task=both on the command line
        (QUESTION, "response", "both", False),
        (QUESTION, "response", None, False),  # nothing recorded (a hub id): nothing to hold it to
        (EXCHANGE, "prompt", "prompt", True),
        (QUESTION, "prompt", "prompt", False),
    ],
)
def test_untrained_task_on_hand_built_cases(record, task, trained, refused):
    why = untrained_task(record, FormatConfig(task=task), trained, "GUARD")
    assert (why is not None) == refused
    if refused:
        assert why.startswith("GUARD was trained to judge") and f"format.task={trained}" in why


def guard_recorded_as(trained_run, folder, **keys):
    """The shared guard, its format record changed by `keys`."""
    shutil.copytree(trained_run / "stage2_sft" / "checkpoint", folder)
    record = json.loads((folder / "guard_format.json").read_text())
    record["format"].update(keys)
    (folder / "guard_format.json").write_text(json.dumps(record, ensure_ascii=False))
    return folder


@pytest.fixture(scope="module")
def response_guard(trained_run, tmp_path_factory):
    """The shared guard, recorded as trained on responses only and with rules in its prompt (a key the
    default format lacks: the record, not the default, must be what is read)."""
    folder = tmp_path_factory.mktemp("response_guard") / "checkpoint"
    guard_recorded_as(trained_run, folder, task="response", rules=True)
    assert trained_task(folder) == "response"
    return folder


def test_libra_infer_refuses_a_question_alone_to_a_response_guard_unless_told(response_guard, tmp_path):
    data = write_jsonl(tmp_path / "q.jsonl", [sample(1), {"id": 2, "question": "如何制作炸弹？"}])
    refused = run_cli(
        "libra-infer", f"model={response_guard}", f"data={data}", f"output_dir={tmp_path / 'a'}", check=False
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: config 'format.task': ") and "sample 2" in refused.stderr
    assert not (tmp_path / "a" / "0-of-1.jsonl").exists()

    told = tmp_path / "b"
    run_cli(
        "libra-infer", f"model={response_guard}", f"data={data}", f"output_dir={told}", "format.task=both"
    )
    assert [r["task"] for r in read_jsonl(told / "0-of-1.jsonl")] == ["response", "prompt"]
    shown = tmp_path / "c"  # format.task=… changes that key of the record and keeps the rest (rules)
    run_cli(
        "libra-infer",
        f"model={response_guard}",
        f"data={data}",
        f"output_dir={shown}",
        "format.task=both",
        "mode=prompts",
    )
    assert all("安全规则" in row["prompt"] for row in read_jsonl(shown / "prompts.jsonl"))


def test_libra_serve_refuses_a_question_to_a_response_guard_and_reads_exchanges(
    response_guard, trained_run, tmp_path
):
    with running(load_scorer(response_guard)) as client:
        alone = client.post("/v1/moderations", json={"input": "如何制作炸弹？"})
        assert alone.status_code == 400
        error = alone.json()["error"]
        assert error["param"] == "input[0]" and "format.task=response" in error["message"]
        pair = {"question": EXCHANGE["question"], "response": EXCHANGE["response"]}
        judged = client.post(
            "/v1/moderations",
            json={
                "input": [
                    pair,
                    {
                        "messages": [
                            {"role": "user", "content": "怎么撬锁？"},
                            {"role": "assistant", "content": "第一步，准备铁丝。"},
                        ]
                    },
                ]
            },
        )
        assert judged.status_code == 200 and len(judged.json()["results"]) == 2
        bad = client.post("/v1/moderations", json={"input": [{"question": "q", "colour": "red"}]})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "input[0]"
        assert client.post("/v1/guard", json={"question": "如何制作炸弹？"}).status_code == 400
    both = guard_recorded_as(trained_run, tmp_path / "both", task="both")  # takes either
    with running(load_scorer(both)) as client:
        answers = client.post("/v1/moderations", json={"input": ["如何制作炸弹？", pair]}).json()["results"]
        guard = client.post("/v1/guard", json={"question": "如何制作炸弹？"}).json()
    assert answers[0]["category_scores"]["unsafe"] == pytest.approx(guard["p_unsafe"], abs=1e-6)


def test_an_exports_guard_template_refuses_what_its_guard_was_not_trained_on(response_guard, tmp_path):
    from transformers import AutoTokenizer

    release = tmp_path / "release"
    run_cli("libra-export", f"checkpoint={response_guard}", f"output_dir={release}", "classifier=true")
    tokenizer = AutoTokenizer.from_pretrained(release)
    exchange = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "r"}]
    assert tokenizer.apply_chat_template(exchange, chat_template="guard", tokenize=False)
    with pytest.raises(Exception, match="format.task=response"):
        tokenizer.apply_chat_template(exchange[:1], chat_template="guard", tokenize=False)
    data = write_jsonl(tmp_path / "q.jsonl", [{"id": 1, "question": "如何制作炸弹？"}])
    refused = run_cli(
        "libra-infer",
        f"model={release}",
        f"data={data}",
        f"output_dir={tmp_path / 'i'}",
        "mode=prompts",
        check=False,
    )
    assert refused.returncode == 2 and "format.task" in refused.stderr
