"""The documented breaks (docs/testing.md, "Breaks and the tests that catch them"): each one made in the
checkout, the test named beside it run, and the file put back. Every line should read CAUGHT; a MISSED
line is a behaviour the tests no longer guard.

    python tests/breaks.py            # every break, about 2 minutes on 2 cores
    python tests/breaks.py signal     # the breaks whose name holds "signal"

A break in package code changes the shared test guard's digest, so only tests that build what they need
themselves are named here; the break is undone whatever the test does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (what breaks, the file, the text, what it becomes, the test that must fail)
BREAKS = [
    (
        "qwen3guard Refusal line",
        "libra_train/data/peers/qwen3guard.py",
        'lines.append("Refusal: " + ("Yes" if refusal else "No"))',
        'lines.append("Refusal: " + ("No" if refusal else "Yes"))',
        "tests/data/test_peer_prompts.py::test_each_peer_formats_training_target",
    ),
    (
        "ShieldLM target without its analysis",
        "libra_train/data/peers/shieldlm.py",
        'return f"{answer}{word}\\n{analysis_tag}{analysis}" if analysis else f"{answer}{word}"',
        'return f"{answer}{word}"',
        "tests/data/test_peer_prompts.py::test_each_peer_formats_training_target",
    ),
    (
        "Llama Guard 3 safe target without its opening",
        "libra_train/data/peers/llama_guard3.py",
        'return OPENING + "safe"',
        'return "safe"',
        "tests/data/test_peer_prompts.py::test_each_peer_formats_training_target",
    ),
    (
        "a finished stage's curriculum entry may change",
        "libra_train/run_record.py",
        "return index >= len(stage_names) or stage_names[index] not in started",
        "return True",
        "tests/train/test_run_record.py::test_a_finished_stages_curriculum_entry_is_guarded_and_a_path_may_be_written_either_way",
    ),
    (
        "exit status 1 for a signal",
        "libra_train/runtime/signals.py",
        "super().__init__(128 + signum)",
        "super().__init__(1)",
        "tests/train/test_pipeline.py::test_a_signal_ends_the_run_with_128_plus_its_number_and_one_line_saying_how_to_resume",
    ),
    (
        "an IGNORED_KEYS entry dropped (model.vocab_from)",
        "libra_train/config_checks.py",
        '("vocab_from",),',
        "(),",
        "tests/train/test_validate.py::test_every_ignored_key_has_a_case",
    ),
    (
        "an IGNORED_KEYS predicate never true (eval.calibrate_at)",
        "libra_train/config_checks.py",
        'lambda r: r.eval.threshold != "calibrate",',
        "lambda r: False,",
        "tests/train/test_validate.py::test_each_key_an_option_ignores_is_refused_when_set",
    ),
    (
        "the card's threshold written as 0.5",
        "libra_train/export/card.py",
        'f"Unsafe when p(unsafe) > **{decision.threshold:.6g}**',
        'f"Unsafe when p(unsafe) > **{0.5:.6g}**',
        "tests/export/test_card_text.py",
    ),
    (
        "the card's temperature sentence always shown",
        "libra_train/export/card.py",
        "if decision.temperature != 1.0",
        "if True",
        "tests/export/test_card_text.py",
    ),
    (
        "a LoRA export not merged",
        "libra_train/model.py",
        "model if trainable_adapter else model.merge_and_unload()",
        "model",
        "tests/export/test_release.py::test_a_lora_adapter_is_exported_merged_into_its_base",
    ),
    (
        "an endpoint's third verdict always unsafe",
        "libra_train/eval/endpoint.py",
        'mapping = options.get("controversial_as", "unsafe")',
        'mapping = "unsafe"',
        "tests/eval/test_leaderboard.py::test_an_endpoint_guards_third_verdict_goes_to_the_side_its_spec_or_compare_names",
    ),
    (
        "a leaderboard row's controversial cell fixed",
        "libra_train/reporting/leaderboard.py",
        '"controversial_as": config.controversial_as if three_way(config.format) else None,',
        '"controversial_as": "unsafe" if three_way(config.format) else None,',
        "tests/eval/test_leaderboard.py::test_an_endpoint_guards_third_verdict_goes_to_the_side_its_spec_or_compare_names",
    ),
    (
        "a leaderboard row's figures not libra-eval's",
        "libra_train/reporting/leaderboard.py",
        '"average": metrics["average"],',
        '"average": metrics["per_source"],',
        "tests/eval/test_leaderboard.py::test_an_endpoint_guards_row_is_generated_undecided_by_a_threshold_and_matches_its_metrics",
    ),
    (
        "the export's source format from the run's config ignored",
        "libra_train/export/release.py",
        'if record is None and source.run_dir and (source.run_dir / "config.yaml").is_file():',
        "if False:",
        "tests/export/test_release.py::test_the_format_comes_from_the_checkpoint_then_an_ensembles_first_member_then_the_run",
    ),
    (
        "the stream stop rule not chosen on its set",
        "libra_train/stream/metrics.py",
        "return levels[allowed] if allowed < len(levels) else 0.0",
        "return 0.5",
        "tests/test_stream.py::test_the_calibrated_threshold_is_the_lowest_that_stops_at_most_the_share_of_safe_responses",
    ),
]


def main(only: list[str]) -> int:
    missed = 0
    for name, path, old, new, test in BREAKS:
        if only and not any(word in name for word in only):
            continue
        file = ROOT / path
        text = file.read_text()
        if text.count(old) != 1:
            print(f"STALE  | {name} | {path} no longer holds the text to break once")
            missed += 1
            continue
        file.write_text(text.replace(old, new))
        try:
            args = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:xdist", "-o", "addopts=", test]
            proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
        finally:
            file.write_text(text)
        missed += proc.returncode == 0
        last = (proc.stdout.strip().splitlines() or ["?"])[-1]
        print(f"{'CAUGHT' if proc.returncode else 'MISSED'} | {name} | {test} | {last}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
