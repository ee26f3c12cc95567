"""Samples/s of `label` mode (one forward pass) against `generate` (max_new_tokens=256), same model
and data, one run. Target (issue 3): label at least 20× faster.

    python benchmarks/label_vs_generate.py --model RUN/stage2_sft/checkpoint --data RUN/data/heldout.jsonl [--n 64]
Use --eos-off to make generate run the full 256 tokens (an upper bound for a guard that writes long analyses).
"""

import argparse
import json
import resource
import time

import torch

from libra_train.data.formats import FormatConfig
from libra_train.data.io import load_records
from libra_train.eval.scoring import generate_labels, score_labels
from libra_train.model import load_model_and_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_model_and_tokenizer(args.model)
    model.to(device)
    records = load_records(args.data)[: args.n]
    fmt = FormatConfig()
    score_labels(model, tokenizer, records[:4], fmt)  # warm-up
    start = time.perf_counter()
    scored = score_labels(model, tokenizer, records, fmt, batch_size=args.batch_size)
    label_s = time.perf_counter() - start
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    generated = generate_labels(model, tokenizer, records, fmt, batch_size=args.batch_size, max_new_tokens=256)
    gen_s = time.perf_counter() - start
    new_tokens = sum(len(tokenizer(g["critic"])["input_ids"]) for g in generated) / len(generated)
    agree = sum(s["pred_label"] == g["pred_label"] for s, g in zip(scored, generated)) / len(records)
    result = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "samples": len(records),
              "label_samples_per_s": round(len(records) / label_s, 2),
              "generate_samples_per_s": round(len(records) / gen_s, 3),
              "speedup": round(gen_s / label_s, 1), "mean_generated_tokens": round(new_tokens, 1),
              "label_agreement": round(agree, 3),
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if device == "cuda" else None}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
