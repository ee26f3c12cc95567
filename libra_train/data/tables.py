"""Real labelled tables imported and split on first use (`data.table`; data=jade is one): a paired
table (each row a question, a violating answer and a safe answer) or a (question, response, label)
table, read in its own encoding, into guard-schema train/dev/test files. The split is by question,
seeded: both answers to one question always land in the same split."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from libra_train.data.schema import UNSAFE
from libra_train.errors import ConfigError
from libra_train.typed import check_fields, opt

log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class TableConfig:
    path: str = opt(help="the table: .csv, .jsonl or .parquet")
    out_dir: str = opt(help="where train.jsonl, dev.jsonl and test.jsonl are written")
    question_column: str = opt(help="the question")
    unsafe_response_column: str | None = opt(None, "paired: the violating answer (a 不安全 sample)")
    safe_response_column: str | None = opt(None, "paired: the safe answer (a 安全 sample)")
    response_column: str | None = opt(None, "unpaired: the response")
    label_column: str | None = opt(None, "unpaired: the label")
    id_column: str | None = opt(None, "a row id (else the row number)")
    encoding: str = opt("auto", "auto: UTF-8, else GB18030 (which reads GBK); or a codec name")
    source: str = opt("Real Data", "the samples' source (metrics are split by it)")
    shares: dict = opt(
        help="train/dev/test shares of the questions", factory=lambda: {"train": 0.8, "dev": 0.1, "test": 0.1}
    )
    seed: int = opt(0, "the split's seed")

    def __post_init__(self):
        check_fields(self, "data.table")
        if set(self.shares) != set(SPLITS) or abs(sum(self.shares.values()) - 1) > 1e-9:
            raise ConfigError(
                "data.table.shares", f"train, dev and test shares that sum to 1, got {self.shares}"
            )
        self.mapping()  # the columns' own rules, said at start-up

    def mapping(self):
        from libra_train.data.importer import ImportMapping

        return ImportMapping(
            label_column=self.label_column,
            question_column=self.question_column,
            response_column=self.response_column,
            unsafe_response_column=self.unsafe_response_column,
            safe_response_column=self.safe_response_column,
            id_column=self.id_column,
            encoding=self.encoding,
            source=self.source,
        )

    def files(self) -> dict[str, Path]:
        return {name: Path(self.out_dir) / f"{name}.jsonl" for name in SPLITS}


def split_of(group: str, seed: int, shares: dict[str, float]) -> str:
    """A question's split from a hash of (seed, question id): the same question, the same split, in
    any order or run."""
    point = int.from_bytes(hashlib.sha256(f"{seed}:{group}".encode()).digest()[:8], "big") / 2**64
    edge = 0.0
    for name in SPLITS:
        edge += shares[name]
        if point < edge:
            return name
    return SPLITS[-1]


def split_records(records: list[dict], seed: int, shares: dict[str, float]) -> dict[str, list[dict]]:
    """Records by split; the two answers of one question (meta.pair) go together."""
    out: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for record in records:
        group = str((record.get("meta") or {}).get("pair", record["id"]))
        out[split_of(group, seed, shares)].append(record)
    return out


def import_and_split(table: TableConfig) -> dict[str, Path]:
    """The table imported, split and written as out_dir/{train,dev,test}.jsonl; returns the files."""
    from libra_train.data.importer import convert_table
    from libra_train.data.io import write_records

    parts = split_records(convert_table(table.path, table.mapping()), table.seed, table.shares)
    for name, part in parts.items():
        write_records(part, table.files()[name])
    said = ", ".join(
        f"{n} {len(p)} ({sum(r['label'] == UNSAFE for r in p)} unsafe)" for n, p in parts.items()
    )
    log.info("imported %s by question: %s, into %s", table.path, said, table.out_dir)
    return table.files()
