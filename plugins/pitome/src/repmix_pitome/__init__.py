"""repmix-pitome: PiToMe, "Accelerating Transformers with Spectrum-Preserving Token Merging" (Tran et al., NeurIPS 2024).

Components: the ``pitome`` encoder (a Hugging Face BERT such as
all-MiniLM-L6-v2 run layer by layer, with PiToMe token merging inside the
chosen layers) and the ``size-mean`` pooler (the size-weighted mean of merged
tokens, which equals the mean over the original tokens' merged states).
The merge itself is :func:`repmix_pitome.merge.pitome_merge`.
"""

__version__ = "1.0.0"
