"""Every command line the documents show (the README's and docs/' code blocks, the recipes' and
experiment configs' comments) works as written, with the default logger (W&B offline, as on a machine
without a key). Each block is run whole where it fits a CPU, in a folder laid out as a user's checkout
after the quick start; the others (GPUs, the hub, an API key, hours) are composed by Hydra with
`--cfg job`, which refuses an unknown key, group or option as the real command would.

A block the documents add, or change, fails `test_every_documented_block_is_checked` until it is listed
below: a documented command is never left untested."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, REPO, read_jsonl, write_jsonl
from tests.wandb_records import records, run_file

DOCUMENTS = ["README.md", *sorted(glob.glob("docs/*.md", root_dir=REPO))]
COMMENTED = sorted(
    glob.glob("recipes/*.yaml", root_dir=REPO)
    + glob.glob("conf/experiment/*.yaml", root_dir=REPO)
    + glob.glob("conf/data/*.yaml", root_dir=REPO)
)
COMMAND = ("libra-", "export ")


def _clean(line: str) -> str:
    """A documented line as a shell would run it: its trailing comment and optional [parts] left out."""
    line = re.sub(r"\s+#.*$", "", line)
    line = re.sub(r"\s+\(same for .*\)$", "", line)
    line = re.sub(r"\s+\[[^\]]*\]", "", line)
    return re.sub(r"\s+", " ", line).strip()


def _fenced_blocks(text: str) -> list[list[str]]:
    blocks, current, inside = [], [], False
    for line in text.replace("\\\n", " ").splitlines():
        if line.startswith("```"):
            if inside and current:
                blocks.append(current)
            current, inside = [], not inside and line.strip() in ("```bash", "```sh")
        elif inside and line.strip().startswith(COMMAND):
            current.append(_clean(line))
    return blocks


def _comment_blocks(text: str) -> list[list[str]]:
    blocks, current = [], []
    for line in re.sub(r"\\\n#\s*", " ", text).splitlines():
        found = re.match(r"#\s{2,}((?:libra-|export ).*)", line)
        if found:
            current.append(_clean(found.group(1)))
        elif current:
            blocks.append(current)
            current = []
    return blocks + ([current] if current else [])


def documented_blocks() -> dict[str, str]:
    """Each block of documented commands (lines joined by newlines) → where it is documented first."""
    found: dict[str, str] = {}
    for name in DOCUMENTS + COMMENTED:
        text = (REPO / name).read_text(encoding="utf-8")
        for block in _fenced_blocks(text) if name.endswith(".md") else _comment_blocks(text):
            found.setdefault("\n".join(block), name)
    return found


# Blocks run whole on a CPU: they must exit 0 as written, in the workspace below.
COLD_IMPORT = (
    "libra-data import COLDataset/COLDataset/{split}.csv data/cold/{split}.jsonl --text-column TEXT "
    '--label-column label --unsafe-values 1 --safe-values 0 --source "Real Data" --category-column topic'
)
RUN = {
    COLD_IMPORT.format(split="$split"),  # docs/data.md, in a loop over the splits
    COLD_IMPORT.format(split="train"),  # conf/data/cold.yaml ("same for dev.csv, test.csv")
    "export RUN=outputs/quickstart/<timestamp>\nlibra-compare guards=recipes/compare_quickstart.yaml "
    "+data.heldout=$RUN/data/heldout.jsonl output_dir=compare",
    "libra-export checkpoint=outputs/quickstart/<timestamp> output_dir=release\n"
    "libra-export checkpoint=outputs/quickstart/<timestamp> output_dir=release_cls classifier=true\n"
    "libra-infer model=release_cls data=FILE output_dir=inputs mode=prompts",
}
# Run whole too, in the slow suite (a full curriculum on the quick start's settings).
RUN_SLOW = {
    "libra-train data.stage1.path=synth/stage1.jsonl data.stage2.path=mine.jsonl "
    "+data.eval_sets.test=test.jsonl",
}
# Composed only, each for the reason given.
GPU, HUB, LONG, API = "GPUs and a hub backbone", "a hub dataset", "hours on a CPU", "an API endpoint"
COMPOSED = {
    "libra-infer model=Qwen/Qwen2.5-7B-Instruct data=data/libra_test output_dir=preds\n"
    "libra-eval predictions=preds labels=data/libra_test output_dir=metrics": GPU,
    "export OPENAI_API_KEY=...\nlibra-infer model=openai:gpt-4o openai.base_url=https://api.openai.com/v1 "
    "format=libra data=hub:caskcsg/Libra-Test output_dir=preds/gpt-4o": API,
    "libra-compare guards=GUARDS.yaml +data.heldout=heldout.jsonl output_dir=compare": "a user's own guards",
    "libra-compare guards=recipes/compare_libra_test.yaml +data.libra_test=hub:caskcsg/Libra-Test "
    "output_dir=compare/libra_test logger=wandb": GPU,
    "libra-infer model=caskcsg/Libra-Guard-Qwen2.5-7B-Instruct data=hub:caskcsg/Libra-Test format=libra "
    "mode=generate max_new_tokens=256 output_dir=preds/libra-guard-7b\n"
    "libra-eval predictions=preds/libra-guard-7b labels=hub:caskcsg/Libra-Test "
    "output_dir=metrics/libra-guard-7b\n"
    "libra-infer model=caskcsg/Libra-Guard-Qwen2.5-7B-Instruct data=hub:caskcsg/Libra-Test format=libra "
    "mode=label output_dir=preds/libra-guard-7b-label": GPU,
    "export LIBRA_SERVE_API_KEY=…\nlibra-serve model=outputs/quickstart/RUN/stage2_sft/checkpoint": (
        "a server that runs until stopped (tests/serve/ starts one)"
    ),
    "libra-synth output_dir=data/synth num_samples=200000": LONG,
    "libra-train experiment=cold data.cold_dir=data/cold\n"
    "libra-train data=cold data.cold_dir=data/cold": LONG,
    "libra-train data=cold data.cold_dir=data/cold ensemble.members=3 ensemble.parallel=3\n"
    "libra-infer model=outputs/<experiment>/<time>/ensemble/checkpoint data=data/cold/test.jsonl "
    "output_dir=preds": LONG,
    "libra-train -m +sweep=critic_position experiment=quickstart_small\n"
    "libra-report outputs/quickstart_small/multirun_<time>\n"
    "libra-report outputs/quickstart_small/multirun_<time> --baseline critic=rear\n"
    "libra-report outputs/quickstart_small/multirun_<time> --wandb": LONG,
    "libra-train experiment=jade data.jade_dir=DIR": "JADE's CSV, which a clone does not hold",
    "export OPENAI_API_KEY=…\nlibra-synth output_dir=data/synth backend=openai "
    "openai.base_url=http://127.0.0.1:8000/v1 openai.model=Qwen2.5-72B-Instruct openai.concurrency=16": API,
    "libra-export checkpoint=PATH output_dir=DIR": "a synopsis; README's release lines run it",
    "libra-train experiment=cold data.cold_dir=data/cold": LONG,
    "libra-train curriculum=zero_shot model=qwen2.5-7b data=libra_test format=libra eval.mode=generate": GPU,
    "libra-train experiment=cold_tune data.cold_dir=data/cold": LONG,
    "libra-train experiment=zero_shot model.build=null model.name_or_path=/path/to/any/causal-lm": GPU,
}


def test_every_documented_block_is_checked():
    found = documented_blocks()
    unchecked = {
        block: where for block, where in found.items() if block not in RUN | RUN_SLOW | set(COMPOSED)
    }
    assert not unchecked, f"documented commands no test runs or composes: {unchecked}"
    gone = (RUN | RUN_SLOW | set(COMPOSED)) - set(found)
    assert not gone, f"listed here but no longer documented: {gone}"


PLACEHOLDERS = {
    "<timestamp>": "run",
    "quickstart/RUN/": "quickstart/run/",
    "<experiment>/<time>": "quickstart/run",
    "=FILE": "=data.jsonl",
}


def _as_run(block: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        block = block.replace(placeholder, value)
    return block


def _shell(script: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "WANDB_MODE": "offline", "HOME": str(cwd)}
    env.pop("WANDB_API_KEY", None)
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


COLD_CSV = ",split,topic,label,TEXT\n" + "".join(
    f"{i},x,{('race', 'gender', 'region')[i % 3]},{i % 2},第{i}条评论{'真讨厌' if i % 2 else '挺好的'}\n"
    for i in range(12)
)


@pytest.fixture(scope="module")
def workspace(trained_run, tmp_path_factory) -> Path:
    """A user's checkout after the quick start: recipes/, the run under outputs/quickstart/, COLD's
    CSVs where docs/data.md expects them, a data file, and the files the README's training line names."""
    ws = tmp_path_factory.mktemp("checkout")
    (ws / "recipes").symlink_to(REPO / "recipes")
    (ws / "outputs" / "quickstart").mkdir(parents=True)
    (ws / "outputs" / "quickstart" / "run").symlink_to(trained_run)
    cold = ws / "COLDataset" / "COLDataset"
    cold.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (cold / f"{split}.csv").write_text("\ufeff" + COLD_CSV, encoding="utf-8")
    held = read_jsonl(trained_run / "data" / "heldout.jsonl")
    write_jsonl(ws / "data.jsonl", held[:12])
    (ws / "synth").mkdir()
    write_jsonl(ws / "synth" / "stage1.jsonl", read_jsonl(trained_run / "data" / "stage1.jsonl")[:96])
    write_jsonl(ws / "mine.jsonl", [{**r, "meta": {}} for r in held[:24]])  # no prompt labels: a user's
    write_jsonl(ws / "test.jsonl", held[24:48])
    return ws


