"""Samples/s and peak memory of `label` mode (one forward pass) against `generate` (max_new_tokens=256),
same model and data, one invocation; each mode runs in its own process so peak memory is its own.
Target: label at least 20× faster than generate.

    python benchmarks/label_vs_generate.py --model RUN/stage2_sft/checkpoint \
        --data RUN/data/heldout.jsonl [--n 96]

Two generate figures: `generate` stops at the guard's end-of-turn token, as libra-infer does;
`generate_full256` ignores it and always writes 256 tokens, the cost when a guard's analyses are long
(Libra's own inference budget).
"""

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time
import torch
from libra_train.data.formats import FormatConfig
from libra_train.data.io import load_records
from libra_train.eval.scoring import generate_labels, score_labels
from libra_train.model import load_model_and_tokenizer

model_path, data, n, batch, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
device = "cuda" if torch.cuda.is_available() else "cpu"
model, tokenizer = load_model_and_tokenizer(model_path)
model.to(device)
if mode == "generate_full256":  # never stop early: 256 new tokens for every sample
    import functools
    model.generate = functools.partial(model.generate, min_new_tokens=256)
records, fmt = load_records(data)[:n], FormatConfig()
run = (lambda recs: score_labels(model, tokenizer, recs, fmt, batch_size=batch)) if mode == "label" else (
    lambda recs: generate_labels(model, tokenizer, recs, fmt, batch_size=batch, max_new_tokens=256))
run(records[:batch])  # warm-up
if device == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
start = time.perf_counter(); out = run(records)
if device == "cuda":
    torch.cuda.synchronize()
took = time.perf_counter() - start
tokens = [len(tokenizer(o["critic"])["input_ids"]) for o in out] if mode != "label" else [1]
print(json.dumps({"mode": mode, "samples": len(records), "seconds": round(took, 3),
                  "samples_per_s": round(len(records) / took, 3),
                  "mean_new_tokens": round(sum(tokens) / len(tokens), 1),
                  "labels": [o["pred_label"] for o in out],
                  "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20)
                  if device == "cuda" else None}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--modes", nargs="+", default=["label", "generate", "generate_full256"])
    args = parser.parse_args()
    results = {}
    for mode in args.modes:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, args.model, args.data, str(args.n), str(args.batch_size), mode],
            capture_output=True,
            text=True,
            check=True,
        )
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    label = results.get("label")
    for mode, r in results.items():
        if label and mode != "label":
            r["label_speedup"] = round(label["samples_per_s"] / r["samples_per_s"], 1)
            r["label_agreement"] = round(
                sum(a == b for a, b in zip(label["labels"], r["labels"])) / len(r["labels"]), 3
            )
    for r in results.values():
        r.pop("labels")
        print(json.dumps(r))


if __name__ == "__main__":
    main()
