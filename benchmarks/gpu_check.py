"""The GPU check's parts (run them all with `bash benchmarks/gpu_check.sh [--dry-run]`):

    python benchmarks/gpu_check.py eval|packing OUT [--dry-run]
    torchrun --nproc_per_node N benchmarks/gpu_check.py zero3 OUT [--dry-run]
    python benchmarks/gpu_check.py table OUT

A Qwen2.5-0.5B-shaped model (its published config, random weights: nothing is downloaded) with Qwen2.5's
real tokenizer. --dry-run runs the same code on a CPU with the qwen2.5-tiny shape and a handful of
samples, so the check cannot rot between GPU machines.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

# Qwen/Qwen2.5-0.5B-Instruct's config.json (the shape; the weights here are random)
QWEN25_05B = dict(
    vocab_size=151936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
)
DRY = dict(
    vocab_size=151646,
    hidden_size=32,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    tie_word_embeddings=True,
)
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense


def _sizes(dry: bool) -> dict:
    if dry:  # small enough for the default test run: the point is that every path still runs
        return {"samples": 8, "new_tokens": 4, "steps": 2, "batch": 2, "max_length": 384}
    return {"samples": 256, "new_tokens": 256, "steps": 30, "batch": 8, "max_length": 1024}


def _backbone(out: Path, dry: bool) -> Path:
    """A random-weight model of the chosen shape with Qwen2.5's tokenizer, saved once per OUT."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from libra_train.qwen_vocab import qwen25_tokenizer

    path = out / ("backbone-dry" if dry else "backbone-qwen2.5-0.5b")
    if not (path / "config.json").exists():
        tokenizer = qwen25_tokenizer()
        torch.manual_seed(0)
        config = Qwen2Config(
            **(DRY if dry else QWEN25_05B),
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=None,
        )
        Qwen2ForCausalLM(config).to(torch.bfloat16 if not dry else torch.float32).save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path


def _records(out: Path, n: int) -> list[dict]:
    from data_synth.pipeline import synthesize_run_data
    from libra_train.data.io import load_records

    data = out / "data"
    if not (data / "stage1.jsonl").exists():
        synthesize_run_data(str(data), num_samples=600 if n > 50 else 120, seed=0)
    return load_records(data / "stage1.jsonl")[:n]


def _attn() -> str:
    import torch
    from transformers.utils import is_flash_attn_2_available

    return "flash_attention_2" if torch.cuda.is_available() and is_flash_attn_2_available() else "sdpa"


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def part_eval(out: Path, dry: bool) -> dict:
    """Label mode (one forward pass) against generate mode (greedy decoding, up to 256 new tokens)."""
    from libra_train.data.formats import FormatConfig
    from libra_train.eval.scoring import generate_labels, score_labels
    from libra_train.model import load_model_and_tokenizer
    from libra_train.runtime.distributed import local_device

    size = _sizes(dry)
    model, tokenizer = load_model_and_tokenizer(str(_backbone(out, dry)), dtype="fp32" if dry else "bf16")
    model.to(local_device())
    records, fmt = _records(out, size["samples"]), FormatConfig()
    rates = {}
    for mode in ("label", "generate"):
        start = time.perf_counter()
        if mode == "label":
            score_labels(model, tokenizer, records, fmt, batch_size=32)
        else:
            generate_labels(model, tokenizer, records, fmt, batch_size=32, max_new_tokens=size["new_tokens"])
        rates[mode] = len(records) / (time.perf_counter() - start)
    return {
        "label_samples_per_s": rates["label"],
        "generate_samples_per_s": rates["generate"],
        "label_over_generate": rates["label"] / rates["generate"],
        "samples": len(records),
    }


