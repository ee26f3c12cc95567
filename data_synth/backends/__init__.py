"""Chat backends for responders and judges: offline (no model), OpenAI-compatible HTTP, local transformers."""
