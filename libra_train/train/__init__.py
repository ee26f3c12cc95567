"""Training: one stage through TRL's SFTTrainer, the curriculum of stages, callbacks."""
