"""The zero-shot baseline runs an existing model through the pipeline's own evaluator, with no training."""

import json

from tests.conftest import TINY_TRAIN, run_cli


def test_zero_shot_scores_a_checkpoint_exactly_as_the_pipeline_did(trained_run, tmp_path):
    checkpoint = trained_run / "stage1_pretrain" / "checkpoint"
    run_dir = tmp_path / "zs"
    data_args = [a for a in TINY_TRAIN if a.startswith(("logger=", "data.prepare."))]
    run_cli(
        "libra-train",
        "experiment=zero_shot",
        f"paths.run_dir={run_dir}",
        "model.build=null",
        f"model.name_or_path={checkpoint}",
        "eval.mode=label",
        *data_args,
    )
    manifest = json.loads((run_dir / "manifest.json").read_text())
    trained = json.loads((trained_run / "manifest.json").read_text())
    assert manifest["stages"] == [] and not (run_dir / "stage1_pretrain").exists()
    # Same seed and size → the same held-out file, and the same evaluator → the same figures.
    assert manifest["eval_before_training"]["heldout"] == trained["stages"][0]["eval"]["heldout"]
    assert "| untrained | heldout |" in (run_dir / "report.md").read_text()


def test_zero_shot_refuses_a_model_built_from_scratch(tmp_path):
    proc = run_cli(
        "libra-train", "experiment=zero_shot", f"paths.run_dir={tmp_path}", "logger=none", check=False
    )
    assert proc.returncode == 2 and "model.build" in proc.stderr and "pretrained backbone" in proc.stderr
