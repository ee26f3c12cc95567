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
    # the 20 samples, then each question alone (the question_only shortcut), said as such
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("eval heldout: 40/40 inputs (20 of them a question alone)") for m in said), said


def test_a_training_line_shows_the_loss_of_the_step_it_names_with_elapsed_time_and_eta(caplog, monkeypatch):
    """The Trainer calls on_step_end before on_log: a line written at step end showed the loss logged a
    logging interval earlier. Lines are written when the loss is logged, every `every` steps."""
    from types import SimpleNamespace

    from libra_train.progress import duration
    from libra_train.train import callbacks

    clock = iter(range(0, 1000, 2))  # two seconds a call
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(callbacks.sys.stderr, "isatty", lambda: False)
    caplog.set_level(logging.INFO, logger="libra_train.train.callbacks")
    bar, args = callbacks.StageProgress("stage1", every=10), SimpleNamespace(process_index=0)
    state = SimpleNamespace(global_step=0, max_steps=30)
    bar.on_train_begin(args, state, None)
    for step in range(1, 31):
        state.global_step = step
        bar.on_step_end(args, state, None)
        if step % 5 == 0:
            bar.on_log(args, state, None, logs={"loss": 1.0 / step})
    bar.on_train_end(args, state, None)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("stage1: step 10/30 loss 0.1000 (") and "elapsed, ETA" in lines[0]
    assert [line.split(" loss ")[1][:6] for line in lines[:3]] == ["0.1000", "0.0500", "0.0333"]
    assert (
        lines[-1].startswith("stage1: trained to step 30/30 in ")
        and "last loss 0.0333 (step 30)" in lines[-1]
    )
    assert (duration(42), duration(185), duration(3720)) == ("42s", "3m05s", "1h02m")
