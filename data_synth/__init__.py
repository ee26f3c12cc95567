"""data_synth: scalable synthetic guard data (queries → responses from several LLMs → annotation →
dedup and balance → stage1 / stage2 / heldout splits)."""
