"""What a stage hands the Trainer: batches built by the SFTTrainer's own collator carry the loss on the
target and its end-of-turn token only, and each stage gets its own hyperparameters."""

import pytest

from libra_train.data.formats import FormatConfig, render_prompt, render_target
from libra_train.tracking import NullTracker
from libra_train.train.examples import build_examples
from libra_train.train.stage import build_trainer, sft_args
from tests.conftest import run_config, sample


def _records():
    return [
        sample(i, label="安全" if i % 2 else "不安全", analyze="回答拒绝了请求。" * (i % 3)) for i in range(6)
    ]


def test_collated_labels_cover_exactly_the_target_and_the_end_of_turn(tiny_backbone, tmp_path):
    run = run_config(tmp_path)
    records = _records()
    trainer, tokenizer, _, _ = build_trainer(
        run.stages[0], records, str(tiny_backbone), tmp_path / "s", run, NullTracker()
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(records))])
    fmt = FormatConfig()
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for row, rec in enumerate(records):
        prompt_ids = tokenizer(render_prompt(rec, tokenizer, fmt), add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(render_target(rec, fmt), add_special_tokens=False)["input_ids"] + [end_of_turn]
        ids, labels = batch["input_ids"][row].tolist(), batch["labels"][row].tolist()
        n_prompt, n_target = len(prompt_ids), len(target_ids)
        assert ids[: n_prompt + n_target] == prompt_ids + target_ids
        assert labels[:n_prompt] == [-100] * n_prompt  # nothing of the prompt, system message included
        assert labels[n_prompt : n_prompt + n_target] == target_ids  # every target token and <|im_end|>
        assert set(labels[n_prompt + n_target :]) <= {-100}  # padding


def test_each_stage_gets_its_own_hyperparameters(tmp_path):
    run = run_config(
        tmp_path,
        "train.learning_rate=3e-4",
        "train.batch_size=8",
        "+curriculum.stages.1.learning_rate=5e-5",
        "+curriculum.stages.1.batch_size=2",
        "+curriculum.stages.1.max_steps=7",
    )
    first, second = (sft_args(s.train, tmp_path / s.name, run) for s in run.stages)
    assert (first.learning_rate, first.per_device_train_batch_size, first.max_steps) == (3e-4, 8, -1)
    assert (second.learning_rate, second.per_device_train_batch_size, second.max_steps) == (5e-5, 2, 7)
    assert (
        second.completion_only_loss is True and second.warmup_steps == run.resolved["train"]["warmup_ratio"]
    )


@pytest.mark.parametrize("task, views, missing", [("prompt", 1, 2), ("both", 4, 2), ("response", 3, 0)])
def test_samples_that_cannot_give_a_prompt_view_are_counted(tiny_backbone, task, views, missing):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    records = [sample(1), sample(2, label="安全"), {**sample(3), "meta": {"query_label": "不安全"}}]
    examples, stats = build_examples(records, tokenizer, FormatConfig(task=task), 512)
    assert len(examples) == views and stats["no_prompt_label"] == missing


def test_the_cpu_loss_projects_only_supervised_positions_and_equals_the_full_loss(
    tiny_backbone, tmp_path, monkeypatch
):
    """The stage's loss on a CPU projects through the LM head only the rows a label supervises (the
    prompt is most of every row), and is the same number as cross-entropy over the full logits."""
    import torch
    import trl.trainer.utils as trl_utils

    run = run_config(tmp_path)
    trainer, _, _, _ = build_trainer(
        run.stages[0], _records(), str(tiny_backbone), tmp_path / "s", run, NullTracker()
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(_records()))])
    projected_rows = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting_apply(hidden, *rest):
        projected_rows.append(hidden.shape[0])
        return apply(hidden, *rest)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting_apply)
    model = trainer.model
    loss = trainer.compute_loss(model, dict(batch))
    supervised = int((batch["labels"][:, 1:] != -100).sum())
    assert projected_rows == [supervised] and supervised < batch["labels"][:, 1:].numel() / 4

    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    full = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)), batch["labels"][:, 1:].reshape(-1), ignore_index=-100
    )
    assert loss.item() == pytest.approx(full.item(), rel=1e-5)


