"""Exact and near-duplicate removal (MinHash LSH from datasketch) over question + response."""

from __future__ import annotations

import hashlib

import numpy as np
from datasketch import MinHash, MinHashLSH


def _text(sample: dict) -> str:
    return "".join((sample["question"] + "\n" + sample.get("response", "")).split())


def _shingles(text: str, n: int) -> list[bytes]:
    return [text[i : i + n].encode("utf-8") for i in range(max(1, len(text) - n + 1))]


class NearDuplicateIndex:
    """Keeps the first of each group of near-duplicates, in the order samples are offered."""

    def __init__(self, threshold: float = 0.85, num_perm: int = 64, ngram: int = 4, seed: int = 1):
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.num_perm, self.ngram, self.seed = num_perm, ngram, seed
        self.exact: set[bytes] = set()
        # One shared permutation table: building it per MinHash would dominate the cost at 100k samples.
        template = MinHash(num_perm=num_perm, seed=seed)
        self._permutations, self._scheme = template.permutations, template.scheme

    def _minhash(self, text: str) -> MinHash:
        m = MinHash(
            num_perm=self.num_perm, seed=self.seed, permutations=self._permutations, scheme=self._scheme
        )
        m.update_batch(np.unique(np.array(_shingles(text, self.ngram), dtype=object)))
        return m

    def offer(self, key: str, sample: dict) -> str | None:
        """Add the sample; return None if kept, else 'exact' or 'near' for why it was refused."""
        text = _text(sample)
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        if digest in self.exact:
            return "exact"
        m = self._minhash(text)
        if self.lsh.query(m):
            return "near"
        self.exact.add(digest)
        self.lsh.insert(key, m)
        return None
