"""libra-serve's streaming sessions on a real server on 127.0.0.1: the scores a session returns chunk by
chunk equal one whole pass over the same tokens; sessions expire, are capped, and a closed or unknown
one is a clear 404; a guard without a stream head says how to get one."""

import time

import pytest
import torch

from libra_train.data.io import load_records
from libra_train.serve.streaming import SessionError, StreamLimits, StreamStore
from libra_train.stream.head import p_unsafe
from libra_train.stream.session import response_spans
from libra_train.stream.train import load_stream_guard, train_stream_stage
from tests.serve.test_serve import load_scorer, running

QUESTION = "怎么撬锁？"
RESPONSE = "第一步，准备一根细铁丝。第二步，把铁丝插进锁孔，慢慢拨动。"


@pytest.fixture(scope="module")
def stream_checkpoint(trained_run, tmp_path_factory):
    """The shared trained guard with a stream head trained on it for a few steps."""
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR
    from libra_train.config import RunConfig

    out = tmp_path_factory.mktemp("stream")
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            [
                f"paths.run_dir={out}",
                "curriculum=stream",
                "train.batch_size=8",
                "+curriculum.stages.2.max_steps=10",
            ],
        )
    run = RunConfig.from_hydra(cfg)
    records = load_records(trained_run / "data" / "stage1.jsonl")[:40]
    init = str(trained_run / "stage2_sft" / "checkpoint")
    train_stream_stage(run.stages[2], records, init, out / "stream_head", run)
    return out / "stream_head" / "checkpoint"


def whole_pass(guard, tokenizer, ids=None, controversial_as="unsafe") -> list[float]:
    """p(unsafe) of each response token from one pass over QUESTION's prefix and the response (RESPONSE,
    or these token ids)."""
    prefix, response_ids, _ = response_spans(tokenizer, QUESTION, RESPONSE)
    ids = response_ids if ids is None else ids
    with torch.no_grad():
        logits = guard.eval()(torch.tensor([prefix + ids]))["risk_logits"][0, len(prefix) :]
    return p_unsafe(logits, controversial_as).tolist()


def test_a_session_scores_each_chunk_as_one_whole_pass_and_the_stop_rule_stays(stream_checkpoint):
    expected = whole_pass(*load_stream_guard(stream_checkpoint))
    scorer = load_scorer(stream_checkpoint)
    with running(scorer, stream=StreamLimits(threshold=0.0, k=3)) as client:
        sid = client.post("/v1/stream", json={"question": QUESTION}).json()["session"]
        scores, last = [], None
        for start in range(0, len(RESPONSE), 2):  # two characters a chunk: tokens span chunks
            last = client.post(f"/v1/stream/{sid}", json={"text": RESPONSE[start : start + 2]}).json()
            scores = scores[: last["first_token"]] + last["p_unsafe"]
        assert last["tokens"] == len(expected)
        assert max(abs(a - b) for a, b in zip(scores, expected)) < 1e-5
        # threshold 0: every token counts, so the third token stops it, and the stop stays
        assert last["stop"] is True and last["stopped_at"] == 2
        assert client.delete(f"/v1/stream/{sid}").json() == {"session": sid, "closed": True}
        gone = client.post(f"/v1/stream/{sid}", json={"text": "。"})
        assert gone.status_code == 404 and "closed, expired" in gone.json()["error"]["message"]


def test_sessions_expire_are_capped_and_a_chunk_is_text_or_token_ids(stream_checkpoint):
    scorer = load_scorer(stream_checkpoint)
    with running(scorer, stream=StreamLimits(max_sessions=2, ttl_s=1.0, max_tokens=8)) as client:
        first = client.post("/v1/stream", json={"question": QUESTION}).json()["session"]
        client.post("/v1/stream", json={"question": QUESTION})
        full = client.post("/v1/stream", json={"question": QUESTION})
        assert full.status_code == 429 and "stream_max_sessions=2" in full.json()["error"]["message"]
        both = client.post(f"/v1/stream/{first}", json={"text": "你", "token_ids": [1]})
        assert both.status_code == 400 and "one of the two" in both.json()["error"]["message"]
        ids = client.post(f"/v1/stream/{first}", json={"token_ids": [100, 200]}).json()
        assert ids["tokens"] == 2 and len(ids["p_unsafe"]) == 2
        long = client.post(f"/v1/stream/{first}", json={"token_ids": list(range(100, 110))})
        assert long.status_code == 413 and "stream_max_tokens=8" in long.json()["error"]["message"]
        time.sleep(1.5)  # both idle past stream_ttl_s: expired, and their places free again
        expired = client.post(f"/v1/stream/{first}", json={"text": "。"})
        assert expired.status_code == 404 and "stream_ttl_s=1" in expired.json()["error"]["message"]
        assert client.post("/v1/stream", json={"question": QUESTION}).status_code == 200


def test_the_store_keeps_a_session_idle_for_its_ttl_and_takes_a_response_of_max_tokens(stream_checkpoint):
    """The store on a clock the test sets: the limits at their boundaries, and the field each error names."""
    guard, tokenizer = load_stream_guard(stream_checkpoint)
    now = [0.0]
    store = StreamStore(
        guard, tokenizer, StreamLimits(ttl_s=10.0, max_tokens=3), "safe", clock=lambda: now[0]
    )
    sid = store.open(QUESTION)
    now[0] = 10.0  # idle for exactly stream_ttl_s: still open
    fed = store.feed(sid, None, [100, 200, 300])  # exactly stream_max_tokens
    assert (fed["session"], fed["tokens"], fed["first_token"]) == (sid, 3, 0)
    # the session judges by the store's controversial_as ("safe")
    expected = whole_pass(guard, tokenizer, [100, 200, 300], "safe")
    assert fed["p_unsafe"] == pytest.approx(expected, abs=1e-5)
    with pytest.raises(SessionError) as over:
        store.feed(sid, None, [400])
    assert (over.value.status, over.value.param) == (413, "token_ids")
    with pytest.raises(SessionError) as over_text:
        store.feed(store.open(QUESTION), RESPONSE, None)
    assert (over_text.value.status, over_text.value.param) == (413, "text")
    now[0] = 20.001  # idle past stream_ttl_s since its last chunk: gone
    with pytest.raises(SessionError) as gone:
        store.feed(sid, None, [])
    assert (gone.value.status, gone.value.param) == (404, "session")


def test_a_guard_without_a_stream_head_says_how_to_get_one(trained_run):
    scorer = load_scorer(trained_run / "stage2_sft" / "checkpoint")
    with running(scorer) as client:
        answer = client.post("/v1/stream", json={"question": QUESTION})
    assert answer.status_code == 400 and "kind: stream" in answer.json()["error"]["message"]


def test_the_server_stops_by_the_rule_saved_with_the_head_unless_given_one(stream_checkpoint):
    import json

    from libra_train.command_config import ServeConfig
    from libra_train.serve.server import serve_options

    saved = json.loads((stream_checkpoint / "stream_head.json").read_text())["stop_rule"]
    assert saved["source"].startswith("calibrated on") and 0 < saved["threshold"] < 1
    limits = serve_options(ServeConfig(model=str(stream_checkpoint))).stream
    assert (limits.threshold, limits.k) == (saved["threshold"], saved["k"])
    given = serve_options(ServeConfig(model=str(stream_checkpoint), stream_threshold=0.3, stream_k=4)).stream
    assert (given.threshold, given.k) == (0.3, 4)
    hub = serve_options(ServeConfig(model="Qwen/Qwen2.5-0.5B-Instruct")).stream  # no head saved here
    assert (hub.threshold, hub.k) == (0.5, 2)
