"""Adapters between repmix models and other libraries (MTEB, sentence-transformers)."""
