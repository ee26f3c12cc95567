"""Chat endpoints: the one OpenAI-compatible client (concurrency, retries, on-disk cache, key from the
environment), used by data_synth's responders and judges and by libra-infer's endpoint guards."""
