"""Hard-sample selection: exact picks on a pool with known scores; libra-mine and `select: hard` for real."""

import json
import random
from pathlib import Path

import pytest

from libra_train.command_config import MineConfig
from libra_train.config_groups import SelectionConfig
from libra_train.data.formats import FormatConfig
from libra_train.data.io import load_records
from libra_train.errors import ConfigError
from libra_train.train.selection import select
from tests.conftest import TINY_TRAIN, read_jsonl, run_cli, run_config, sample, write_jsonl

SAFE, UNSAFE = "安全", "不安全"


def selection_config(options: dict) -> SelectionConfig:
    """A selection as libra-mine's command line gives it (its top-level keys), checked at start-up."""
    return _mine(**options).selection


def _mine(**options) -> MineConfig:
    return MineConfig.from_hydra({"pool": "pool.jsonl", "model": "guard", "output": "out.jsonl", **options})


def _pool():
    """24 samples over 2 categories × 2 labels: 4 misclassified, 4 correct but within 0.1 of 0.5, 16 easy."""
    pool, scores = [], {}
    for i in range(24):
        label = UNSAFE if i % 2 else SAFE
        record = {**sample(f"s{i:02d}", label=label), "category_name": "A" if i % 4 < 2 else "B"}
        right = 0.98 if label == UNSAFE else 0.02
        if i < 4:  # misclassified
            p = 0.1 if label == UNSAFE else 0.9
        elif i < 8:  # low margin, right side
            p = 0.55 if label == UNSAFE else 0.45
        else:
            p = right
        pool.append(record)
        scores[record["id"]] = [p]
    return pool, scores


MISCLASSIFIED = {f"s{i:02d}" for i in range(4)}
LOW_MARGIN = {f"s{i:02d}" for i in range(4, 8)}


def test_selects_exactly_the_hard_samples_in_the_requested_mix():
    pool, scores = _pool()
    chosen, summary = select(pool, scores, SelectionConfig(budget=10, easy_share=0.2, margin=0.1))
    hard = {r["id"] for r in chosen if r["meta"]["difficulty"] == "hard"}
    easy = [r for r in chosen if r["meta"]["difficulty"] == "easy"]
    assert hard == MISCLASSIFIED | LOW_MARGIN and len(easy) == 2
    assert summary["hard"] == 8 and summary["easy"] == 2 and summary["reasons"]["misclassified"] == 4
    assert len({(r["label"], r["category_name"]) for r in easy}) == 2  # easy ones from different cells
    first = next(r for r in chosen if r["id"] == "s00")["meta"]["selection"]
    assert first == {"p_unsafe": 0.9, "per_guard": [0.9], "reasons": ["misclassified"], "threshold": 0.5}
    # Deterministic whatever the pool order.
    shuffled = pool[:]
    random.Random(3).shuffle(shuffled)
    again, _ = select(shuffled, scores, SelectionConfig(budget=10, easy_share=0.2, margin=0.1))
    assert sorted((r["id"], r["meta"]["difficulty"]) for r in again) == sorted(
        (r["id"], r["meta"]["difficulty"]) for r in chosen
    )


def test_a_guard_is_judged_at_its_own_threshold_not_at_one_half():
    pool, scores = _pool()
    # At 0.95 every unsafe sample but the confident ones (0.98) is called safe, so the low-margin
    # unsafe ones (0.55) become misclassified too; the safe ones at 0.9 are now right.
    cfg = SelectionConfig(budget=4, easy_share=0.0, criteria=("misclassified",))
    chosen, _ = select(pool, scores, cfg, thresholds=[0.95])
    unsafe_low = {f"s{i:02d}" for i in range(4, 8) if i % 2}
    unsafe_wrong = {f"s{i:02d}" for i in range(4) if i % 2}
    hard = [r for r in chosen if r["meta"]["difficulty"] == "hard"]
    assert {r["id"] for r in hard} == unsafe_low | unsafe_wrong
    assert {r["meta"]["selection"]["threshold"] for r in hard} == {0.95}


