"""Guard samples: schema, loading and validation, writing, import of users' tables, prompt/target formats."""

from libra_train.data.io import load_records, write_records
from libra_train.data.schema import LABELS, SAFE, UNSAFE, validate_records

__all__ = ["LABELS", "SAFE", "UNSAFE", "load_records", "validate_records", "write_records"]
