"""Training: one stage through TRL's SFTTrainer, its examples, hard-sample selection, the run directory."""