def test_criteria_budget_shortfall_and_guard_disagreement():
    pool, scores = _pool()
    only_wrong, _ = select(
        pool, scores, SelectionConfig(budget=4, easy_share=0.0, criteria=("misclassified",))
    )
    assert {r["id"] for r in only_wrong} == MISCLASSIFIED
    all_hard, summary = select(pool, scores, SelectionConfig(budget=None, easy_share=0.2))
    assert summary["hard"] == 8 and summary["easy"] == 2 and len(all_hard) == 10
    short, summary = select(pool, scores, SelectionConfig(budget=20, easy_share=0.0))
    assert (
        len(short) == 20 and summary["hard"] == 8 and summary["wanted_hard"] == 20 and summary["easy"] == 12
    )
    two_guards = {k: v + [0.9 if k == "s10" else v[0]] for k, v in scores.items()}  # guard 2 flips s10 only
    chosen, _ = select(
        pool, two_guards, SelectionConfig(budget=9, easy_share=0.0, criteria=("disagreement",))
    )
    assert [r["id"] for r in chosen if r["meta"]["difficulty"] == "hard"] == ["s10"]


def test_several_guards_are_judged_by_their_mean():
    # first guard alone: a misclassified; max: b misclassified; mean: only c misclassified
    pool = [
        {**sample(k, label=label), "category_name": "A"}
        for k, label in (("a", UNSAFE), ("b", SAFE), ("c", UNSAFE))
    ]
    scores = {"a": [0.3, 0.9], "b": [0.1, 0.7], "c": [0.45, 0.35]}
    cfg = SelectionConfig(budget=None, easy_share=0.0, margin=0.05, criteria=("misclassified", "low_margin"))
    chosen, summary = select(pool, scores, cfg)
    assert [r["id"] for r in chosen] == ["c"] and summary["hard_in_pool"] == 1
    assert chosen[0]["meta"]["selection"]["p_unsafe"] == pytest.approx(0.4)


def test_with_no_budget_the_easy_share_is_of_the_whole_chosen_set():
    pool, scores = _pool()  # 8 hard, 16 easy
    chosen, summary = select(pool, scores, SelectionConfig(budget=None, easy_share=0.6))
    # 8 hard are 40% of the set, so 12 easy make up the other 60%
    assert (summary["hard"], summary["easy"], len(chosen)) == (8, 12, 20)


def test_the_hardest_come_first_wrong_then_closest_to_the_boundary():
    pool, scores = _pool()
    chosen, _ = select(pool, scores, SelectionConfig(budget=4, easy_share=0.0))
    assert {r["id"] for r in chosen} == MISCLASSIFIED  # each cell holds one wrong and one low-margin sample
    cell = [{**sample(k, label=UNSAFE), "category_name": "A"} for k in ("far", "near", "wrong")]
    scores = {"far": [0.58], "near": [0.52], "wrong": [0.2]}
    chosen, _ = select(cell, scores, SelectionConfig(budget=2, easy_share=0.0, margin=0.1))
    assert [r["id"] for r in chosen] == ["near", "wrong"]


def test_bad_selection_values_name_the_key():
    for kwargs, key in (
        ({"easy_share": 1.0}, "easy_share"),
        ({"margin": 0.0}, "margin"),
        ({"budget": 0}, "budget"),
        ({"criteria": ["loud"]}, "criteria"),
    ):
        with pytest.raises(ConfigError, match=key):
            selection_config(kwargs)
    pool, scores = _pool()
    with pytest.raises(ConfigError, match="no score"):
        select(pool, {k: v for k, v in scores.items() if k != "s05"}, SelectionConfig())


