"""Where a libra-train stage spends its time on a CPU: torch's profiler over a stage exactly as
`build_trainer` makes it (the quick start's synthetic data and tiny model), with the phases of a step
named: building the examples and tokenizing them, collating a batch, the forward pass and loss (the LM
head inside it), the backward pass, the optimizer, and logging.

    python benchmarks/profile_stage.py [--steps 40] [--samples 1500] [--batch-size 16] [--rows 15]

Prints two markdown tables: each named phase's wall share of the profiled run, then the profiler's top
rows by self CPU time (the operators that do the work).
"""

import argparse
import functools
import tempfile
import time
from pathlib import Path

from torch.profiler import ProfilerActivity, profile, record_function

from data_synth.pipeline import offline_config, synthesize
from libra_train.cli_utils import compose_config
from libra_train.config import RunConfig
from libra_train.data.formats import render_prompt, render_target
from libra_train.data.io import load_records
from libra_train.model import build_tiny
from libra_train.tracking import NullTracker
from libra_train.train.stage import build_trainer

# phase name → (object attribute path on the trainer, method): each call is wrapped in record_function
PHASES = {
    "collate a batch": ("data_collator", "__call__"),
    "forward + loss (LM head on supervised positions)": (None, "compute_loss"),
    "backward": ("accelerator", "backward"),
    "optimizer step": ("optimizer", "step"),
    "log, save, evaluate": (None, "_maybe_log_save_evaluate"),
}


def _named(fn, name: str):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with record_function(name):
            return fn(*args, **kwargs)

    return wrapper


LM_HEAD = "  of which the LM head's forward (TRL's chunked log-probs)"


def name_phases(trainer) -> None:
    """Wrap each phase's method on this trainer (the optimizer's once the Trainer has made it), and TRL's
    fused LM head, which its patched forward looks up by name on every call."""
    import trl.trainer.utils as trl_utils

    class NamedHead:
        apply = staticmethod(_named(trl_utils._ChunkedLogProbFunction.apply, LM_HEAD))

    trl_utils._ChunkedLogProbFunction = NamedHead
    for name, (owner, method) in PHASES.items():
        if owner == "optimizer":
            continue
        target = trainer if owner is None else getattr(trainer, owner)
        if owner == "data_collator":  # a callable object: wrap the attribute the dataloader calls
            trainer.data_collator = _named(target, name)
            continue
        setattr(target, method, _named(getattr(target, method), name))
    create = trainer.create_optimizer

    def create_named(*args, **kwargs):
        optimizer = create(*args, **kwargs)
        optimizer.step = _named(optimizer.step, "optimizer step")
        return optimizer

    trainer.create_optimizer = create_named


def phase_table(prof, wall_ms: float) -> list[str]:
    names = ["build: examples + tokenization", *PHASES]
    names.insert(names.index("backward"), LM_HEAD)
    totals = {e.key: e for e in prof.key_averages() if e.key in names}
    lines = ["| phase | calls | total ms | share of the run |", "|---|---|---|---|"]
    for name in names:
        event = totals.get(name)
        if event is None:
            continue
        ms = event.cpu_time_total / 1000
        lines.append(f"| {name} | {event.count} | {ms:,.0f} | {ms / wall_ms:.1%} |")
    lines.append(f"| whole run (wall) | | {wall_ms:,.0f} | 100% |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rows", type=int, default=15, help="operator rows to print")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        overrides = [f"paths.run_dir={tmp}", "logger=none", f"train.max_steps={args.steps}"]
        overrides += [
            f"train.batch_size={args.batch_size}",
            "train.save_steps=100000",
            "train.logging_steps=10",
        ]
        run = RunConfig.from_hydra(compose_config("train", overrides=overrides))
        synthesize(offline_config(output_dir=str(tmp / "data"), num_samples=args.samples))
        records = load_records(tmp / "data" / "stage1.jsonl")
        texts = [render_prompt(r, None, run.format) + render_target(r, run.format) for r in records]
        build_tiny(texts, tmp / "backbone", run.model)
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            with record_function("build: examples + tokenization"):
                trainer, *_ = build_trainer(
                    run.stages[0], records, str(tmp / "backbone"), tmp / "s", run, NullTracker()
                )
            name_phases(trainer)
            trainer.train()
        wall_ms = (time.perf_counter() - start) * 1000
    print("\n".join(phase_table(prof, wall_ms)))
    print()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
