"""Shared fixtures: small synthetic data and a briefly trained tiny guard, built once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The suite runs two pytest-xdist workers on two cores: one thread per process (each worker, and each
# command it starts) keeps them from oversubscribing the cores (two training tests at once: 52 s
# against 66 s with two threads each). A value set by the caller is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent

# Tests compose the YAML with Hydra directly; each lists NAME_defaults, which the typed configs' modules
# register when imported.
import data_synth.config  # noqa: E402, F401
import libra_train.command_config  # noqa: E402, F401

BIN = Path(sys.executable).parent


def run_cli(name: str, *args: str, check: bool = True, env: dict | None = None, timeout: int = 600):
    """Run one of our console scripts as a user would; returns the CompletedProcess."""
    full_env = {**os.environ, "WANDB_SILENT": "true", **(env or {})}
    full_env.pop("WANDB_API_KEY", None)
    proc = subprocess.run(
        [str(BIN / name), *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{name} {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def read_jsonl(path) -> list[dict]:
    # JSONL separates records by "\n" only; str.splitlines would also split inside text at \x85, \x1e…
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").split("\n") if line.strip()]


def jade_pair(pid, safe, unsafe) -> list[dict]:
    """A question's unsafe and safe answers as an imported JADE pair (meta.pair), in that order."""
    base = {"source": "JADE", "category_name": "", "sub_category_name": "", "analyze": "", "question": "问"}
    return [
        {**base, "id": f"{pid}-unsafe", "response": unsafe, "label": "不安全", "meta": {"pair": pid}},
        {**base, "id": f"{pid}-safe", "response": safe, "label": "安全", "meta": {"pair": pid}},
    ]


def jade_recipe_ids(tmp_path, records) -> list[list[str]]:
    """The record ids each stage of experiment=jade loads when JADE train, stage 1's data and the
    synthetic replay are all one file holding `records`."""
    from libra_train.steps import load_stage_records

    jade = write_jsonl(tmp_path / "train.jsonl", records)
    run = run_config(tmp_path, "experiment=jade", "data.jade_dir=/nowhere", f"data.stage2.path={jade}",
                     f"data.synthetic_stage2.path={jade}", f"data.stage1.path={jade}")  # fmt: skip
    return [[r["id"] for r in load_stage_records(run, stage)] for stage in run.stages]


def write_jsonl(path, records) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def compose_train(tmp_path, *overrides):
    """libra-train's config as Hydra composes it for this command line (run directory tmp_path, no logger)."""
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose("train", overrides=[f"paths.run_dir={tmp_path}", "logger=none", *overrides])


def run_config(tmp_path, *overrides):
    """libra-train's config composed and checked in process, as the command checks it (no run is made)."""
    from libra_train.config import RunConfig

    return RunConfig.from_hydra(compose_train(tmp_path, *overrides))


def sample(i, label="不安全", source="Synthetic Data", **extra) -> dict:
    return {
        "id": i,
        "source": source,
        "category_name": "违法犯罪",
        "sub_category_name": "",
        "question": f"问题{i}",
        "response": f"回答{i}",
        "label": label,
        "analyze": "",
        **extra,
    }


# The shared guard judges responses (format.task=response), where the quick start trains both tasks: its
# tests score responses. 70 steps at 3e-3 a stage: at 50 steps and 6e-3 a guard on today's synthetic data
# (a third of the safe answers to harmful questions refusals) ranked held-out samples at AUPRC 0.45.
# tests/eval/test_judged_task.py and the README's own training line train and check both tasks.
TINY_TRAIN = [
    "logger=none",
    "format.task=response",
    "data.prepare.num_samples=420",
    "train.max_steps=70",
    "train.batch_size=8",
    "train.save_steps=6",
    "train.logging_steps=2",
    "train.learning_rate=3e-3",
    "eval.before_training=true",
]


def _code_key() -> str:
    """A digest of everything a built fixture depends on: the package's code and configs, and this file."""
    import hashlib

    digest = hashlib.sha256()
    files = [REPO / "tests" / "conftest.py"]
    for folder, pattern in (("libra_train", "*.py"), ("data_synth", "*.py"), ("conf", "*.yaml")):
        files += sorted((REPO / folder).rglob(pattern))
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder built by the first test process that needs it and reused by the others: under
    pytest-xdist each worker is a session of its own, CI's slow suite is a session after the default one,
    and the trained guard is the suite's costliest fixture. The folder sits beside pytest's numbered
    temp folders, behind a file lock, named by a digest of the code that builds it (_code_key)."""
    import hashlib
    import shutil

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this run's folder, shared by its workers
    root, key = base.parent, _code_key()  # beside the numbered runs; pytest prunes those, not this
    checkout = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]  # two clones never share or prune
    folder = root / f"libra-shared-{name}-{checkout}-{key}"
    for stale in root.glob(f"libra-shared-{name}-{checkout}-*"):  # built by an older version of the code
        if stale.name != folder.name and not stale.name.endswith(".lock"):
            shutil.rmtree(stale, ignore_errors=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / ".built").exists():
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A full two-stage pipeline on a tiny model: a few steps per stage."""

    def train(folder: Path) -> None:
        run_cli("libra-train", f"paths.run_dir={folder / 'run'}", *TINY_TRAIN)

    return built_once(tmp_path_factory, "trained", train) / "run"


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    """An untrained tiny Qwen2 model and its tokenizer, built in seconds: for tests that need exact
    tensors (scores, label masks), not a guard that has learnt anything."""
    from omegaconf import OmegaConf

    from libra_train.data.formats import FormatConfig, render_prompt, render_target
    from libra_train.model import build_tiny

    fmt = FormatConfig()
    records = [sample(i, label="安全" if i % 2 else "不安全", analyze=f"分析{i}") for i in range(40)]
    texts = [render_prompt(r, None, fmt) + render_target(r, fmt) for r in records]
    model_cfg = OmegaConf.load(REPO / "conf" / "model" / "tiny.yaml")
    model_cfg.update({"vocab_size": 600, "hidden_size": 32, "intermediate_size": 64, "num_layers": 2})
    return build_tiny(texts, tmp_path_factory.mktemp("tiny") / "backbone", model_cfg)


@pytest.fixture(scope="session")
def qwen_backbone(tmp_path_factory) -> Path:
    """An untrained Qwen2-architecture model with Qwen2.5's real tokenizer and chat template
    (model=qwen2.5-tiny), built the way the pipeline builds it."""
    from omegaconf import OmegaConf

    from libra_train.model import build_tiny

    model_cfg = OmegaConf.load(REPO / "conf" / "model" / "qwen2.5-tiny.yaml")
    return build_tiny([], tmp_path_factory.mktemp("qwen") / "backbone", model_cfg)


def pytest_collection_modifyitems(items):
    """The shared trained guard's first user runs first and its other users last: under pytest-xdist the
    worker that trains the guard (two to three minutes) starts at once, while the other runs the tests that
    need no guard, instead of waiting on the lock. Every worker sorts its items alike, as xdist requires."""
    users = [item for item in items if "trained_run" in getattr(item, "fixturenames", ())]
    if users:
        shared = {id(item) for item in users}
        rest = [item for item in items if id(item) not in shared]
        items[:] = [users[0], *rest, *users[1:]]