def test_libra_mine_on_a_trained_guard(trained_run, tmp_path):
    guard = trained_run / "stage1_pretrain" / "checkpoint"
    other = trained_run / "stage2_sft" / "checkpoint"
    out = tmp_path / "hard.jsonl"
    proc = run_cli(
        "libra-mine",
        f"pool={trained_run / 'data' / 'stage2.jsonl'}",
        f"model=[{guard},{other}]",
        f"output={out}",
        "budget=30",
        "easy_share=0.5",
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    chosen = read_jsonl(out)
    assert len(chosen) == 30 == summary["chosen"] and summary["guards"] == [str(guard), str(other)]
    assert all(
        len(r["meta"]["selection"]["per_guard"]) == 2 and r["meta"]["difficulty"] in ("hard", "easy")
        for r in chosen
    )
    for r in chosen:  # two different guards: each sample is judged by their mean
        per_guard = r["meta"]["selection"]["per_guard"]
        assert r["meta"]["selection"]["p_unsafe"] == pytest.approx(sum(per_guard) / 2)
    assert any(abs(a - b) > 1e-3 for a, b in (r["meta"]["selection"]["per_guard"] for r in chosen))
    assert len(read_jsonl(tmp_path / "hard.jsonl.scores" / "guard-0.jsonl")) == summary["pool"]
    bad = run_cli("libra-mine", f"pool={tmp_path}/none.jsonl", f"model={guard}", f"output={out}", check=False)
    assert bad.returncode == 2 and "none.jsonl" in bad.stderr


@pytest.mark.slow  # over the CI budget; select_samples's path is in test_libra_mine_on_a_trained_guard
def test_curriculum_selects_hard_samples_between_stages(tmp_path):
    run_dir = tmp_path / "run"
    args = [a for a in TINY_TRAIN if not a.startswith(("train.max_steps", "eval.before"))]
    run_cli(
        "libra-train",
        f"paths.run_dir={run_dir}",
        "curriculum=two_stage_hard",
        "+curriculum.stages.1.budget=40",
        "train.max_steps=12",
        "eval.before_training=false",
        "+curriculum.stages.1.learning_rate=1e-3",
        "+curriculum.stages.1.max_steps=9",
        *args,
    )
    stage1, stage2 = json.loads((run_dir / "manifest.json").read_text())["stages"]
    # each stage's own hyperparameters reached its Trainer
    assert (stage1["train"]["args"]["learning_rate"], stage1["train"]["args"]["max_steps"]) == (3e-3, 12)
    assert (stage2["train"]["args"]["learning_rate"], stage2["train"]["args"]["max_steps"]) == (1e-3, 9)
    assert stage2["train"]["steps"] == 9
    assert stage2["selection"]["chosen"] == 40 and stage2["selection"]["guards"] == [
        str(run_dir / "stage1_pretrain" / "checkpoint")
    ]
    assert stage2["train"]["data"]["examples"] == 40
    chosen = load_records(run_dir / "stage2_sft" / "selected.jsonl")
    assert len(chosen) == 40 and all("selection" in r["meta"] for r in chosen)


def test_boundaries_of_the_hard_criteria():
    # p exactly 0.5 is judged safe (the decision is p > 0.5); |p - 0.5| equal to the margin is not low
    pool = [
        {**sample(k, label=label), "category_name": "A"}
        for k, label in (("u_half", UNSAFE), ("s_half", SAFE), ("edge", UNSAFE))
    ]
    scores = {"u_half": [0.5], "s_half": [0.5], "edge": [0.75]}
    cfg = SelectionConfig(budget=None, easy_share=0.0, margin=0.25, criteria=("misclassified", "low_margin"))
    chosen, _ = select(pool, scores, cfg)
    reasons = {r["id"]: r["meta"]["selection"]["reasons"] for r in chosen}
    assert reasons == {"u_half": ["misclassified", "low_margin"], "s_half": ["low_margin"]}
    selection_config({"budget": 1, "margin": 0.5})  # the smallest budget and the widest margin are allowed


def test_the_summary_the_fill_from_the_other_side_and_the_warning(caplog):
    pool, scores = _pool()  # 8 hard, 16 easy
    chosen, summary = select(pool, scores, SelectionConfig(budget=20, easy_share=0.9))
    # wanted 18 easy + 2 hard; the pool has only 16 easy, so 2 more hard fill the budget
    assert summary == {
        "pool": 24,
        "hard_in_pool": 8,
        "chosen": 20,
        "hard": 4,
        "easy": 16,
        "wanted_hard": 2,
        "wanted_easy": 18,
        "reasons": {"misclassified": 4, "low_margin": 0, "disagreement": 0},
        "left_out_as_noise": 0,
    }
    assert "wanted 2 hard + 18 easy, the pool gave 4 + 16" in caplog.text
    assert [r["id"] for r in chosen] == sorted(r["id"] for r in chosen)  # pool order
    caplog.clear()
    select(pool, scores, SelectionConfig(budget=10, easy_share=0.2))
    assert "the pool gave" not in caplog.text


def test_easy_samples_spread_over_cells_and_follow_the_seed():
    pool = [
        {**sample(f"a{i:02d}", label=UNSAFE), "category_name": "A", "meta": {"kept": i}} for i in range(12)
    ]
    pool += [
        {**sample("b00", label=UNSAFE), "category_name": "B"},
        {**sample("w", label=UNSAFE), "category_name": "A"},
    ]
    scores = {r["id"]: [0.99] for r in pool} | {"w": [0.01]}
    picks = {}
    for seed in range(4):
        chosen, _ = select(pool, scores, SelectionConfig(budget=3, easy_share=0.67, seed=seed))
        easy = [r for r in chosen if r["meta"]["difficulty"] == "easy"]
        assert len(easy) == 2 and "b00" in {r["id"] for r in easy}  # the one-sample cell is not crowded out
        picks[seed] = next(r["id"] for r in easy if r["id"] != "b00")
        a = next(r for r in easy if r["id"] != "b00")
        assert a["meta"]["kept"] == int(a["id"][1:])  # the sample's own meta is kept beside the selection's
    assert len(set(picks.values())) > 1  # the seed decides which of cell A's easy samples is taken


def test_selection_config_from_a_command_line_mapping():
    cfg = selection_config(
        {"budget": 7, "easy_share": 0.3, "margin": 0.2, "criteria": ["misclassified"], "seed": 5}
    )
    assert cfg == SelectionConfig(budget=7, easy_share=0.3, margin=0.2, criteria=("misclassified",), seed=5)
    assert selection_config({}) == SelectionConfig()


def test_select_file_scores_the_pool_with_every_guard_in_process(tiny_backbone, tmp_path):
    from hydra import compose, initialize_config_dir
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from libra_train.cli_utils import CLI_CONF_DIR
    from libra_train.data.formats import FormatConfig
    from libra_train.eval.scoring import score_labels
    from libra_train.train.selection import select_file
    from tests.conftest import write_jsonl

    pool = [{**sample(i, label=SAFE if i % 2 else UNSAFE), "category_name": "A"} for i in range(8)]
    pool_file = write_jsonl(tmp_path / "pool.jsonl", pool)
    out = tmp_path / "chosen.jsonl"
    with initialize_config_dir(CLI_CONF_DIR, version_base="1.3"):
        cfg = compose(
            "mine",
            overrides=[
                f"pool={pool_file}",
                f"model=[{tiny_backbone},{tiny_backbone}]",
                f"output={out}",
                "budget=4",
                "easy_share=0.5",
                "batch_size=3",
            ],
        )
    summary = select_file(MineConfig.from_hydra(cfg))
    assert summary["guards"] == [str(tiny_backbone)] * 2 and summary["chosen"] == 4
    assert summary["output"] == str(out) and len(read_jsonl(out)) == 4
    model = AutoModelForCausalLM.from_pretrained(tiny_backbone)
    expected = [
        s["p_unsafe"]
        for s in score_labels(model, AutoTokenizer.from_pretrained(tiny_backbone), pool, FormatConfig())
    ]
    for k in (0, 1):  # each guard's scores are kept, and are the label-mode scores
        kept = read_jsonl(tmp_path / "chosen.jsonl.scores" / f"guard-{k}.jsonl")
        assert [r["p_unsafe"] for r in kept] == pytest.approx(expected, abs=1e-5)
    for r in read_jsonl(out):
        assert r["meta"]["selection"]["per_guard"] == pytest.approx([expected[int(r["id"])]] * 2, abs=1e-5)
    with initialize_config_dir(CLI_CONF_DIR, version_base="1.3"):
        front = compose(
            "mine", overrides=[f"pool={pool_file}", f"model={tiny_backbone}", f"output={out}", "format=front"]
        )
    with pytest.raises(ConfigError, match="label mode") as err:
        select_file(MineConfig.from_hydra(front))
    assert err.value.key == "format"
    with pytest.raises(ConfigError, match="at least one guard"):
        _mine(model=[])


def test_closeness_to_the_boundary_below_one_half_and_seeded_ties():
    cell = [{**sample(k, label=SAFE), "category_name": "A"} for k in ("p45", "p48")]
    chosen, _ = select(cell, {"p45": [0.45], "p48": [0.48]}, SelectionConfig(budget=1, easy_share=0.0))
    assert [r["id"] for r in chosen] == ["p48"]  # 0.02 from the boundary beats 0.05
    twins = [{**sample(f"t{i}", label=SAFE), "category_name": "A"} for i in range(6)]
    scores = {r["id"]: [0.9] for r in twins}  # all equally wrong: only the seed breaks the tie
    picks = {
        select(twins, scores, SelectionConfig(budget=1, easy_share=0.0, seed=s))[0][0]["id"] for s in range(8)
    }
    assert len(picks) > 1


def test_guard_lists_and_error_keys():
    assert _mine(model="/ckpt/a").guards == ["/ckpt/a"] and _mine(model=["/a", "/b"]).guards == ["/a", "/b"]
    with pytest.raises(ConfigError) as err:
        _mine(model=[])
    assert err.value.key == "model"
    pool, scores = _pool()
    with pytest.raises(ConfigError) as err:
        select(pool, {k: v for k, v in scores.items() if k != "s03"}, SelectionConfig())
    assert err.value.key == "scores" and "'s03'" in err.value.message


def test_both_sides_short_fill_the_budget_as_far_as_the_pool_goes():
    pool, scores = _pool()  # 8 hard, 16 easy
    chosen, summary = select(pool, scores, SelectionConfig(budget=30, easy_share=0.9))
    # wanted 27 easy + 3 hard: all 16 easy, then the spare goes to hard (5 more), and the pool is spent
    assert (summary["hard"], summary["easy"], len(chosen)) == (8, 16, 24)


def test_the_curriculum_and_libra_mine_select_through_one_function(monkeypatch, tmp_path):
    """`select: hard` and libra-mine both call selection.select_samples: a second selection path would
    leave this spy uncalled by one of them."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from libra_train import steps
    from libra_train.train import selection

    calls = []

    def spy(pool, guards, fmt, cfg, output, work_dir, batch_size=32, load_opts=None):
        calls.append((guards, Path(output).name, cfg.budget))
        return [], {"chosen": 0}

    monkeypatch.setattr(selection, "select_samples", spy)
    stage = SimpleNamespace(name="s2", guards=None, selection=selection_config({"budget": 3}))
    run = SimpleNamespace(format=FormatConfig(), eval=SimpleNamespace(batch_size=4), model=None)
    steps.select_stage_records(stage, [], "stage1/checkpoint", tmp_path / "s2", run)
    mine = OmegaConf.create(
        {
            "pool": str(write_jsonl(tmp_path / "pool.jsonl", [sample(0)])),
            "model": "g",
            "budget": 5,
            "output": str(tmp_path / "out.jsonl"),
            "batch_size": 2,
            "format": {},
        }
    )
    selection.select_file(MineConfig.from_hydra(mine))
    assert calls == [(["stage1/checkpoint"], "selected.jsonl", 3), (["g"], "out.jsonl", 5)]


def test_a_confidently_wrong_sample_is_left_out_as_a_likely_wrong_label():
    """noise_margin 0.3: s00–s03 are wrong by 0.4 (p 0.9 or 0.1 against 0.5), so they are neither hard nor
    easy; the low-margin four stay hard, and the budget fills from the easy ones."""
    pool, scores = _pool()
    scores["s01"] = [0.3]  # wrong by 0.2 only: still hard
    chosen, summary = select(pool, scores, SelectionConfig(budget=10, easy_share=0.2, noise_margin=0.3))
    ids = {r["id"] for r in chosen}
    assert not ids & {"s00", "s02", "s03"} and {"s01"} | LOW_MARGIN <= ids
    assert (summary["left_out_as_noise"], summary["hard"], summary["easy"], len(chosen)) == (3, 5, 5, 10)
    _, plain = select(pool, scores, SelectionConfig(budget=10, easy_share=0.2))
    assert plain["left_out_as_noise"] == 0 and plain["hard"] == 8
    with pytest.raises(ConfigError, match="noise_margin"):
        selection_config({"noise_margin": 1.0})


def test_a_random_selection_draws_its_budget_over_the_cells_with_no_guard(tmp_path):
    from libra_train.train.selection import select_samples

    pool, _ = _pool()  # 6 in each of the 4 label × category cells
    cfg = SelectionConfig(budget=8, strategy="random", seed=1)
    chosen, summary = select_samples(
        pool, ["never-loaded"], FormatConfig(), cfg, tmp_path / "o.jsonl", tmp_path
    )
    cells = [(r["label"], r["category_name"]) for r in chosen]
    assert len(chosen) == 8 and all(cells.count(c) == 2 for c in set(cells)) and len(set(cells)) == 4
    assert {r["meta"]["difficulty"] for r in chosen} == {"random"} and summary["guards"] == []
    assert [r["id"] for r in chosen] == sorted(r["id"] for r in chosen)  # pool order
    other, _ = select_samples(
        pool, [], FormatConfig(), SelectionConfig(budget=8, strategy="random", seed=2), tmp_path / "p.jsonl",
        tmp_path / "w2",
    )  # fmt: skip
    assert {r["id"] for r in other} != {r["id"] for r in chosen}  # another seed, another draw


def test_a_random_stage_needs_no_guard_and_keeps_its_select_value(tmp_path):
    from libra_train.config import run_mapping

    stage = ["+curriculum.stages.0.select=random", "+curriculum.stages.0.budget=5"]
    run = run_config(tmp_path, "curriculum=pretrain_only", *stage)  # a first stage, with no guard
    assert run.stages[0].selection.strategy == "random"
    (mapped,) = run_mapping(run)["curriculum"]["stages"]
    assert (mapped["select"], mapped["budget"]) == ("random", 5) and "strategy" not in mapped