@pytest.fixture(scope="module")
def bos_backbones(tiny_backbone, tmp_path_factory):
    """The tiny backbone with a tokenizer that prepends a BOS to plain text, as Llama 3's
    does: one whose chat template leaves the BOS out, and one whose template writes it (as Llama 3's)."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from libra_train.model import CHATML_TEMPLATE

    folders = {}
    for template in ("chatml", "bos_then_chatml"):
        tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
        tokenizer.add_special_tokens({"bos_token": "<|startoftext|>"})
        bos = tokenizer.bos_token_id
        tokenizer._tokenizer.post_processor = TemplateProcessing(
            single="<|startoftext|> $A",
            pair="<|startoftext|> $A $B",
            special_tokens=[("<|startoftext|>", bos)],
        )
        tokenizer.chat_template = ("{{ bos_token }}" if template != "chatml" else "") + CHATML_TEMPLATE
        model = AutoModelForCausalLM.from_pretrained(tiny_backbone)
        model.resize_token_embeddings(len(tokenizer))
        folders[template] = tmp_path_factory.mktemp(template) / "backbone"
        model.save_pretrained(folders[template])
        tokenizer.save_pretrained(folders[template])
    return folders


@pytest.mark.parametrize("template, bos_count", [("chatml", 0), ("bos_then_chatml", 1)])
def test_a_bos_adding_tokenizer_trains_on_the_ids_scoring_reads(bos_backbones, tmp_path, template, bos_count):
    """Training sees each prompt as label-mode scoring (evaluation, libra-serve) does: no BOS the chat
    template does not write, and never two. Left to TRL's own tokenization, every row would open with a
    BOS that scoring never shows."""
    from libra_train.eval.scoring import record_label_query

    run = run_config(tmp_path)
    records = _records()
    trainer, tokenizer, _, _ = build_trainer(
        run.stages[0], records, str(bos_backbones[template]), tmp_path / "s", run, NullTracker()
    )
    bos = tokenizer.bos_token_id
    assert tokenizer("安全")["input_ids"][0] == bos  # the tokenizer does add a BOS to plain text
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(records))])
    for row, rec in enumerate(records):
        context, _, _ = record_label_query(rec, tokenizer, FormatConfig())
        ids = batch["input_ids"][row][batch["attention_mask"][row] == 1].tolist()
        assert ids[: len(context)] == context
        assert ids.count(bos) == bos_count and (bos_count == 0 or ids[0] == bos)
        prompt = render_prompt(rec, tokenizer, FormatConfig())
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        labels = batch["labels"][row].tolist()
        assert set(labels[:n_prompt]) == {-100} and labels[n_prompt] == ids[n_prompt]  # the target's first


def test_a_stage_deals_length_buckets_unless_told_not_to(tiny_backbone, tmp_path):
    labels = ["安全", "不安全"] * 4
    records = [sample(i, label=labels[i], response="回答" * (1 + i * 3)) for i in range(8)]
    batches = {}
    for buckets in (4, 0):  # 4 batches of 2: one megabatch holds all 8 samples
        run = run_config(tmp_path, "train.batch_size=2", f"train.length_buckets={buckets}", "seed=1")
        trainer, _, _, _ = build_trainer(
            run.stages[0], records, str(tiny_backbone), tmp_path / str(buckets), run, NullTracker()
        )
        lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
        batches[buckets] = [sorted(b) for b in trainer.get_train_dataloader().batch_sampler]
    by_length = sorted(range(8), key=lengths.__getitem__)
    pairs = [sorted(by_length[i : i + 2]) for i in range(0, 8, 2)]
    assert sorted(batches[4]) == sorted(pairs)  # neighbours in length share a batch
    assert sorted(batches[0]) != sorted(pairs)  # shuffled: seed 1 happens to mix them
