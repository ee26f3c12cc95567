"""One curriculum stage: TRL's SFTTrainer with completion-only loss, packing (BFD, padding-free) or
shuffled padded batches, full fine-tuning or LoRA, DeepSpeed through the HF integration, resumable."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import torch
from datasets import Dataset
from transformers.trainer_callback import PrinterCallback
from trl import SFTTrainer

from libra_train.config import RunConfig
from libra_train.config_groups import ModelConfig, StageConfig, TrainConfig
from libra_train.model import load_configured, weights_fingerprint
from libra_train.runtime import distributed as dist
from libra_train.train.batching import BucketedSampler
from libra_train.train.callbacks import StageProgress, TrackerLogs
from libra_train.train.examples import build_examples, label_examples, tokenize_examples
from libra_train.train.lm_head import score_supervised_positions_only

log = logging.getLogger(__name__)


def lora_config(peft_cfg):
    from peft import LoraConfig

    return LoraConfig(
        r=peft_cfg.r,
        lora_alpha=peft_cfg.alpha,
        lora_dropout=peft_cfg.dropout,
        target_modules=list(peft_cfg.target_modules),
        task_type="CAUSAL_LM",
    )


def load_for_training(init_path: str, run: RunConfig):
    """Stage 1 loads the backbone; a later stage loads the previous stage's output. With LoRA, a
    previous adapter is continued (not merged), so the final adapter applies to the original backbone;
    otherwise a LoRA run wraps the loaded weights in a new adapter."""
    continues_adapter = (Path(init_path) / "adapter_config.json").exists()
    model, tokenizer = load_configured(init_path, run.model, trainable_adapter=continues_adapter)
    new_adapter = run.peft.method == "lora" and not continues_adapter
    return model, tokenizer, lora_config(run.peft) if new_adapter else None


def use_packing(setting, model: ModelConfig) -> bool:
    """BFD packing is padding-free: it needs a varlen attention kernel (flash attention). Elsewhere SDPA
    would attend across the whole flattened batch through a block mask, quadratic in the batch's tokens,
    so `auto` packs only where flash attention runs and otherwise pads shuffled batches."""
    if setting != "auto":
        return bool(setting)
    from transformers.utils import is_flash_attn_2_available

    return (
        torch.cuda.is_available()
        and is_flash_attn_2_available()
        and str(model.attn_implementation or "").startswith("flash_attention")
    )


def _cpu_deepspeed_state() -> dict:
    """DeepSpeed on CPU processes (DS_ACCELERATOR=cpu, as in the tests): the HF integration names a
    communication backend only for accelerators, and accelerate then counts one process while
    DeepSpeed sees all of them, so the batch-size check fails. Setting up the shared process state
    with gloo first, and telling the Trainer to use it, gives both the same world. The previous stage's
    state is reset first, as the Trainer itself does when it configures the state."""
    import os

    from accelerate import PartialState
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    try:
        PartialState(backend="gloo")
    finally:
        del os.environ["ACCELERATE_USE_DEEPSPEED"]
    return {"use_configured_state": True}


def sft_args(hp: TrainConfig, stage_dir: Path, run: RunConfig):
    from trl import SFTConfig

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    packing = use_packing(hp.packing, run.model)
    deepspeed_config = run.deepspeed.config if run.deepspeed.stage != "none" else None
    return SFTConfig(
        output_dir=str(stage_dir / "trainer"),
        num_train_epochs=float(hp.epochs),
        max_steps=int(hp.max_steps) if hp.max_steps else -1,
        per_device_train_batch_size=int(hp.batch_size),
        gradient_accumulation_steps=int(hp.grad_accum),
        learning_rate=float(hp.learning_rate),
        lr_scheduler_type=hp.lr_scheduler,
        # transformers ≥ 5 has no warmup_ratio; it reads a warmup_steps below 1 as that share of the steps
        warmup_steps=float(hp.warmup_ratio),
        weight_decay=float(hp.weight_decay),
        label_smoothing_factor=float(hp.label_smoothing),
        max_length=int(hp.max_length),
        packing=packing,
        packing_strategy="bfd",
        # Never the Trainer's length grouping: it orders each megabatch's batches longest first, and on COLD
        # that kept a from-scratch guard at chance (BENCHMARKS.md, "Length buckets"). GuardTrainer deals
        # label-mixed length buckets in a random order instead, where asked (train.length_buckets).
        train_sampling_strategy="random",
        completion_only_loss=True,
        activation_checkpointing=bool(hp.gradient_checkpointing),
        bf16=bf16,
        fp16=False,
        logging_steps=int(hp.logging_steps),
        save_strategy="steps",
        save_steps=int(hp.save_steps),
        save_total_limit=2,
        report_to=[],
        disable_tqdm=True,
        seed=run.seed,
        data_seed=run.seed,
        deepspeed=deepspeed_config,
        accelerator_config=_cpu_deepspeed_state()
        if deepspeed_config and not torch.cuda.is_available()
        else None,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        ddp_timeout=int(run.distributed.timeout_s),  # the process group waits as long as the markers do
        **early_stopping_args(hp),
    )


def early_stopping_args(hp: TrainConfig) -> dict:
    """With train.early_stopping_set the Trainer measures that set's loss on the verdict (the target up to
    its label word) at every checkpoint, and ends on the checkpoint where it was lowest (kept past
    save_total_limit as the best one)."""
    if hp.early_stopping_set is None:
        return {}
    return {
        "eval_strategy": "steps",
        "eval_steps": int(hp.save_steps),
        "per_device_eval_batch_size": int(hp.batch_size),
        "prediction_loss_only": True,
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss",
        "greater_is_better": False,
    }


def early_stopping_data(hp: TrainConfig, run: RunConfig, tokenizer) -> tuple[Dataset | None, list]:
    """The stopping set as the Trainer evaluates it (the stage's prompt and target opening, the label word
    the only supervised tokens), and the callback that stops after early_stopping_patience checkpoints
    without a new lowest loss."""
    if hp.early_stopping_set is None:
        return None, []
    from transformers import EarlyStoppingCallback

    from libra_train.data.io import load_records

    records = load_records(run.data.eval_sets[hp.early_stopping_set])
    examples = label_examples(records, tokenizer, run.format, hp.max_length)
    dataset = Dataset.from_list(tokenize_examples(examples, tokenizer, end_of_turn=False))
    return dataset, [EarlyStoppingCallback(early_stopping_patience=int(hp.early_stopping_patience))]


BUCKET_LABEL = "bucket_label"  # a training example's label, read by GuardTrainer's length buckets


class GuardTrainer(SFTTrainer):
    """TRL's SFTTrainer with length-bucketed batches (`length_buckets` > 0, padded batches only), less the
    model card it writes into every checkpoint: a stage's card would read "fine-tuned version of [None]",
    and writing it asks W&B for a URL that an offline run does not have. The run's own report.md describes
    what was trained."""

    def __init__(self, *args, length_buckets: int = 0, **kwargs):
        self.length_buckets = length_buckets
        super().__init__(*args, **kwargs)
        # each example's label, for buckets that keep the labels mixed; then dropped, as TRL drops what
        # the model does not take
        self.bucket_labels = None
        if BUCKET_LABEL in self.train_dataset.column_names:
            self.bucket_labels = self.train_dataset[BUCKET_LABEL]
            self.train_dataset = self.train_dataset.remove_columns(BUCKET_LABEL)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.length_buckets or self.args.packing or dataset is None:
            return super()._get_train_sampler(train_dataset)
        lengths = [len(ids) for ids in dataset["input_ids"]]
        buckets, batch = self.length_buckets, self.args.train_batch_size
        return BucketedSampler(lengths, batch, buckets, self.args.seed, labels=self.bucket_labels)

    def create_model_card(self, *args, **kwargs) -> None:
        return None

    def _issue_warnings_after_load(self, load_result) -> None:
        """A resumed model with tied embeddings has no lm_head.weight of its own in the checkpoint: tie it
        again, as from_pretrained does, rather than warn that it is missing. Anything else is said."""
        tied = getattr(self.model.config, "tie_word_embeddings", False)
        if tied and list(load_result.missing_keys) == ["lm_head.weight"] and not load_result.unexpected_keys:
            self.model.tie_weights()
            return
        super()._issue_warnings_after_load(load_result)


def build_trainer(
    stage: StageConfig, records: list[dict], init_path: str, stage_dir: Path, run: RunConfig, tracker
):
    """The stage's SFTTrainer over its records, with the data stats and the starting weights' fingerprint.
    Split from train_stage so that the exact batches a stage trains on can be inspected."""
    # The arguments first: under ZeRO-3 they register the DeepSpeed config, so from_pretrained then
    # loads the weights already partitioned across ranks instead of whole on each.
    args = sft_args(stage.train, stage_dir, run)
    model, tokenizer, peft_config = load_for_training(init_path, run)
    init_fingerprint = weights_fingerprint(model.named_parameters())
    examples, data_stats = build_examples(records, tokenizer, run.format, stage.train.max_length, run.seed)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(data_stats.items()) if k != "examples")
    log.info("%s: training on %d examples (%s)", stage.name, len(examples), counts)
    score_supervised_positions_only()
    stopping_set, stopping = early_stopping_data(stage.train, run, tokenizer)
    trainer = GuardTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(
            [
                {**ids, BUCKET_LABEL: e["label"]}
                for ids, e in zip(tokenize_examples(examples, tokenizer), examples, strict=True)
            ]
        ),
        eval_dataset=stopping_set,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[StageProgress(stage.name), TrackerLogs(tracker, stage.name), *stopping],
        length_buckets=stage.train.length_buckets,
    )
    trainer.remove_callback(PrinterCallback)  # StageProgress reports instead of raw dict prints
    return trainer, tokenizer, init_fingerprint, data_stats


# What the manifest records of the arguments the Trainer ran with (after per-stage overrides).
RECORDED_ARGS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_train_epochs",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "label_smoothing_factor",
    "max_length",
    "packing",
)


def train_stage(
    stage: StageConfig, records: list[dict], init_path: str, stage_dir: Path, run: RunConfig, tracker
) -> dict:
    """Train one stage, resuming from its last checkpoint; save the result to stage_dir/checkpoint."""
    trainer, tokenizer, init_fingerprint, data_stats = build_trainer(
        stage, records, init_path, stage_dir, run, tracker
    )
    name = stage.name
    args = trainer.args
    resume = last_complete_checkpoint(Path(args.output_dir), remove_partial=dist.is_main())
    if resume:
        step = checkpoint_step(resume)
        log.info("%s: resuming from %s: step %d, its last checkpoint; any steps the stopped run took after "
                 "it are trained again", name, resume, step)  # fmt: skip
    result = trainer.train(resume_from_checkpoint=resume)
    final = stage_dir / "checkpoint"
    partial = stage_dir / "checkpoint.partial"
    if trainer.is_world_process_zero():
        shutil.rmtree(partial, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()  # no rank may clear the folder while rank 0 writes into it
    trainer.save_model(str(partial))  # gathers ZeRO-3 shards into one 16-bit checkpoint
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(partial))
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)  # atomic: a half-saved checkpoint is never taken as the stage's result
    trainer.accelerator.wait_for_everyone()
    logged = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    losses = [loss for _, loss in logged]
    return {
        "loss_curve": logged[:: max(1, len(logged) // MAX_CURVE_POINTS)],  # report.md's loss chart
        "steps": trainer.state.global_step,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "train_loss": result.training_loss,
        "runtime_s": result.metrics.get("train_runtime"),
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "init_from": str(init_path),
        "init_fingerprint": init_fingerprint,
        "args": {
            k: getattr(getattr(args, k), "value", getattr(args, k)) for k in RECORDED_ARGS
        },  # enums → str
        "data": dict(data_stats),
        **early_stopping_record(trainer, stage.train.early_stopping_set),
    }


def early_stopping_record(trainer, stopping_set: str | None) -> dict:
    """Where the stopping set's loss was measured and which checkpoint the stage kept."""
    if stopping_set is None:
        return {}
    curve = [(e["step"], e["eval_loss"]) for e in trainer.state.log_history if "eval_loss" in e]
    best = trainer.state.best_model_checkpoint
    return {
        "early_stopping": {
            "set": stopping_set,
            "loss_curve": curve,
            "best_step": checkpoint_step(best) if best else None,
            "best_loss": trainer.state.best_metric,
            "stopped_early": trainer.state.global_step < trainer.state.max_steps,
        }
    }


MAX_CURVE_POINTS = 300


def last_complete_checkpoint(trainer_dir: Path, remove_partial: bool) -> str | None:
    """The newest Trainer checkpoint that holds a readable trainer_state.json (the Trainer writes it
    after the weights and optimizer): a resume point. Newer ones without it were being written when a
    run was killed: they are said and skipped, and removed by the one process given remove_partial."""
    steps = {int(m.group(1)): p for p in trainer_dir.glob("checkpoint-*") if (m := CHECKPOINT.match(p.name))}
    for step in sorted(steps, reverse=True):
        if _trainer_state_reads(steps[step]):
            return str(steps[step])
        log.warning("%s was being written when the run stopped: not a resume point", steps[step])
        if remove_partial:
            shutil.rmtree(steps[step], ignore_errors=True)
    return None


CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # the Trainer's own folder names


def checkpoint_step(path: str) -> int:
    """The optimizer step a Trainer checkpoint folder (…/checkpoint-N) was saved at."""
    return int(path.rsplit("-", 1)[-1])


def _trainer_state_reads(path: Path) -> bool:
    import json

    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return True
