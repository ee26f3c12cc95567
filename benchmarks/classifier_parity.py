"""A classifier export against label mode: p(unsafe) from transformers' text-classification pipeline,
fed the inputs `libra-infer mode=prompts` writes, against libra-infer's label mode on the run's own
checkpoint, on the first N records of a data file.

    libra-export checkpoint=RUN output_dir=/tmp/release_cls classifier=true
    python benchmarks/classifier_parity.py --run RUN --export /tmp/release_cls [--data FILE] [--n 200]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def libra_infer(model, data, out, *extra) -> list[dict]:
    subprocess.run([str(BIN / "libra-infer"), f"model={model}", f"data={data}", f"output_dir={out}", *extra],
                   check=True, capture_output=True)  # fmt: skip
    name = "prompts.jsonl" if "mode=prompts" in extra else "0-of-1.jsonl"
    return [json.loads(line) for line in (Path(out) / name).read_text(encoding="utf-8").splitlines() if line]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True, help="the run directory the export was made from")
    parser.add_argument("--export", required=True, help="its classifier export")
    parser.add_argument("--data", help="default: the run's data/heldout.jsonl")
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    run = Path(args.run)
    lines = Path(args.data or run / "data" / "heldout.jsonl").read_text(encoding="utf-8").splitlines()
    tmp = Path(tempfile.mkdtemp())
    data = tmp / "data.jsonl"
    data.write_text("\n".join(lines[: args.n]) + "\n", encoding="utf-8")
    checkpoint = json.loads((run / "manifest.json").read_text())["stages"][-1]["checkpoint"]
    label_mode = libra_infer(run / checkpoint, data, tmp / "label", "mode=label")
    prompts = libra_infer(args.export, data, tmp / "prompts", "mode=prompts")
    from transformers import pipeline

    classify = pipeline("text-classification", model=args.export, top_k=None, device="cpu")
    start = time.perf_counter()
    scores = classify([p["prompt"] for p in prompts], batch_size=16)
    seconds = time.perf_counter() - start
    threshold = json.loads((Path(args.export) / "config.json").read_text())["guard_threshold"]
    p_cls = [next(s["score"] for s in row if s["label"] == "不安全") for row in scores]
    diffs = [abs(a - b["p_unsafe"]) for a, b in zip(p_cls, label_mode)]
    same = sum(("不安全" if p > threshold else "安全") == b["pred_label"] for p, b in zip(p_cls, label_mode))
    print(f"records {len(label_mode)}; max |p_cls - p_label| {max(diffs):.2e}; "
          f"same label at {threshold:.4g}: {same}/{len(label_mode)}; pipeline {seconds:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
