"""Reads an offline W&B run's own record file (run-<id>.wandb, what `wandb sync` uploads) so that tests
check what W&B would show, not what our code meant to send. The file is a LevelDB-style log: a 7-byte
header, then 32 KiB blocks of chunks (crc32 4 bytes, length 2, type 1) holding protobuf Records."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B record file"
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # the tail of a block too small for a chunk header is padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            records.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            records.append(pending + chunk)
        elif kind == 0 and length == 0:  # zero fill at the end of the file
            break
    return records


def records(path: Path, wait_s: float = 30.0):
    """The run's records once its exit record is in the file: run.finish() returns when W&B's service has
    handled the exit, and the service may write the file's tail a moment later, on a busy machine after
    the caller reads it. A run killed before it could finish has no exit record: after wait_s, what is
    there is returned."""
    from wandb.proto import wandb_internal_pb2 as pb

    deadline = time.monotonic() + wait_s
    while True:
        out = []
        for raw in raw_records(path):
            record = pb.Record()
            record.ParseFromString(raw)
            out.append(record)
        if (out and out[-1].WhichOneof("record_type") == "exit") or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def history(path: Path) -> list[dict]:
    """Each logged row as {key: value} (values JSON-decoded, as W&B stores them)."""
    rows = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in r.history.item
                }
            )
    return rows


def nested(row: dict, key: str) -> dict:
    """A logged object (a table, a chart) is stored as one item per field: key/_type, key/path, …"""
    return {k[len(key) + 1 :]: v for k, v in row.items() if k.startswith(key + "/")}


def run_file(run_dir: Path) -> Path:
    (found,) = Path(run_dir).glob("*.wandb")
    return found
