"""The data step composes conf/synth.yaml even where Hydra's config store lost synth_defaults after
data_synth was imported: Hydra's joblib launcher hands each job of a sweep the config store of the sweep's
parent process, in which a worker's second job finds no synth_defaults unless it is stored again."""

from hydra.core.config_store import ConfigStore

from data_synth.pipeline import offline_config


def test_offline_config_composes_after_the_config_store_lost_its_defaults():
    repo = ConfigStore.instance().repo
    saved = repo.pop("synth_defaults.yaml")  # as a parent's restored config store lacks it
    try:
        cfg = offline_config(output_dir="unused", cache_dir=None, num_samples=42)
        assert cfg.num_samples == 42 and cfg.taxonomy
    finally:
        repo["synth_defaults.yaml"] = saved
