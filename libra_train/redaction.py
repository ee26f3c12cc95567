"""Secrets never reach a file: values under secret-looking keys, and any value that holds a secret kept
in an environment variable, are masked in config.yaml, W&B's config and its recorded command line."""

from __future__ import annotations

import os
import re

# "token" as a credential (hf_token, authToken), not a count (max_new_tokens) or a tokenizer setting
SECRET_KEY = re.compile(r"(api[_-]?key|token(?!s|iz)|secret|password|passwd|credential)", re.IGNORECASE)
REDACTED = "***"


def redact(obj):
    """A copy with every value under a secret-looking key replaced, and any env-held key value masked."""
    secrets = [v for k, v in os.environ.items() if SECRET_KEY.search(k) and len(v) >= 8]

    def walk(value):
        if isinstance(value, dict):
            return {
                k: (
                    REDACTED
                    if SECRET_KEY.search(str(k)) and not str(k).endswith("_env") and v not in (None, "")
                    else walk(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            for s in secrets:
                value = value.replace(s, REDACTED)
        return value

    return walk(obj)


def redact_args(args: list[str]) -> list[str]:
    """Command-line overrides with the value of any secret-looking key (and any env-held key) masked."""
    out = []
    for arg in redact(list(args)):
        key, sep, _ = arg.partition("=")
        out.append(
            f"{key}={REDACTED}" if sep and SECRET_KEY.search(key) and not key.endswith("_env") else arg
        )
    return out
