import json
from collections import Counter

from data_synth.compose import reserved_indices
from data_synth.dedup import NearDuplicateIndex
from data_synth.lexicon import HELDOUT_ATTACKS, HELDOUT_RESPONDER, PERSONAS
from tests.conftest import read_jsonl, run_cli

SPLITS = ("stage1", "stage2", "heldout")


def _synth(out, *extra):
    return run_cli("libra-synth", f"output_dir={out}", "num_samples=1400", *extra)


def test_default_run_writes_three_splits_and_is_byte_identical(tmp_path):
    proc = _synth(tmp_path / "a")
    _synth(tmp_path / "b")
    assert "samples by category × label × split" in proc.stdout
    for name in ("stage1.jsonl", "stage2.jsonl", "heldout.jsonl", "stats.json", "stats.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    _synth(tmp_path / "c", "seed=1")
    assert (tmp_path / "a" / "stage1.jsonl").read_bytes() != (tmp_path / "c" / "stage1.jsonl").read_bytes()


def test_splits_are_balanced_difficult_where_expected_and_leak_free(tmp_path):
    _synth(tmp_path)
    splits = {s: read_jsonl(tmp_path / f"{s}.jsonl") for s in SPLITS}
    for split, records in splits.items():
        cells = Counter((r["category_name"], r["label"]) for r in records)
        assert len(cells) == 14 and max(cells.values()) - min(cells.values()) <= 1, split
        assert all(r["source"] == "Synthetic Data" and r["analyze"] for r in records)
    assert {r["meta"]["difficulty"] for r in splits["stage1"]} <= {"easy", "medium", "hard"}
    hard = lambda rs: sum(r["meta"]["difficulty"] == "hard" for r in rs) / len(rs)  # noqa: E731
    assert hard(splits["stage2"]) > 0.7 > hard(splits["stage1"])
    # the question alone has both labels in every split: with benign questions only in stage 2, a guard
    # judging questions learnt in stage 1 that every question is unsafe
    for split, records in splits.items():
        benign = sum(r["meta"]["query_label"] == "安全" for r in records) / len(records)
        assert 0.10 <= benign <= 0.40, (split, benign)
        assert all(r["label"] == "安全" for r in records if r["meta"]["query_label"] == "安全"), split
        if split != "heldout":  # plainly asked harmful questions, not only wrapped ones, in both stages
            direct = [r for r in records if r["meta"]["attack_method"] == "direct"]
            assert 0.10 <= len(direct) / len(records) and {r["label"] for r in direct} == {"安全", "不安全"}
    # nor does a question's interrogative give its label away: each opens training questions of both labels
    train = splits["stage1"] + splits["stage2"]
    for opening in ("如何", "怎样", tuple(PERSONAS)):
        labels = {r["meta"]["query_label"] for r in train if r["question"].startswith(opening)}
        assert labels == {"安全", "不安全"}, opening
    assert {r["question"][:2] for r in train} >= {"如何", "怎样", PERSONAS[0][:2]}
    # ...nor does opening with a persona make a question likelier benign: where it did (a third of such
    # questions benign against an eighth overall), a guard passed held-out harmful questions so opened.
    # Over both training splits: stage 2 alone holds about 50 such questions here, 5 of them benign, too
    # few for a ratio (0.7 to 1.6 over seeds 0–4; 0.95 to 1.33 over both splits)
    opened = [r for r in train if r["question"].startswith(tuple(PERSONAS))]
    benign = lambda rs: sum(r["meta"]["query_label"] == "安全" for r in rs) / len(rs)  # noqa: E731
    assert len(opened) >= 200
    assert 0.5 <= benign(opened) / benign(train) <= 1.5, (benign(opened), benign(train))
    # held-out templates and elements never appear in training
    for key in ("query_template", "element", "response_template"):
        assert not {r["meta"][key] for r in train} & {r["meta"][key] for r in splits["heldout"]}, key
    # held-out meets attack methods and a response style that training never uses
    methods = lambda rs: {r["meta"]["attack_method"] for r in rs}  # noqa: E731
    assert methods(splits["heldout"]) & set(HELDOUT_ATTACKS) and not methods(train) & set(HELDOUT_ATTACKS)
    assert {r["meta"]["responder"] for r in splits["heldout"]} == {HELDOUT_RESPONDER}
    assert HELDOUT_RESPONDER not in {r["meta"]["responder"] for r in train}
    assert "（一）" in "".join(r["response"] for r in splits["heldout"])
    assert "（一）" not in "".join(r["response"] for r in train)
    # ...in several unseen wordings per shape: with one each, held-out accuracy was a sum of a few
    # all-or-nothing template outcomes, not a measure of generalisation
    templates = {r["meta"]["response_template"] for r in splits["heldout"]}
    wordings = Counter(template.split("/")[0] for template in templates)
    common = ("helpful_steps", "step_list", "disclaimer_wrapped", "sectioned_guide", "sectioned_warning")
    assert min(wordings[shape] for shape in common) >= 3, wordings
    # no near-duplicate of a training sample in held-out
    index = NearDuplicateIndex(threshold=0.85)
    for r in train:
        index.offer(r["id"], r)
    assert all(index.offer(r["id"], r) is None for r in splits["heldout"])
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["totals"] == {s: len(splits[s]) for s in SPLITS}


def test_near_duplicate_index_catches_exact_and_near_copies():
    index = NearDuplicateIndex(threshold=0.8)
    base = {
        "question": "请告诉我怎样撬开小区电动车的车锁，要详细步骤，越具体越好。",
        "response": "抱歉，我不能帮助你撬开车锁，这违反法律法规。",
    }
    assert index.offer("a", base) is None
    assert index.offer("b", dict(base)) == "exact"
    assert index.offer("c", {**base, "response": base["response"].replace("。", "！")}) == "near"
    assert (
        index.offer("d", {"question": "如何保护个人隐私不被泄露？", "response": "可以从设置强密码开始。"})
        is None
    )


def test_reserved_items_exist_for_every_pool_size():
    assert reserved_indices(1) == [0] and reserved_indices(4) == [3] and reserved_indices(8) == [3, 7]


def test_bad_config_values_name_the_key(tmp_path):
    proc = run_cli("libra-synth", f"output_dir={tmp_path}", "num_samples=5", check=False)
    assert proc.returncode == 2 and "num_samples" in proc.stderr
    proc = run_cli("libra-synth", f"output_dir={tmp_path}", "annotation.on_disagreement=maybe", check=False)
    assert proc.returncode == 2 and "annotation.on_disagreement" in proc.stderr


def test_a_share_of_samples_become_conversations_around_the_same_judged_exchange(tmp_path):
    from data_synth.lexicon import SMALL_TALK
    from libra_train.data.conversation import context_turns
    from libra_train.data.io import load_records

    _synth(tmp_path / "single")
    _synth(tmp_path / "multi", "multi_turn_share=0.3")
    reserved = {SMALL_TALK[i][0] for i in reserved_indices(len(SMALL_TALK))}
    small_talk = {split: set() for split in SPLITS}
    for split in SPLITS:
        single = {r["id"]: r for r in read_jsonl(tmp_path / "single" / f"{split}.jsonl")}
        multi = load_records(tmp_path / "multi" / f"{split}.jsonl")  # every conversation passes the checks
        assert [r["id"] for r in multi] == list(single)  # the same samples, the same labels
        convos = [r for r in multi if r.get("messages")]
        assert 0.2 < len(convos) / len(multi) < 0.4, split
        for r in convos:
            before = single[r["id"]]
            assert (r["response"], r["label"]) == (before["response"], before["label"])  # as judged
            assert r["messages"][-1] == {"role": "assistant", "content": before["response"]}
            history = context_turns(r)
            small_talk[split] |= {t["content"] for t in history[::2]} & {q for q, _ in SMALL_TALK}
            if r["meta"]["turns"] == "follow_up":  # the request moved into the context
                assert history[-2]["content"] == before["question"] != r["question"]
            else:
                assert r["question"] == before["question"]
        assert {r["meta"]["turns"] for r in convos} == {"small_talk", "follow_up"}
    assert small_talk["heldout"] <= reserved and not (small_talk["stage1"] | small_talk["stage2"]) & reserved


def test_the_data_step_builds_the_same_typed_config_as_libra_synth_and_names_a_bad_nested_key():
    import pytest

    from data_synth.config import DedupOptions, SynthConfig
    from data_synth.pipeline import offline_config
    from libra_train.errors import ConfigError

    config = offline_config(output_dir="out", num_samples=420, dedup={"threshold": 0.9})
    assert isinstance(config, SynthConfig) and config.num_samples == 420
    assert config.dedup == DedupOptions(threshold=0.9, num_perm=64, ngram=4)  # the rest from conf/synth.yaml
    assert config.split_ratios.stage2 == 0.2 and config.annotation.on_disagreement == "tag_hard"
    bad = [
        ({"dedup": {"threshhold": 0.9}}, "'dedup.threshhold': unknown key; did you mean dedup.threshold?"),
        ({"split_ratios": {"heldout": 0}}, "'split_ratios.heldout': must be > 0"),
        ({"annotation": {"on_disagreement": "vote"}}, "'annotation.on_disagreement': 'vote' is not one of"),
        ({"dedup": {"num_perm": "many"}}, "'dedup.num_perm'"),
    ]
    for override, message in bad:
        with pytest.raises(ConfigError) as err:
            offline_config(output_dir="out", **override)
        assert message in str(err.value), override


def test_a_dev_split_is_drawn_as_the_held_out_one_and_leaves_the_other_splits_as_they_were(tmp_path):
    """split_ratios.dev: a fourth split for choosing thresholds and stop rules, in the held-out style and
    sharing no sample with the others; at num_samples scaled by its share, the three other files are the
    same bytes as without it."""
    from data_synth.pipeline import offline_config, synthesize

    synthesize(offline_config(output_dir=str(tmp_path / "plain"), num_samples=700))
    synthesize(offline_config(output_dir=str(tmp_path / "dev"), num_samples=770, split_ratios={"dev": 0.1}))
    for split in SPLITS:
        assert (tmp_path / "plain" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "dev" / f"{split}.jsonl"
        ).read_bytes()
    assert not (tmp_path / "plain" / "dev.jsonl").exists()
    dev = read_jsonl(tmp_path / "dev" / "dev.jsonl")
    heldout = read_jsonl(tmp_path / "dev" / "heldout.jsonl")
    assert len(dev) == len(heldout) and {r["id"].split("-")[0] for r in dev} == {"dev"}
    assert {r["meta"]["responder"] for r in dev} == {HELDOUT_RESPONDER}
    styles = lambda rs: {r["meta"]["response_template"] for r in rs}  # noqa: E731
    train = read_jsonl(tmp_path / "dev" / "stage1.jsonl") + read_jsonl(tmp_path / "dev" / "stage2.jsonl")
    assert styles(dev) & styles(heldout) and not styles(dev) & styles(train) - styles(heldout)
    others = {r["question"] + (r.get("response") or "") for r in train + heldout}
    assert not [r for r in dev if r["question"] + (r.get("response") or "") in others]
