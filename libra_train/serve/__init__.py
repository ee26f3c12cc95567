"""libra-serve: a trained guard behind HTTP (app.py), with dynamic batching (batcher.py)."""
