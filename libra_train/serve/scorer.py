"""The guard behind libra-serve: a checkpoint, its threshold, and label-mode scoring of prepared records.

Requests become guard-schema records and go through the code training and libra-infer use: the prompt
is rendered by data/formats.py, too-long input is cut by the training rule (train/examples.py,
fit_conversation), and p(unsafe) comes from one label-mode forward pass (eval/scoring.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from libra_train.command_config import ServeConfig
from libra_train.data.formats import FormatConfig, label_words, target_opening, untrained_task
from libra_train.data.recorded_format import trained_task as recorded_task
from libra_train.data.schema import UNSAFE
from libra_train.errors import ConfigError
from libra_train.eval.decision import Decision, command_decision
from libra_train.eval.scoring import (
    generate_labels,
    record_label_query,
    score_label_queries,
)
from libra_train.stream.train import attach_stream_head, has_stream_head
from libra_train.train.examples import fit_conversation

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A request's record as scored, what the training rule cut from it to fit max_length, and its
    label query, built here in the request's handler so that the model worker only runs the model."""

    record: dict
    truncation: dict  # {} when nothing was cut, else {"context_turns_dropped": n, "judged_turn_cut": bool}
    query: tuple[list[int], int, int]


class GuardScorer:
    def __init__(
        self,
        model,
        tokenizer,
        fmt: FormatConfig,
        decision: Decision,
        max_length: int,
        category_tokens: int = 32,
        controversial_as: str = "unsafe",
        trained_task: str | None = None,
    ):
        if not fmt.label_first:
            raise ConfigError("format.critic", "libra-serve scores in label mode: the label must come first")
        self.model, self.tokenizer, self.fmt = model, tokenizer, fmt
        self.trained_task = trained_task  # the guard's recorded format.task: other input is refused
        self.decision, self.max_length, self.category_tokens = decision, max_length, category_tokens
        self.controversial_as = controversial_as
        self.stream_guard = None  # the stream head on this model, where the checkpoint has one

    @classmethod
    def load(cls, cfg: ServeConfig) -> GuardScorer:
        from libra_train.model import default_device, load_configured

        fmt = cfg.format.load_files()
        decision = command_decision(cfg.threshold, cfg.model)  # refused before any weights are read
        model, tokenizer = load_configured(cfg.model, cfg)
        model.to(default_device(cfg.device))
        model.eval()
        log.info("libra-serve: %s, %s", cfg.model, decision)
        options = {"category_tokens": cfg.category_tokens, "controversial_as": cfg.controversial_as}
        scorer = cls(
            model, tokenizer, fmt, decision, cfg.max_length, **options, trained_task=recorded_task(cfg.model)
        )
        if has_stream_head(cfg.model):  # the same weights serve label mode and streaming
            scorer.stream_guard = attach_stream_head(model, cfg.model).eval()
            log.info("libra-serve: streaming sessions on (a stream head is saved with %s)", cfg.model)
        return scorer

    @property
    def threshold(self) -> float:
        return self.decision.threshold

    def prepare(self, record: dict) -> Prepared:
        """Cut the record by the training rule so that the prompt and the label fit in max_length; a record
        the guard was not trained to judge (format.task) is refused."""
        why = untrained_task(record, self.fmt, self.trained_task, "this guard")
        if why:
            raise ValueError(why)
        stats: Counter = Counter()
        label = target_opening(self.fmt, record) + max(label_words(self.fmt, record), key=len)
        fitted = fit_conversation(record, self.tokenizer, self.fmt, label, self.max_length, stats)
        if fitted is None:
            raise ValueError(f"the prompt alone is longer than max_length={self.max_length} tokens")
        cut = {}
        if stats["truncated"]:
            cut = {
                "context_turns_dropped": stats["context_turns_dropped"],
                "judged_turn_cut": bool(stats["judged_turn_cut"]),
            }
        return Prepared(fitted, cut, record_label_query(fitted, self.tokenizer, self.fmt))

    def score(self, prepared: list[Prepared]) -> list[dict]:
        """{pred_label, p_unsafe, categories?} per record, in order: one label-mode batch, then (with
        format.with_category) a short generation for the flagged ones to name their categories."""
        scored = score_label_queries(
            self.model,
            self.tokenizer,
            [p.query for p in prepared],
            batch_size=len(prepared),
            controversial_as=self.controversial_as,
        )
        results = [self.decision.apply(s) for s in scored]
        records = [p.record for p in prepared]
        if self.fmt.with_category:
            flagged = [i for i, r in enumerate(results) if r["pred_label"] == UNSAFE]
            named = generate_labels(
                self.model,
                self.tokenizer,
                [records[i] for i in flagged],
                self.fmt,
                batch_size=max(1, len(flagged)),
                max_new_tokens=self.category_tokens,
            )
            for r in results:
                r["categories"] = []
            for i, gen in zip(flagged, named):
                results[i]["categories"] = gen.get("pred_categories", [])
        return results
