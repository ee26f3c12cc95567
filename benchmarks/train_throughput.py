"""Effective training tokens/s (non-pad tokens) of a libra-train stage against TRL's SFTTrainer with its
own defaults, and against a plain HF `Trainer` that pads every batch to max_length: same tiny model,
data, batch size, max_length, steps and seed, one invocation. Also reports each one's share of pad
tokens. The last line is `ratio_vs_trl_defaults: X.XX` (libra-train stage ÷ TRL defaults).

    python benchmarks/train_throughput.py [--steps 60] [--batch-size 16] [--max-length 384]
        [--task response|both] [--length-buckets K]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from datasets import Dataset
from transformers import Trainer, TrainingArguments, default_data_collator

from data_synth.pipeline import offline_config, synthesize
from libra_train.cli_utils import compose_config
from libra_train.config import RunConfig
from libra_train.data.formats import render_prompt, render_target
from libra_train.data.io import load_records
from libra_train.model import build_tiny, load_model_and_tokenizer
from libra_train.tracking import NullTracker
from libra_train.train.examples import build_examples
from libra_train.train.stage import build_trainer


def pad_share(dataloader, batches: int) -> tuple[float, int]:
    """(pad share, non-pad tokens) over the first `batches` batches the trainer would see."""
    real = total = 0
    for i, batch in enumerate(dataloader):
        if i == batches:
            break
        ids = batch["input_ids"]
        mask = batch.get("attention_mask")
        total += ids.numel()
        real += int(mask.sum()) if mask is not None else ids.numel()
    return 1 - real / total, real


def timed(trainer, name: str, steps: int) -> dict:
    """Train `steps` steps; the wall time, non-pad tokens and pad share of the batches drawn."""
    share, _ = pad_share(trainer.get_train_dataloader(), steps)
    start = time.perf_counter()
    trainer.train()
    took = time.perf_counter() - start
    return {
        "trainer": name,
        "seconds": round(took, 2),
        "non_pad_tokens": trainer.state.num_input_tokens_seen,
        "pad_share": round(share, 3),
    }


def ours(run: RunConfig, records, backbone: str, out: Path, steps: int) -> dict:
    """The stage exactly as libra-train builds it (build_trainer): padded batches (shuffled, or length
    buckets with --length-buckets), completion-only loss, the LM head run on the supervised positions
    only."""
    trainer, _, _, _ = build_trainer(run.stages[0], records, backbone, out, run, NullTracker())
    return timed(trainer, "libra-train stage (build_trainer)", steps)


def trl_defaults(run: RunConfig, records, backbone: str, out: Path, steps: int) -> dict:
    """TRL's SFTTrainer as its documentation starts one: prompt/completion text, SFTConfig's defaults but
    for the batch, length, steps and seed all three arms share, and the weights' precision: SFTConfig
    asks for bf16, which transformers refuses without a GPU, so this arm trains in fp32 as ours does on
    a CPU. Run before `ours`, whose stage points TRL's fused LM head at the supervised positions for the
    rest of the process."""
    from trl import SFTConfig, SFTTrainer

    hp = run.stages[0].train
    model, tokenizer = load_model_and_tokenizer(backbone)
    examples, _ = build_examples(records, tokenizer, run.format, int(hp.max_length), run.seed)
    rows = [{"prompt": e["prompt"], "completion": e["completion"]} for e in examples]  # the stage's views
    args = SFTConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=int(hp.batch_size),
        max_length=int(hp.max_length),
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        seed=run.seed,
        include_num_input_tokens_seen="non_padding",
        bf16=False,
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )
    return timed(trainer, "TRL SFTTrainer, its defaults", steps)


def plain(run: RunConfig, records, backbone: str, out: Path, steps: int) -> dict:
    hp = run.stages[0].train
    model, tokenizer = load_model_and_tokenizer(backbone)
    rows = []
    for e in build_examples(records, tokenizer, run.format, int(hp.max_length), run.seed)[0]:
        prompt = tokenizer(e["prompt"], add_special_tokens=False)["input_ids"]
        target = tokenizer(e["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt + target)[: hp.max_length]
        pad = hp.max_length - len(ids)
        rows.append(
            {
                "input_ids": ids + [tokenizer.pad_token_id] * pad,
                "attention_mask": [1] * len(ids) + [0] * pad,
                "labels": ([-100] * len(prompt) + target)[: len(ids)] + [-100] * pad,
            }
        )
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=int(hp.batch_size),
        learning_rate=float(hp.learning_rate),
        lr_scheduler_type=hp.lr_scheduler,
        report_to=[],
        save_strategy="no",
        logging_steps=10,
        disable_tqdm=True,
        seed=run.seed,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=default_data_collator
    )
    return timed(trainer, "plain HF Trainer, padded to max_length", steps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--task", choices=["response", "both"], default="response", help="format.task")
    parser.add_argument("--length-buckets", type=int, default=0, help="train.length_buckets of our stage")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = compose_config(
            "train",
            overrides=[
                f"paths.run_dir={tmp}",
                "logger=none",
                f"train.max_steps={args.steps}",
                f"train.batch_size={args.batch_size}",
                f"train.max_length={args.max_length}",
                "train.save_steps=100000",
                f"format.task={args.task}",
                f"train.length_buckets={args.length_buckets}",
                "train.logging_steps=10",
            ],
        )
        synthesize(offline_config(output_dir=str(tmp / "data"), num_samples=args.samples))
        records = load_records(tmp / "data" / "stage1.jsonl")
        run = RunConfig.from_hydra(cfg)
        fmt = run.format
        build_tiny(
            [render_prompt(r, None, fmt) + render_target(r, fmt) for r in records],
            tmp / "backbone",
            run.model,
        )
        backbone = str(tmp / "backbone")
        trl = trl_defaults(run, records, backbone, tmp / "trl", args.steps)  # before ours patches TRL
        results = [
            ours(run, records, backbone, tmp / "ours", args.steps),
            plain(run, records, backbone, tmp / "plain", args.steps),
            trl,
        ]
    for r in results:
        r["non_pad_tokens_per_s"] = round(r["non_pad_tokens"] / r["seconds"], 1)
        print(json.dumps(r))
    ours_rate, plain_rate, trl_rate = (r["non_pad_tokens_per_s"] for r in results)
    print(json.dumps({"speedup_vs_plain_padded": round(ours_rate / plain_rate, 2)}))
    print(f"ratio_vs_trl_defaults: {ours_rate / trl_rate:.2f}")


if __name__ == "__main__":
    main()
