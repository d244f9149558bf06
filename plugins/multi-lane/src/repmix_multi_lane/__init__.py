"""MULTI-LANE patch-token summarisation for repmix."""
