"""The evaluator: scoring (label / generate), output parsing, metrics, prediction files, libra-infer."""
