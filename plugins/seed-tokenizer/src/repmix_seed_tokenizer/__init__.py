"""SEED: discrete causal image tokens for repmix."""
