"""Dynamic tokenization (Feher, Vulić & Minixhofer, ACL 2025) for repmix.

Batch-level BPE merges of a base tokenizer's subwords (within pretokens), with embeddings for the
merged tokens predicted by a ZeTT hypernetwork (the ``zett`` plugin's ``zett.hypernetwork``).
Components: ``dynamic-tokenization.dynamic-bpe``, ``dynamic-tokenization.dynamic-transformer``,
``dynamic-tokenization.token-counts``; the decoder side: ``dynamic-tokenization.dynamic-lm`` (a causal
LM over dynamic tokens, softmax over V + the batch's merged tokens or a fixed vocabulary) and
``dynamic-tokenization.batch-vocabulary`` (what the batch vocabulary of LM scoring is worth).
"""

__version__ = "1.0.0"
