"""The project's own errors: each names where the problem is, so a user can fix it without a stack trace."""

from __future__ import annotations


class LibraError(Exception):
    """Base class; the CLIs print these as one line and exit 2 instead of a traceback."""


class DataError(LibraError):
    """Bad input data. `where` is 'line N' (JSONL), 'row N' (tables) or 'record N' (JSON arrays)."""

    def __init__(self, path, message: str, where: str | None = None, field: str | None = None):
        self.path, self.where, self.field, self.message = str(path), where, field, message
        location = self.path + (f", {where}" if where else "")
        what = f"field '{field}': " if field else ""
        super().__init__(f"{location}: {what}{message}")


class ConfigError(LibraError):
    """A bad config value; names the key."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"config '{key}': {message}")


class CheckpointError(LibraError):
    """A checkpoint that is missing, partial or corrupt."""
