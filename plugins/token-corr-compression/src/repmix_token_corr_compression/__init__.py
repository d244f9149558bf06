"""Token-level correlation-guided compression for repmix."""
