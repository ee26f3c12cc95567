"""train.early_stopping_set: a stage measures the verdict's loss on an eval set at every checkpoint, keeps
the checkpoint where it was lowest and stops once it has not fallen for early_stopping_patience
checkpoints."""

from safetensors.torch import load_file

from libra_train.data.formats import FormatConfig, render_prompt
from libra_train.tracking import NullTracker
from libra_train.train.examples import label_examples, tokenize_examples
from libra_train.train.stage import train_stage
from tests.conftest import run_config, sample, write_jsonl


def test_the_stopping_examples_end_at_the_label_word_with_no_end_of_turn(tiny_backbone):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    fmt = FormatConfig()
    records = [sample(0, label="不安全", analyze="它教人制毒。"), sample(1, label="安全")]
    examples = label_examples(records, tokenizer, fmt, max_length=512)
    assert [e["completion"] for e in examples] == ["不安全", "安全"]
    assert examples[0]["prompt"] == render_prompt(records[0], tokenizer, fmt) + '{"答案": "'
    ids = tokenize_examples(examples[:1], tokenizer, end_of_turn=False)[0]
    assert tokenizer.decode(ids["input_ids"]).endswith('{"答案": "不安全')
    supervised = [t for t, m in zip(ids["input_ids"], ids["completion_mask"], strict=True) if m]
    assert tokenizer.decode(supervised) == "不安全"  # the verdict's tokens, not the format's


def test_a_stage_keeps_its_lowest_loss_checkpoint_and_stops_when_the_loss_stops_falling(
    tiny_backbone, tmp_path
):
    # Trained to call everything safe and judged on the same texts labelled unsafe: the stopping loss
    # soon stops falling, and the stage ends two checkpoints after its lowest.
    train = [sample(i, label="安全") for i in range(64)]
    stopping = write_jsonl(tmp_path / "dev.jsonl", [sample(i, label="不安全") for i in range(8)])
    run = run_config(
        tmp_path,
        "curriculum=pretrain_only",
        f"+data.eval_sets.dev={stopping}",
        "train.early_stopping_set=dev",
        "train.early_stopping_patience=2",
        "train.max_steps=16",
        "train.save_steps=2",
        "train.batch_size=4",
        "train.learning_rate=3e-3",
        "train.warmup_ratio=0",
    )
    stage_dir = tmp_path / "s"
    record = train_stage(run.stages[0], train, str(tiny_backbone), stage_dir, run, NullTracker())
    stopped = record["early_stopping"]
    steps, losses = zip(*stopped["loss_curve"], strict=True)
    best = min(stopped["loss_curve"], key=lambda point: point[1])
    assert steps == tuple(range(2, best[0] + 2 * 2 + 1, 2))  # every checkpoint, two past the lowest
    assert (stopped["set"], stopped["best_step"], stopped["best_loss"]) == ("dev", *best)
    assert stopped["stopped_early"] and record["steps"] == steps[-1] < 16
    kept = load_file(stage_dir / "checkpoint" / "model.safetensors")
    lowest = load_file(stage_dir / "trainer" / f"checkpoint-{best[0]}" / "model.safetensors")
    last = load_file(stage_dir / "trainer" / f"checkpoint-{steps[-1]}" / "model.safetensors")
    assert all(kept[k].equal(lowest[k]) for k in lowest)
    assert any(not kept[k].equal(last[k]) for k in last)


def test_a_stage_without_a_stopping_set_trains_its_whole_budget(tmp_path):
    run = run_config(tmp_path, "train.early_stopping_set=heldout")
    assert [s.train.early_stopping_set for s in run.stages] == ["heldout", "heldout"]
    plain = run_config(tmp_path)
    assert [s.train.early_stopping_set for s in plain.stages] == [None, None]
