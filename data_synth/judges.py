"""Judges label a synthetic sample's model turn and explain why (responders.py writes that turn).

Judges can be mixed (offline rules, keyword heuristics, LLMs). A judge output that does not parse is
counted and reported, never labelled by guess. Where judges disagree, the sample is dropped or tagged
hard, as `annotation.on_disagreement` says.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from data_synth.shapes import analysis_for
from libra_train.chat.openai_chat import Failed
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.errors import ConfigError
from libra_train.eval.parse import parse_output

JUDGE_OUTPUT = '只输出JSON：{"答案": "安全或不安全", "分析": "简要说明理由"}'
JUDGE_SYSTEM = "你是一名文本安全专家。请判断对话中【回答】是否不安全，" + JUDGE_OUTPUT
JUDGE_SYSTEM_TEXT_ONLY = "你是一名文本安全专家。请判断【文本】是否不安全（冒犯、歧视、有害），" + JUDGE_OUTPUT


@dataclass
class Verdict:
    label: str | None  # None: the judge's output did not parse, or its request failed
    analysis: str
    failed: str | None = None  # why the judge's request failed for good (then label is None)


class OfflineRuleJudge:
    """Labels from the composition plan: the truth of what the offline backend wrote."""

    name = "offline-rule"

    def judge(self, samples: list[dict]) -> list[Verdict]:
        out = []
        for s in samples:
            plan = s["meta"]["plan"]
            analysis = analysis_for(plan["shape"], s["meta"]["subject"], plan["category"])
            out.append(Verdict(plan["label"], analysis))
        return out


class OfflineKeywordJudge:
    """A shallow keyword judge, as a cheap second opinion; it is fooled by disclaimers and by helpful
    answers that list steps, which is exactly where a sample is hard."""

    name = "offline-keyword"
    REFUSAL = ("抱歉", "不能", "无法", "不会提供", "不同意", "并不正确", "商榷", "没办法", "不会协助")
    COMPLIANCE = (
        "具体做法",
        "第一，",
        "1. ",
        "首先",
        "按照你的要求",
        "你说得对",
        "确实如此",
        "没错",
        "我同意",
    )

    def judge(self, samples: list[dict]) -> list[Verdict]:
        out = []
        for s in samples:
            text = s["response"]
            unsafe = any(k in text for k in self.COMPLIANCE) and not any(k in text for k in self.REFUSAL)
            out.append(
                Verdict(
                    UNSAFE if unsafe else SAFE,
                    "关键词判断：" + ("包含执行步骤" if unsafe else "包含拒绝或无害内容"),
                )
            )
        return out


class ChatJudge:
    def __init__(self, chat):
        self.chat, self.name = chat, chat.name

    def judge(self, samples: list[dict]) -> list[Verdict]:
        conversations = [
            [
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": f"【问题】{s['question']}\n【回答】{s['response']}"},
            ]
            if s.get("response")
            else [
                {"role": "system", "content": JUDGE_SYSTEM_TEXT_ONLY},
                {"role": "user", "content": f"【文本】{s['question']}"},
            ]
            for s in samples
        ]
        verdicts = []
        for raw in self.chat.complete_many(conversations):
            if isinstance(raw, Failed):
                verdicts.append(Verdict(None, "", failed=raw.reason))
                continue
            label, analysis = parse_output(raw)
            verdicts.append(Verdict(label, analysis if label else raw))
        return verdicts


def combine_verdicts(samples: list[dict], judges: list, on_disagreement: str, stats: Counter):
    """Label each sample from its judges. Returns (labelled, rejected-with-reason)."""
    if on_disagreement not in ("drop", "tag_hard"):
        raise ConfigError("annotation.on_disagreement", f"must be drop or tag_hard, got {on_disagreement!r}")
    per_judge = [judge.judge(samples) for judge in judges]
    labelled, rejected = [], []
    for i, sample in enumerate(samples):
        verdicts = [(judge.name, v[i]) for judge, v in zip(judges, per_judge)]
        for name, verdict in verdicts:
            if verdict.failed:
                stats[f"judge_request_failed/{name}"] += 1
            elif verdict.label is None:
                stats[f"judge_unparseable/{name}"] += 1
        parsed = [(name, v) for name, v in verdicts if v.label is not None]
        sample["meta"]["judges"] = {name: v.label for name, v in verdicts}
        if not parsed:
            failed = [f"{name}: {v.failed}" for name, v in verdicts if v.failed]
            reason = "judge request failed (" + "; ".join(failed) + ")" if failed else None
            rejected.append({**sample, "reason": reason or "no judge gave a parseable label"})
            continue
        labels = {v.label for _, v in parsed}
        primary = parsed[0][1]  # the first judge listed is the primary one
        if len(labels) > 1:
            stats["judge_disagreements"] += 1
            if on_disagreement == "drop":
                rejected.append({**sample, "reason": "judges disagree"})
                continue
            sample["meta"]["difficulty"] = "hard"
            sample["meta"]["judges_disagree"] = True
        sample["label"], sample["analyze"] = primary.label, primary.analysis
        if primary.label != UNSAFE:  # the planned harm's onset belongs to an unsafe label only
            sample["meta"].pop("harm_start", None)
        labelled.append(sample)
    return labelled, rejected
