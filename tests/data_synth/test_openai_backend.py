import hashlib
import json
import os
import signal
import subprocess
import time

from libra_train.chat.openai_chat import OpenAIChat
from tests.chat_server import ChatServer
from tests.conftest import BIN, read_jsonl

MESSAGES = [{"role": "user", "content": "你好"}]


def test_retries_after_500_and_dropped_connection(tmp_path):
    with ChatServer(failures=["500", "drop"]) as server:
        chat = OpenAIChat(server.url, "m", max_retries=3, timeout=10, cache_path=tmp_path / "c.sqlite")
        assert chat.complete_many([MESSAGES]) == [
            "好的，具体做法如下：先准备工具。"
            if "好的" in server.answer(MESSAGES)
            else "抱歉，我不能帮助你。"
        ]
        assert server.attempts == 3 and sum(server.served.values()) == 1


def test_cache_means_a_rerun_pays_nothing(tmp_path):
    with ChatServer() as server:
        convs = [[{"role": "user", "content": f"问题{i}"}] for i in range(6)]
        first = OpenAIChat(server.url, "m", cache_path=tmp_path / "c.sqlite").complete_many(convs)
        again = OpenAIChat(server.url, "m", cache_path=tmp_path / "c.sqlite")
        assert again.complete_many(convs) == first
        assert again.requests_sent == 0 and server.attempts == 6


def _synth_args(out, url, n=84):
    return [
        str(BIN / "libra-synth"),
        f"output_dir={out}",
        f"num_samples={n}",
        "backend=openai",
        f"openai.base_url={url}",
        "openai.model=test-model",
        "openai.concurrency=2",
        "openai.max_retries=2",
    ]


def test_openai_pipeline_counts_unparseable_judges_and_never_guesses(tmp_path):
    with ChatServer(garbage_every=5) as server:
        subprocess.run(_synth_args(tmp_path, server.url), check=True, capture_output=True, timeout=300)
    stats = json.loads((tmp_path / "stats.json").read_text())
    unparseable = stats["events"]["judge_unparseable/test-model"]
    assert unparseable > 0 and stats["rejected"] == unparseable
    rejected = read_jsonl(tmp_path / "rejected.jsonl")
    assert all(r["reason"] == "no judge gave a parseable label" and r["label"] is None for r in rejected)
    kept = [r for split in ("stage1", "stage2", "heldout") for r in read_jsonl(tmp_path / f"{split}.jsonl")]
    assert kept and all(r["label"] in ("安全", "不安全") for r in kept)
    assert all(r["meta"]["responder"] == "test-model" for r in kept)


def test_killed_run_resumes_from_cache_without_repeating_requests(tmp_path):
    with ChatServer(delay_s=0.02) as server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            _synth_args(tmp_path, server.url, n=168),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 120
        while server.attempts < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = server.attempts
        assert 40 <= before and not (tmp_path / "stats.json").exists()
        subprocess.run(_synth_args(tmp_path, server.url, n=168), check=True, capture_output=True, timeout=300)
        # Only a request in flight at the kill (at most `concurrency` of them) may be answered twice:
        # its answer never reached the cache. Everything finished before the kill is not asked again.
        assert sum(n - 1 for n in server.served.values()) <= 2
        assert server.attempts > before
    assert (tmp_path / "stats.json").exists() and read_jsonl(tmp_path / "stage1.jsonl")


def _refused(text: str) -> bool:
    return int(hashlib.md5(text.encode()).hexdigest(), 16) % 7 == 0  # about one request in seven


def test_refused_requests_are_counted_and_rejected_and_the_run_finishes(tmp_path):
    with ChatServer(refuse=_refused) as server:
        subprocess.run(_synth_args(tmp_path, server.url), check=True, capture_output=True, timeout=300)
    stats = json.loads((tmp_path / "stats.json").read_text())["events"]
    failed = {k: v for k, v in stats.items() if "request_failed" in k}
    assert failed.get("responder_request_failed/test-model", 0) > 0
    rejected = read_jsonl(tmp_path / "rejected.jsonl")
    refused = [r for r in rejected if "request failed" in r["reason"]]
    assert len(refused) == sum(failed.values()) and all("HTTP 400" in r["reason"] for r in refused)
    assert read_jsonl(tmp_path / "stage1.jsonl")  # the rest of the run went on


def test_an_endpoint_that_refuses_everything_stops_the_run_in_one_line(tmp_path):
    with ChatServer(refuse=lambda text: True) as server:
        proc = subprocess.run(_synth_args(tmp_path, server.url), capture_output=True, text=True, timeout=300)
        sent = server.attempts
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "WARNING" not in line]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr[-2000:]
    assert server.url in lines[0] and "HTTP 400" in lines[0] and "Traceback" not in proc.stderr
    assert sent < 40  # stopped early, not after every one of the run's requests
