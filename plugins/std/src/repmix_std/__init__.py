"""repmix-std: the built-in baseline components of repmix.

* ``hf-tokenizer``, ``hf-transformer``: Hugging Face tokenizers and encoders
  (``repmix_std.hf``), run offline from local directories or the packaged
  all-MiniLM-L6-v2;
* ``cls``, ``mean``, ``max``, ``last-token``: masked poolers computed as
  sentence-transformers' ``Pooling`` module does (``repmix_std.poolers``);
* ``cosine``, ``dot``, ``maxsim``: aligners (``repmix_std.aligners``);
* ``info-nce``, ``mnrl``: contrastive losses (``repmix_std.losses``).

Components are registered as entry points (see ``pyproject.toml``); importing
this package imports neither torch nor transformers.
"""

from __future__ import annotations

__version__ = "1.0.0"

__all__ = ["__version__"]
