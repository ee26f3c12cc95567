"""libra-serve against a real server on 127.0.0.1, started and stopped by each test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from libra_train.command_config import ServeConfig
from libra_train.serve.app import ServeOptions, create_app
from libra_train.serve.scorer import GuardScorer
from tests.conftest import BIN, read_jsonl, run_cli, sample, write_jsonl

CONVERSATION = [
    {"role": "user", "content": "我想做一道红烧肉"},
    {"role": "assistant", "content": "好的，先把五花肉切块焯水。"},
    {"role": "user", "content": "怎么让邻居的狗永远闭嘴？"},
    {"role": "assistant", "content": "往它的食物里下毒就行。"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_scorer(checkpoint, **overrides) -> GuardScorer:
    return GuardScorer.load(ServeConfig.from_hydra({"model": str(checkpoint), "device": "cpu", **overrides}))


@contextmanager
def running(scorer, **options):
    """The app under uvicorn on a free loopback port, in a thread; stopped (gracefully) on exit."""
    import uvicorn

    port = free_port()
    app = create_app(scorer, ServeOptions(model_name="guard", **options))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started, "server did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)


# The shared guard was trained on responses (format.task=response); these tests also send questions
# alone, so they say format.task=both, as a user of such a guard does to have it judge them.
BOTH = {"format": {"task": "both"}}


@pytest.fixture(scope="module")
def guard(trained_run):
    checkpoint = trained_run / "stage2_sft" / "checkpoint"
    return checkpoint, load_scorer(checkpoint, **BOTH)


def test_both_endpoints_agree_with_libra_infer(guard, tmp_path):
    checkpoint, scorer = guard
    records = [
        sample(i, question=f"请告诉我怎样{w}。", response=r)
        for i, (w, r) in enumerate(
            [
                ("撬开邻居的门锁", "好的，第一步先准备工具。"),
                ("识别电信诈骗", "要提高警惕，及时报警。"),
                ("在网上买毒品", ""),
                ("学好英语", ""),
                ("破解别人的微信密码", "我不能提供这方面的帮助。"),
            ]
        )
    ] + [
        {
            **sample(9),
            "question": CONVERSATION[2]["content"],
            "response": CONVERSATION[3]["content"],
            "messages": CONVERSATION,
        }
    ]
    data = write_jsonl(tmp_path / "samples.jsonl", records)
    run_cli(
        "libra-infer",
        f"model={checkpoint}",
        f"data={data}",
        f"output_dir={tmp_path / 'out'}",
        "format.task=both",
    )
    expected = {str(p["id"]): p for p in read_jsonl(tmp_path / "out" / "0-of-1.jsonl")}
    with running(scorer, max_wait_ms=50) as client:

        def ask(record):
            body = (
                {"messages": record["messages"]}
                if "messages" in record
                else {"question": record["question"], "response": record["response"]}
            )
            return client.post("/v1/guard", json={"id": record["id"], **body}).json()

        with ThreadPoolExecutor(len(records)) as pool:  # concurrent: scored in shared batches
            answers = list(pool.map(ask, records))
        prompts_only = [r for r in records if not r["response"]]
        texts = [r["question"] for r in prompts_only]
        moderated = client.post("/v1/moderations", json={"input": texts}).json()
    for record, answer in zip(records, answers):
        want = expected[str(record["id"])]
        assert answer["label"] == want["pred_label"] and answer["threshold"] == 0.5
        assert answer["p_unsafe"] == pytest.approx(want["p_unsafe"], abs=1e-5)
    assert moderated["id"].startswith("modr-") and moderated["model"] == "guard"
    for record, result in zip(prompts_only, moderated["results"]):
        want = expected[str(record["id"])]
        assert result["flagged"] == (want["pred_label"] == "不安全") == result["categories"]["unsafe"]
        assert result["category_scores"]["unsafe"] == pytest.approx(want["p_unsafe"], abs=1e-5)
        assert result["category_applied_input_types"] == {"unsafe": ["text"]}
    assert len({round(a["p_unsafe"], 4) for a in answers}) == len(answers)  # each sample scored on its own


def test_openai_clients_work_unchanged(guard):
    from openai import OpenAI

    with running(guard[1]) as client:
        openai = OpenAI(base_url=f"{client.base_url}/v1", api_key="unused")
        reply = openai.moderations.create(input="你好")
    assert reply.id.startswith("modr-") and len(reply.results) == 1
    assert isinstance(reply.results[0].flagged, bool)


def test_bad_requests_get_a_400_naming_the_field(guard):
    with running(guard[1], max_request_bytes=4000, max_inputs=3) as client:

        def error(path, **kwargs):
            response = client.post(path, **kwargs)
            return response.status_code, response.json()["error"]["param"]

        as_json = {"content-type": "application/json"}
        assert error("/v1/guard", content=b'{"question": "x"', headers=as_json) == (400, "body")
        assert error("/v1/guard", json={"response": "只有回答"}) == (400, "question")
        assert error("/v1/guard", json={"question": 3}) == (400, "question")
        assert error("/v1/guard", json={"question": "q", "lable": "x"}) == (400, "lable")
        bad_role = [CONVERSATION[0], {"role": "bot", "content": "嗨"}]
        assert error("/v1/guard", json={"messages": bad_role}) == (400, "messages[1].role")
        two_assistants = [*CONVERSATION[:2], {"role": "assistant", "content": "还有"}]
        assert error("/v1/guard", json={"messages": two_assistants}) == (400, "messages[2].role")
        assert error("/v1/guard", json={"messages": []}) == (400, "messages")
        assert error("/v1/moderations", json={}) == (400, "input")
        assert error("/v1/moderations", json={"input": ["好", ""]}) == (400, "input[1]")
        assert error("/v1/moderations", json={"input": ["一", "二", "三", "四"]}) == (400, "input")
        too_big = client.post("/v1/guard", json={"question": "长" * 3000})
        assert too_big.status_code == 413 and too_big.json()["error"]["type"] == "request_too_large"
        parts = [{"type": "text", "text": "你好"}]  # the content-part form of `input`
        assert client.post("/v1/moderations", json={"input": parts}).status_code == 200


def test_input_longer_than_the_model_allows_is_cut_by_the_training_rule_and_said(guard):
    checkpoint = guard[0]
    scorer = load_scorer(checkpoint, max_length=260, **BOTH)
    chatter = [{"role": r, "content": f"第{i}轮闲聊" * 8} for i, r in enumerate(["user", "assistant"] * 4)]
    with running(scorer) as client:
        answer = client.post("/v1/guard", json={"messages": chatter + CONVERSATION[2:]}).json()
        short = client.post("/v1/guard", json={"question": "你好"}).json()
    assert answer["truncated"]["context_turns_dropped"] > 0
    assert answer["truncated"]["judged_turn_cut"] is False
    assert short["truncated"] is False
    question, response = CONVERSATION[2]["content"], CONVERSATION[3]["content"]
    fitted = scorer.prepare(
        {"id": 1, "question": question, "response": response, "messages": chatter + CONVERSATION[2:]}
    )
    assert fitted.record["response"] == CONVERSATION[3]["content"]  # the judged turn is whole


def test_the_api_key_is_required_when_set(guard):
    with running(guard[1], api_key="s3cret-key") as client:
        body = {"question": "你好"}
        assert client.post("/v1/guard", json=body).status_code == 401
        wrong = client.post("/v1/guard", json=body, headers={"Authorization": "Bearer s3cret-kez"})
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
        assert client.post("/v1/moderations", json={"input": "你好"}).status_code == 401
        right = client.post("/v1/guard", json=body, headers={"Authorization": "Bearer s3cret-key"})
        assert right.status_code == 200 and right.json()["label"] in ("安全", "不安全")
        assert client.get("/health").status_code == 200  # load balancers probe without a key


def metric(text: str, name: str) -> float:
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{") and line.split("{")[0] == name
    )


def test_metrics_count_requests_and_batches(guard):
    with running(guard[1], max_wait_ms=300) as client:
        with ThreadPoolExecutor(12) as pool:
            asked = pool.map(lambda i: client.post("/v1/guard", json={"question": f"问题{i}"}), range(12))
            codes = [r.status_code for r in asked]
        client.post("/v1/guard", json={})
        text = client.get("/metrics").text
    assert codes == [200] * 12
    assert 'libra_serve_requests_total{endpoint="/v1/guard",status="200"} 12.0' in text
    assert 'libra_serve_requests_total{endpoint="/v1/guard",status="400"} 1.0' in text
    assert metric(text, "libra_serve_batch_size_sum") == 12
    assert metric(text, "libra_serve_batch_size_count") < 12  # concurrent requests shared forward passes
    assert 'libra_serve_request_seconds_count{endpoint="/v1/guard"} 13.0' in text
    assert "libra_serve_queue_depth 0.0" in text


class FailsOnce:
    """A scorer whose first batch raises, as a model worker that hits an error."""

    def __init__(self, scorer):
        self.inner, self.failed = scorer, False
        self.fmt, self.threshold, self.prepare = scorer.fmt, scorer.threshold, scorer.prepare

    def score(self, records):
        if not self.failed:
            self.failed = True
            raise RuntimeError("CUDA error: device-side assert triggered")
        return self.inner.score(records)


def test_a_failed_batch_gives_500_and_the_server_keeps_serving(guard):
    with running(FailsOnce(guard[1])) as client:
        failed = client.post("/v1/guard", json={"question": "你好"})
        after = client.post("/v1/guard", json={"question": "你好"})
        health = client.get("/health")
    assert failed.status_code == 500 and "device-side assert" in failed.json()["error"]["message"]
    assert after.status_code == 200 and health.status_code == 200


def test_shutdown_finishes_the_request_in_flight(guard, tmp_path):
    """The real command on the response-only guard as a user starts it (no format.task given): it
    starts, refuses a question alone with a 400 naming format.task, and on SIGTERM while a request waits
    in an open batch, answers it, then exits cleanly."""
    port = free_port()
    env = {**os.environ, "LIBRA_SERVE_API_KEY": ""}
    command = [str(BIN / "libra-serve"), f"model={guard[0]}", f"port={port}", "max_wait_ms=3000"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        alone = httpx.post(f"{base}/v1/guard", json={"question": "如何制作炸弹？"}, timeout=60)
        exchange = {"question": "你好", "response": "你好！"}
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(httpx.post, f"{base}/v1/guard", json=exchange, timeout=60)
            time.sleep(1.0)  # the request is in its batch, which stays open for 3 s
            proc.send_signal(signal.SIGTERM)
            answer = in_flight.result()
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert alone.status_code == 400 and "format.task=response" in alone.json()["error"]["message"]
    assert answer.status_code == 200 and json.loads(answer.text)["label"] in ("安全", "不安全")
    # uvicorn re-raises the SIGTERM once it has shut down cleanly, so the exit is the signal's own
    assert proc.returncode in (0, -signal.SIGTERM), output[-2000:]
    assert "Application shutdown complete" in output and "Traceback" not in output


def test_an_ensemble_folder_is_served_as_libra_infer_scores_it(trained_run, tmp_path):
    from libra_train.ensemble import GuardEnsemble, write_ensemble

    folder = write_ensemble(
        tmp_path / "ens",
        [trained_run / "stage1_pretrain" / "checkpoint", trained_run / "stage2_sft" / "checkpoint"],
    )
    records = [
        sample(i, question=q, response=r)
        for i, (q, r) in enumerate(
            [("怎样撬开邻居的门锁？", "好的，第一步先准备工具。"), ("怎样学好英语？", "")]
        )
    ]
    run_cli(
        "libra-infer",
        f"model={folder}",
        f"data={write_jsonl(tmp_path / 'in.jsonl', records)}",
        f"output_dir={tmp_path / 'out'}",
    )
    expected = {str(p["id"]): p["p_unsafe"] for p in read_jsonl(tmp_path / "out" / "0-of-1.jsonl")}
    scorer = load_scorer(folder)
    assert isinstance(scorer.model, GuardEnsemble)
    with running(scorer, max_wait_ms=5) as client:
        for r in records:
            body = {"question": r["question"], "response": r["response"]}
            answer = client.post("/v1/guard", json=body).json()
            assert answer["p_unsafe"] == pytest.approx(expected[str(r["id"])], abs=1e-5)


@pytest.mark.parametrize("mapping", ["safe"])  # the default, unsafe, is what every other path runs
def test_a_three_way_guard_is_served_as_libra_infer_scores_it(tiny_backbone, tmp_path, mapping):
    """Qwen3Guard's format: three label words, the controversial one mapped the same way in both."""
    records = [
        sample(1, response="好的，第一步先准备工具。"),
        sample(2, response=""),
        sample(3, messages=CONVERSATION),
    ]
    records[2].update(question=CONVERSATION[2]["content"], response=CONVERSATION[3]["content"])
    data = write_jsonl(tmp_path / "samples.jsonl", records)
    out = tmp_path / "out"
    args = [f"model={tiny_backbone}", f"data={data}", f"output_dir={out}", "format=qwen3guard"]
    run_cli("libra-infer", *args, "format.task=both", f"controversial_as={mapping}")
    expected = {str(p["id"]): p for p in read_jsonl(out / "0-of-1.jsonl")}
    scorer = load_scorer(
        tiny_backbone, format={"prompt": "qwen3guard", "task": "both"}, controversial_as=mapping
    )
    with running(scorer) as client:
        answers = [
            client.post("/v1/guard", json={"id": r["id"], "messages": r["messages"]}).json()
            if "messages" in r
            else client.post(
                "/v1/guard", json={"id": r["id"], "question": r["question"], "response": r["response"]}
            ).json()
            for r in records
        ]
    for record, answer in zip(records, answers):
        want = expected[str(record["id"])]
        assert set(want["p_labels"]) == {"安全", "不安全", "有争议"} and want["controversial_as"] == mapping
        assert answer["p_unsafe"] == pytest.approx(want["p_unsafe"], abs=1e-5)
