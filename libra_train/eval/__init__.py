"""The shared evaluator: scoring (label / generate), output parsing, metrics, report."""
