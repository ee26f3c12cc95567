"""The GPU check's serving part: the classifier export of the check's backbone served by vLLM's classify
task, against libra-serve on the same guard, both at 32 concurrent clients over the same records; and
vLLM's p(unsafe) against label mode's on the first 64.

    python benchmarks/gpu_classify.py OUT [--dry-run]     (benchmarks/gpu_check.sh runs it)

Without vLLM installed (a CPU dry run) the vLLM half is recorded as not run, with why.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_check  # noqa: E402
import serve_load  # noqa: E402
import vllm_serving  # noqa: E402

BIN = Path(sys.executable).parent
CLIENTS = 32


def export_classifier(backbone: Path, out: Path) -> Path:
    export = out / "classifier-export"
    if not (export / "config.json").exists():
        cmd = [str(BIN / "libra-export"), f"checkpoint={backbone}", f"output_dir={export}", "classifier=true"]
        subprocess.run([*cmd, "format=rear"], check=True, capture_output=True)
    return export


def classifier_inputs(export: Path, records: list[dict], out: Path) -> list[str]:
    data = out / "classify_records.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    cmd = [
        str(BIN / "libra-infer"),
        f"model={export}",
        f"data={data}",
        f"output_dir={out / 'classify_inputs'}",
    ]
    subprocess.run([*cmd, "mode=prompts"], check=True, capture_output=True)
    lines = (out / "classify_inputs" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["prompt"] for line in lines if line]


def run_vllm(export: Path, texts: list[str], requests: int, out: Path) -> dict:
    if importlib.util.find_spec("vllm") is None:
        return {"error": "vLLM is not installed"}
    with vllm_serving.vllm_served(sys.executable, export, "pooling", out / "vllm.log", dtype="auto") as base:
        probs = vllm_serving.classify(base, export, texts[:64])
        bodies = [{"model": str(export), "input": [t]} for t in texts]
        load = asyncio.run(serve_load.level(base, bodies, CLIENTS, requests, 600, path="/classify"))
    return {"requests_per_s": load["throughput_rps"], "p_unsafe": probs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    out, dry = Path(args.out), args.dry_run
    out.mkdir(parents=True, exist_ok=True)
    n = 16 if dry else 512
    backbone = gpu_check._backbone(out, dry)
    records = gpu_check._records(out, n)
    export = export_classifier(backbone, out)
    texts = classifier_inputs(export, records, out)
    options = argparse.Namespace(requests=n, seconds=300, max_wait_ms=5)
    served = serve_load.run_server(str(backbone), 32, serve_load.bodies(records), options)
    at_32 = next(lv for lv in served["levels"] if lv["clients"] == CLIENTS)
    vllm = run_vllm(export, texts, n, out)
    result = {"libra_serve_requests_per_s": at_32["throughput_rps"], "vllm": vllm, "records": n}
    if "p_unsafe" in vllm:
        from libra_train.data.formats import FormatConfig
        from libra_train.eval.scoring import score_labels
        from libra_train.model import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(str(backbone), dtype="fp32")
        want = [r["p_unsafe"] for r in score_labels(model, tokenizer, records[:64], FormatConfig())]
        result["vllm_max_abs_diff"] = max(abs(a - b) for a, b in zip(vllm["p_unsafe"], want))
    (out / "classify.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
