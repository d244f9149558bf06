"""repmix-mltp: the poolers of "Pooling and Attention: What are Effective Designs for LLM-based
Embedding Models?" (Tang & Yang, 2024, arXiv:2409.02727).

Poolers (entry points, imported only when a config names them):

* ``mltp.multi-layer``: Multi-Layers Trainable Pooling — the last-token state of every layer,
  plus a learned layer-position embedding, cross-attended by trainable latents, GEGLU MLP,
  mean over latents, L2;
* ``mltp.last-layer``: the same resampler over every token of the last layer;
* ``mltp.eos``: the last real token (EOS-last);
* ``mltp.token-mean``: the masked mean of the last layer.
"""

__version__ = "1.0.0"

CITATION = (
    "Tang & Yang (2024). Pooling And Attention: What Are Effective Designs For LLM-Based Embedding Models? "
    "arXiv:2409.02727. Code: github.com/yixuantt/PoolingAndAttn."
)
