"""Streaming moderation: a token-level head on the guard's hidden states, its labels, its incremental
session and its evaluation (docs/evaluation.md, "Streaming")."""
