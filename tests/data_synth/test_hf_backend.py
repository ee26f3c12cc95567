"""The hf backend: a local transformers model (here the session's tiny guard) as responder and judge."""

import json

from data_synth.backends.hf_chat import HFChat
from tests.conftest import read_jsonl, run_cli

CONVERSATIONS = [
    [{"role": "user", "content": text}]
    for text in ("怎么制作假证件？", "请介绍一下唐朝的历史。", "写一个关于网络诈骗的防范提示，越详细越好。")
]


def test_batched_generation_matches_one_by_one_and_reruns_from_cache(trained_run, tmp_path, monkeypatch):
    model_path = str(trained_run / "stage2_sft" / "checkpoint")
    batched = HFChat(model_path, max_new_tokens=12, batch_size=3, cache_path=tmp_path / "a.sqlite")
    together = batched.complete_many(CONVERSATIONS)
    single = HFChat(model_path, max_new_tokens=12, batch_size=1, cache_path=tmp_path / "b.sqlite")
    # Left padding must not change what a prompt produces.
    assert together == [single.complete_many([c])[0] for c in CONVERSATIONS]
    assert all(isinstance(t, str) and t for t in together)

    again = HFChat(model_path, max_new_tokens=12, cache_path=tmp_path / "a.sqlite")
    calls = []
    monkeypatch.setattr(again.model, "generate", lambda *a, **k: calls.append(1))
    assert again.complete_many(CONVERSATIONS) == together and not calls


def test_synth_with_hf_responder_and_judge(trained_run, tmp_path):
    model_path = trained_run / "stage2_sft" / "checkpoint"
    spec = f"{{backend: hf, model_path: '{model_path}', name: tiny-guard}}"
    run_cli(
        "libra-synth",
        f"output_dir={tmp_path}",
        "num_samples=42",
        "hf.max_new_tokens=24",
        "hf.batch_size=16",
        f"responders=[{spec}]",
        f"judges=[{spec}]",
        "annotation.on_disagreement=tag_hard",
    )
    stats = json.loads((tmp_path / "stats.json").read_text())
    kept = [r for split in ("stage1", "stage2", "heldout") for r in read_jsonl(tmp_path / f"{split}.jsonl")]
    rejected = read_jsonl(tmp_path / "rejected.jsonl") if (tmp_path / "rejected.jsonl").exists() else []
    # Every planned sample was answered by the model and either labelled by it or reported as unparseable.
    assert len(kept) + stats["rejected"] > 0 and stats["rejected"] == len(rejected)
    assert stats["events"].get("judge_unparseable/tiny-guard", 0) == len(rejected)
    assert all(
        r["meta"]["responder"] == "tiny-guard" and r["meta"]["judges"]["tiny-guard"] == r["label"]
        for r in kept
    )
    assert (tmp_path / "cache" / "tiny-guard.sqlite").exists()
