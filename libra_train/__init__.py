"""libra-train: Chinese LLM safety guard training (Libra-Guard recipe)."""

__version__ = "0.1.0"
