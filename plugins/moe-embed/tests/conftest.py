"""Fixtures of the moe-embed tests: ``tiny_bert_dir`` and ``minilm_dir`` come from repmix's pytest plugin."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
