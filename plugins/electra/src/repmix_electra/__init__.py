"""ELECTRA for repmix: replaced-token detection (Clark et al., ICLR 2020).

* ``electra.discriminator`` (encoder): a transformers backbone + ELECTRA's per-token binary head;
* ``electra.generator`` (corruptor): masking, a small ``ElectraForMaskedLM`` generator sharing the
  discriminator's embeddings, Gumbel-max sampling, replaced-token labels;
* ``electra.rtd`` (loss): the discriminator's BCE, equal to ``ElectraForPreTraining``'s loss.

The generator's masked-LM loss is ``std.masked-lm`` on ``generator_logits``.
"""

__version__ = "1.0.0"
