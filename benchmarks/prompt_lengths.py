"""Prompt lengths under Qwen2.5's real tokenizer: tokens per training example (prompt + target +
<|im_end|>) for each prompt format, on the default synthetic data (3,000 samples, seed 0).

    python benchmarks/prompt_lengths.py [--num-samples 3000]

What it says for max_length: the longest example must fit, or build_examples cuts its conversation.
"""

import argparse
import statistics
import tempfile
import time

from data_synth.pipeline import synthesize_run_data
from libra_train.data.formats import FormatConfig, render_prompt, render_target, task_views
from libra_train.data.io import load_records
from libra_train.qwen_vocab import qwen25_tokenizer

FORMATS = {
    "default (format=rear)": FormatConfig(),
    "format=libra": FormatConfig(prompt="libra"),
    "format=rear, task=both": FormatConfig(task="both"),
    "format=libra, task=both": FormatConfig(prompt="libra", task="both"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-samples", type=int, default=3000)
    args = parser.parse_args()
    tokenizer = qwen25_tokenizer()
    with tempfile.TemporaryDirectory() as out:
        synthesize_run_data(out, num_samples=args.num_samples, seed=0)
        splits = ("stage1", "stage2", "heldout")
        records = [r for split in splits for r in load_records(f"{out}/{split}.jsonl")]
    print(f"{len(records)} samples; tokens per example = prompt + target + <|im_end|>")
    print(f"{'format':<26} {'examples':>8} {'median':>7} {'p95':>6} {'max':>6} {'prompt median':>14}")
    for name, fmt in FORMATS.items():
        start = time.perf_counter()
        full, prompts = [], []
        for record in records:
            for view in task_views(record, fmt.task):
                prompt = render_prompt(view, tokenizer, fmt)
                n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
                n_target = len(tokenizer(render_target(view, fmt), add_special_tokens=False)["input_ids"])
                full.append(n_prompt + n_target + 1)
                prompts.append(n_prompt)
        full.sort()
        p95 = full[int(0.95 * (len(full) - 1))]
        print(
            f"{name:<26} {len(full):>8} {statistics.median(full):>7.0f} {p95:>6} {full[-1]:>6} "
            f"{statistics.median(prompts):>14.0f}   ({time.perf_counter() - start:.1f}s)"
        )


if __name__ == "__main__":
    main()
