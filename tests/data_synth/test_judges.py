"""Combining judges' verdicts: the primary judge labels, a disagreement is tagged hard or dropped as
configured, an unparseable verdict is counted and never guessed."""

from collections import Counter

import pytest

from data_synth.judges import Verdict, combine_verdicts
from libra_train.errors import ConfigError

SAFE, UNSAFE = "安全", "不安全"


class FixedJudge:
    def __init__(self, name, labels):
        self.name, self.labels = name, labels

    def judge(self, samples):
        return [Verdict(label, f"{self.name}:{label}") for label in self.labels]


def _samples(n=3):
    return [{"id": str(i), "question": "q", "response": "r", "meta": {}} for i in range(n)]


JUDGES = [FixedJudge("primary", [UNSAFE, SAFE, None]), FixedJudge("second", [UNSAFE, UNSAFE, SAFE])]


def test_disagreements_are_dropped_with_their_reason_when_asked():
    stats = Counter()
    labelled, rejected = combine_verdicts(_samples(), JUDGES, "drop", stats)
    assert [(s["id"], s["label"]) for s in labelled] == [("0", UNSAFE), ("2", SAFE)]
    assert [(r["id"], r["reason"]) for r in rejected] == [("1", "judges disagree")]
    assert stats == Counter({"judge_disagreements": 1, "judge_unparseable/primary": 1})


def test_disagreements_are_kept_and_tagged_hard_by_default_setting():
    labelled, rejected = combine_verdicts(_samples(), JUDGES, "tag_hard", Counter())
    assert rejected == [] and [s["label"] for s in labelled] == [UNSAFE, SAFE, SAFE]
    hard = labelled[1]
    assert hard["meta"]["difficulty"] == "hard" and hard["meta"]["judges_disagree"] is True
    assert hard["analyze"] == "primary:安全"  # the primary judge's label and analysis
    assert "difficulty" not in labelled[0]["meta"]


def test_no_parseable_verdict_rejects_the_sample_and_a_bad_policy_names_its_key():
    labelled, rejected = combine_verdicts(_samples(1), [FixedJudge("a", [None])], "drop", Counter())
    assert labelled == [] and rejected[0]["reason"] == "no judge gave a parseable label"
    with pytest.raises(ConfigError, match="annotation.on_disagreement"):
        combine_verdicts(_samples(1), JUDGES, "vote", Counter())


def test_a_response_judged_safe_loses_the_harm_onset_its_plan_gave_it():
    samples = [{**s, "meta": {"harm_start": 0}} for s in _samples(2)]
    labelled, _ = combine_verdicts(samples, [FixedJudge("primary", [UNSAFE, SAFE])], "drop", Counter())
    assert [s["meta"].get("harm_start") for s in labelled] == [0, None]
