"""Long steps show progress: count, rate and ETA (a bar on a terminal, log lines elsewhere); the hub's
download bars survive quiet_libraries."""

import logging

from libra_train.progress import progress


def test_off_a_terminal_progress_is_a_log_line_every_tenth(caplog):
    caplog.set_level(logging.INFO, logger="libra_train.progress")
    with progress("eval heldout", 50) as advance:
        for _ in range(50):
            advance()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[-1].startswith("eval heldout: 50/50 samples (")
    assert "/s, ETA 0s)" in lines[-1]


def test_quiet_libraries_keeps_the_hubs_download_bars():
    import datasets
    import huggingface_hub

    from libra_train.cli_utils import quiet_libraries

    quiet_libraries()
    assert not huggingface_hub.utils.are_progress_bars_disabled()
    assert datasets.is_progress_bar_enabled() is False


def test_evaluation_after_a_stage_reports_its_progress(tiny_backbone, tmp_path, caplog):
    from libra_train.data.formats import FormatConfig
    from libra_train.eval.evaluator import evaluate
    from libra_train.model import load_model_and_tokenizer
    from tests.conftest import sample

    caplog.set_level(logging.INFO, logger="libra_train.progress")
    model, tokenizer = load_model_and_tokenizer(str(tiny_backbone))
    records = [sample(i, label="安全" if i % 2 else "不安全") for i in range(20)]
    evaluate(model, tokenizer, {"heldout": records}, FormatConfig(), None, tmp_path)
    assert any(r.getMessage().startswith("eval heldout: 20/20 samples") for r in caplog.records)