@pytest.mark.parametrize("block", sorted(COMPOSED), ids=lambda b: b.split("\n")[-1][:60])
def test_a_documented_command_that_needs_more_than_a_cpu_composes(block, tmp_path):
    lines = [
        line.replace("-m ", "") if line.startswith("libra-train") else line for line in block.split("\n")
    ]
    script = "\n".join(
        f"{line} --cfg job >/dev/null" if line.startswith("libra-") and "libra-report" not in line
        else f"{line.split()[0]} --help >/dev/null" if line.startswith("libra-") else line
        for line in lines
    )  # fmt: skip
    done = _shell(_as_run(script), tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_the_cold_import_lines_run_as_written(workspace):
    loop = "for split in train dev test; do\n" + COLD_IMPORT.format(split="$split") + "\ndone"
    for script in (loop, COLD_IMPORT.format(split="train")):
        done = _shell(script, workspace)
        assert done.returncode == 0, done.stderr[-2000:]
    rows = read_jsonl(workspace / "data" / "cold" / "test.jsonl")
    assert len(rows) == 12 and {r["label"] for r in rows} == {"安全", "不安全"}


def test_the_quick_start_comparison_runs_as_written(workspace):
    (block,) = [b for b in RUN if "compare_quickstart" in b]
    done = _shell(_as_run(block), workspace)
    assert done.returncode == 0, done.stderr[-2000:]
    board = json.loads((workspace / "compare" / "leaderboard.json").read_text())
    assert [r["guard"] for r in board] == ["untrained", "stage1", "stage2", "stage2-generate"]
    assert not [r for r in board if "error" in r]


@pytest.mark.slow
def test_the_release_lines_run_as_written(workspace):
    (block,) = [b for b in RUN if b.startswith("libra-export")]
    done = _shell(_as_run(block), workspace)
    assert done.returncode == 0, done.stderr[-2000:]
    inputs = read_jsonl(workspace / "inputs" / "prompts.jsonl")
    assert len(inputs) == 12  # the shared guard judges responses (format.task=response): one input each
    assert (workspace / "release" / "model.safetensors").is_file()


@pytest.mark.slow  # a whole curriculum on the quick start's settings (about two minutes on one thread)
def test_the_readme_training_line_runs_with_two_eval_sets_and_logs_both_to_wandb(workspace):
    (block,) = RUN_SLOW
    done = _shell(block, workspace, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = [p for p in (workspace / "outputs" / "quickstart").iterdir() if p.name != "run"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert [set(s["eval"]) for s in manifest["stages"]] == [{"heldout", "test"}] * 2
    (wandb_run,) = (run / "wandb").glob("offline-run-*")
    logged = [r.artifact for r in records(run_file(wandb_run)) if r.WhichOneof("record_type") == "artifact"]
    predictions = {
        a.name: sorted(c.path for c in a.manifest.contents) for a in logged if a.type == "predictions"
    }
    both = ["heldout/predictions.jsonl", "test/predictions.jsonl"]
    assert predictions == {"predictions-stage1_pretrain": both, "predictions-stage2_sft": both}
    again = _shell(block.replace("libra-train", f"libra-train paths.run_dir={run}"), workspace)
    assert again.returncode == 0, again.stderr[-3000:]  # a rerun on the finished run logs them again


def test_the_folders_the_readmes_commands_write_are_ignored_by_git():
    for folder in ("outputs", "compare", "release", "release_cls", "inputs", "preds", "metrics"):
        done = subprocess.run(["git", "check-ignore", "-q", f"{folder}/x"], cwd=REPO)
        assert done.returncode == 0, f"{folder}/ is not in .gitignore"
