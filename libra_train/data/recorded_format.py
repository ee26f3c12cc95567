"""The format a guard was trained with, recorded beside its weights (`guard_format.json`), so that
libra-infer and libra-serve load a checkpoint or an export without `format=` on the command line.

The record is self-contained: the policy and few-shot samples are written inline, and a file the format
still names (ShieldLM's rules, a category map) is copied beside it and named relative to the folder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from libra_train.data.formats import FormatConfig
from libra_train.data.io import atomic_write_text
from libra_train.errors import CheckpointError

FORMAT_FILE = "guard_format.json"
COPIED_FILES = ("rules_file", "category_map")  # read when used: copied with the record


def save_format(folder, fmt: FormatConfig) -> Path:
    folder = Path(str(folder))
    fmt = fmt.load_files()
    record = dataclasses.asdict(fmt)
    record.update(categories=dict(fmt.policy), few_shot=[dict(s) for s in fmt.shots])
    record.update(categories_file=None, few_shot_file=None)
    for key in COPIED_FILES:
        source = record.get(key)
        if source and Path(source).is_file():
            (folder / "format_files").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / "format_files" / Path(source).name)
            record[key] = f"format_files/{Path(source).name}"
    text = json.dumps({"format": record}, ensure_ascii=False, indent=1) + "\n"
    atomic_write_text(folder / FORMAT_FILE, text)
    return folder / FORMAT_FILE


def recorded_format(folder) -> dict | None:
    """The `format` mapping recorded in a local checkpoint folder, its copied files resolved; None where
    there is no record (a hub id, or a checkpoint from elsewhere)."""
    path = Path(str(folder)) / FORMAT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))["format"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path} is not a format record ({err}): it needs a mapping `format`") from None
    for key in COPIED_FILES:
        if record.get(key) and str(record[key]).startswith("format_files/"):
            record[key] = str(Path(str(folder)) / record[key])
    return record


def trained_task(model) -> str | None:
    """The format.task a local checkpoint or export was trained with; None where nothing is recorded."""
    folder = Path(str(model)).expanduser()
    record = recorded_format(folder) if folder.is_dir() else None
    return record.get("task") if record else None