def _train(out: Path, dry: bool, overrides: list[str], tag: str) -> dict:
    """A few optimizer steps of a libra-train stage's SFTTrainer; non-pad tokens/s."""
    from datasets import Dataset
    from trl import SFTTrainer

    from libra_train.cli_utils import compose_config
    from libra_train.config import RunConfig
    from libra_train.model import load_model_and_tokenizer
    from libra_train.train.examples import build_examples
    from libra_train.train.stage import sft_args

    size = _sizes(dry)
    backbone = _backbone(out, dry)
    run = RunConfig.from_hydra(
        compose_config(
            "train",
            [
                f"paths.run_dir={out / tag}",
                "logger=none",
                "model=qwen2.5-0.5b",
                f"model.name_or_path={backbone}",
                f"model.attn_implementation={_attn()}",
                f"train.max_steps={size['steps']}",
                f"train.batch_size={size['batch']}",
                f"train.max_length={size['max_length']}",
                "train.save_steps=100000",
                "train.logging_steps=1",
                *overrides,
            ],
        )
    )
    hp = run.stages[0].train
    attn = run.model.attn_implementation
    model, tokenizer = load_model_and_tokenizer(
        str(backbone), dtype=run.model.dtype, attn_implementation=attn
    )
    examples, _ = build_examples(
        _records(out, 10 * size["steps"] * size["batch"]), tokenizer, run.format, hp.max_length
    )
    args = sft_args(hp, out / tag, run)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer
    )
    result = trainer.train()
    tokens, seconds = trainer.state.num_input_tokens_seen, result.metrics["train_runtime"]
    params = sum(getattr(p, "ds_numel", p.numel()) for p in trainer.model.parameters())  # ZeRO-3: whole size
    return {"tokens_per_s": tokens / seconds, "tokens": tokens, "seconds": seconds, "params": params}


def part_packing(out: Path, dry: bool) -> dict:
    packed = _train(out, dry, ["train.packing=true"], "packed")
    padded = _train(out, dry, ["train.packing=false"], "padded")
    return {
        "attention": _attn(),
        "packed_tokens_per_s": packed["tokens_per_s"],
        "padded_tokens_per_s": padded["tokens_per_s"],
        "packed_over_padded": packed["tokens_per_s"] / padded["tokens_per_s"],
    }


def part_zero3(out: Path, dry: bool) -> dict | None:
    import torch

    result = _train(out, dry, ["deepspeed=zero3"], "zero3")
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    n_params = result["params"]
    gpus = max(torch.cuda.device_count(), 1) if torch.cuda.is_available() else 0
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in _device_name()), None)
    mfu = 6 * n_params * result["tokens_per_s"] / (peak * 1e12 * gpus) if peak and gpus else None
    return {
        "ranks": int(os.environ.get("WORLD_SIZE", "1")),
        "tokens_per_s": result["tokens_per_s"],
        "params": n_params,
        "mfu": mfu,
    }


def table(out: Path) -> str:
    parts = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    e, k, z = parts.get("eval", {}), parts.get("packing", {}), parts.get("zero3", {})
    c = parts.get("classify", {})
    vllm = c.get("vllm", {})
    vllm_rate = (
        f"{vllm['requests_per_s']:.1f}" if "requests_per_s" in vllm else f"not run ({vllm.get('error')})"
    )
    mfu = f"{z['mfu']:.1%}" if z.get("mfu") is not None else "n/a (no known peak)"
    rows = [
        f"device: {e.get('device', '?')}   shape: {e.get('shape', '?')}",
        "| check | figure | value |",
        "|---|---|---|",
        f"| label vs generate | label samples/s | {e.get('label_samples_per_s', 0):.1f} |",
        f"| | generate samples/s | {e.get('generate_samples_per_s', 0):.2f} |",
        f"| | label / generate | {e.get('label_over_generate', 0):.1f}× |",
        f"| packing ({k.get('attention', '?')}) vs padded | packed tokens/s "
        f"| {k.get('packed_tokens_per_s', 0):.0f} |",
        f"| | padded tokens/s | {k.get('padded_tokens_per_s', 0):.0f} |",
        f"| | packed / padded | {k.get('packed_over_padded', 0):.2f}× |",
        f"| ZeRO-3 on {z.get('ranks', '?')} ranks | tokens/s | {z.get('tokens_per_s', 0):.0f} |",
        f"| | MFU | {mfu} |",
        f"| serving at 32 clients | libra-serve requests/s | {c.get('libra_serve_requests_per_s', 0):.1f} |",
        f"| | vLLM classify requests/s | {vllm_rate} |",
        f"| | vLLM vs label-mode p(unsafe), max diff | {c.get('vllm_max_abs_diff', 'n/a')} |",
    ]
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    part, out, dry = argv[0], Path(argv[1]), "--dry-run" in argv
    out.mkdir(parents=True, exist_ok=True)
    if part == "table":
        print(table(out))
        return
    result = {"eval": part_eval, "packing": part_packing, "zero3": part_zero3}[part](out, dry)
    if result is not None:
        result.update(device=_device_name(), shape="qwen2.5-tiny (dry run)" if dry else "Qwen2.5-0.5B")
        (out / f"{part}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main(sys.argv[1:])
