"""Training: run configs, the one training loop, distributed launch, evaluation."""
