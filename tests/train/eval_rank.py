"""One rank of a sharded evaluation, as the pipeline runs it after a stage (for the 2-process tests):
python -m tests.train.eval_rank CHECKPOINT DATA OUT_DIR RUN_DIR TIMEOUT_S, with RANK, WORLD_SIZE and
LIBRA_LAUNCH_ID in the environment."""

import json
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from libra_train.cli_utils import CONF_DIR
from libra_train.config import RunConfig
from libra_train.runtime import distributed as dist
from libra_train.steps import evaluate_checkpoint
from libra_train.tracking import NullTracker


def main(checkpoint: str, data: str, out_dir: str, run_dir: str, timeout_s: str) -> None:
    overrides = [
        f"paths.run_dir={run_dir}",
        "logger=none",
        f"data.eval_sets={{heldout: {data}}}",
        f"distributed.timeout_s={timeout_s}",
        "eval.batch_size=4",
    ]
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        run = RunConfig.from_hydra(compose("train", overrides=overrides))
    dist.set_timeout(run.distributed.timeout_s)
    metrics = evaluate_checkpoint(checkpoint, run, Path(out_dir), NullTracker(), "stage")
    print(json.dumps(metrics["heldout"]["average"]))


if __name__ == "__main__":
    main(*sys.argv[1:])
