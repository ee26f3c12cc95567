"""Reading and writing guard samples: JSON, JSONL, Parquet, folders of these, and `datasets` hub ids.

Files are parsed here (not through `datasets`) because every error must name its line; writes go
through a temp file and an atomic rename so a killed process never leaves a half file behind.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

from libra_train.data.schema import Located, Unparsed, validate_records
from libra_train.errors import DataError

SUFFIXES = (".jsonl", ".json", ".parquet")
HUB_PREFIX = "hub:"


def _read_jsonl(path: Path) -> list[Located]:
    items = []
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                record = Unparsed(line.rstrip("\n"), f"malformed JSON ({err.msg} at column {err.colno})")
            items.append(Located(record, str(path), f"line {lineno}"))
    return items


def _read_json(path: Path) -> list[Located]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, f"malformed JSON ({err.msg})", f"line {err.lineno}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(path, 'a .json file must hold a list of records (or {"data": [...]})')
    return [Located(rec, str(path), f"record {i}") for i, rec in enumerate(data, 1)]


def _read_parquet(path: Path) -> list[Located]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DataError(path, f"unreadable Parquet ({err})") from None
    return [Located(rec, str(path), f"row {i}") for i, rec in enumerate(rows, 1)]


READERS = {".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet}


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and not p.name.startswith("."))
        if not files:
            raise DataError(path, f"folder has no data files ({', '.join(SUFFIXES)})")
        return files
    if not path.exists():
        raise DataError(path, "no such file or folder")
    if path.suffix not in SUFFIXES:
        raise DataError(path, f"unsupported file type {path.suffix!r}; use {', '.join(SUFFIXES)}")
    return [path]


def read_raw(spec: str | os.PathLike) -> list[Located]:
    """Raw records with their locations, before validation."""
    spec = str(spec)
    if spec.startswith(HUB_PREFIX):
        return list(_read_hub(spec[len(HUB_PREFIX) :]))
    items = []
    for file in _files_of(Path(spec)):
        file_items = READERS[file.suffix](file)
        if not file_items:
            raise DataError(file, "empty file: no records")
        items.extend(file_items)
    return items


@functools.lru_cache(maxsize=8)
def _read_hub(name: str) -> tuple[Located, ...]:
    """`hub:ORG/NAME[:SPLIT]` through `datasets`; needs network access to the hub (or its local cache).
    Read once per process: libra-train checks a hub eval set is reachable before training, then scores
    it after every stage (the records are never changed in place: validation copies them)."""
    import datasets

    repo, _, split = name.partition(":")
    try:
        ds = datasets.load_dataset(repo, split=split or "test")
    except Exception as err:  # offline, unknown id, or no access: say how to use a local copy instead
        raise DataError(
            f"hub:{name}",
            f"cannot load dataset {repo} from the hub ({type(err).__name__}); where the hub is reachable, "
            f"`huggingface-cli download {repo} --repo-type dataset --local-dir DIR`, then give DIR's "
            f"test.json, parquet file or the folder itself instead of hub:{name}",
        ) from None
    return tuple(Located(rec, f"hub:{name}", f"row {i}") for i, rec in enumerate(ds, 1))


def load_records(
    spec: str | os.PathLike, require_label: bool = True, on_invalid: str = "error", rejected_path=None
) -> list[dict]:
    """Load and validate guard samples. With on_invalid='skip', rejected rows go to rejected_path."""
    valid, rejected = validate_records(read_raw(spec), require_label, on_invalid)
    if rejected and rejected_path is not None:
        write_records(rejected, rejected_path)
    if not valid:
        raise DataError(spec, "no valid records" + (f" ({len(rejected)} rejected)" if rejected else ""))
    return valid


def current_umask() -> int:
    """The process's umask (reading it means setting it: it is set straight back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write via a temp file in the same folder, then rename: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; give the mode open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records)


def write_records(records: list[dict], path: str | os.PathLike) -> Path:
    """Write .jsonl or .parquet, atomically."""
    path = Path(path)
    if path.suffix == ".jsonl":
        atomic_write_text(path, to_jsonl(records))
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(pa.Table.from_pylist(records), tmp)
        os.replace(tmp, path)
    else:
        raise DataError(path, "output must end in .jsonl or .parquet")
    return path


def file_sha256(path) -> str:
    """The file's sha256. A run hashes its data for the manifest and again for W&B's artifact; an
    unchanged file (same size and modification time) is read once."""
    stat = os.stat(path)
    return _sha256_of(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_stamp(path: str) -> tuple:
    """A file's identity for read_cached: a file changed on disk is read again."""
    try:
        stat = os.stat(path)
    except OSError:  # missing: the reader says so, naming the file
        return None, None
    return stat.st_mtime_ns, stat.st_size


@functools.cache
def _read_once(reader, path: str, _mtime, _size):
    return reader(path)


def read_cached(path: str, reader):
    """reader(path), kept until the file changes on disk: the policy, few-shot, rules and category-map
    files each command reads at its start and every prompt then uses."""
    return _read_once(reader, path, *_file_stamp(path))
