"""`libra-synth`: the Hydra entry point for synthetic data (conf/synth.yaml).

libra-synth output_dir=DIR [seed=N] [num_samples=N] [backend=offline|openai|hf]
libra-synth annotate input=FILE output=FILE backend=openai openai.base_url=… openai.model=…
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from libra_train.cli_utils import CONF_DIR, closed_pipe_ok, hydra_command, quiet_libraries


@hydra_command(CONF_DIR, "synth", "data_synth.config:SynthConfig")
def _synth(cfg: DictConfig) -> None:
    from data_synth.config import SynthConfig
    from libra_train.tracking import command_tracker

    config = SynthConfig.from_hydra(cfg)  # checked before the synthesis and its libraries load
    from data_synth.pipeline import synthesize
    from data_synth.stats import print_stats

    quiet_libraries()
    tracker = command_tracker(config, "libra-synth", config.output_dir)
    try:
        summary = synthesize(config)
        tracker.log({f"synth/{split}": n for split, n in summary["totals"].items()})
        files = sorted(Path(config.output_dir).glob("*.jsonl")) + [Path(config.output_dir) / "stats.json"]
        tracker.log_artifact("synthetic-data", "dataset", files)
    finally:
        tracker.finish()
    print_stats(summary)
    print(f"wrote {', '.join(f'{k}={v}' for k, v in summary['totals'].items())} to {config.output_dir}")


@closed_pipe_ok
def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "annotate":
        from data_synth.annotate import annotate_main

        sys.argv.pop(1)
        annotate_main()
        return
    _synth()
