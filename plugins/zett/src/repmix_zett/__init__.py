"""ZeTT: Zero-Shot Tokenizer Transfer (Minixhofer, Ponti & Vulić, NeurIPS 2024) for repmix.

A hypernetwork predicts the input embedding of any token from its decomposition into the source
model's vocabulary, so a model can run with a tokenizer it was never trained with. Components:
``zett.hypernetwork``, ``zett.surfaces``, ``zett.target-tokenizer``, ``zett.transferred-transformer``,
``zett.transfer-token-counts``; commands ``repmix zett train-hypernetwork`` and ``repmix zett train-tokenizer``.
"""

__version__ = "1.0.0"
