"""Helpers of the ernie-gram tests (a module of its own so that test files can import it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ARCH = {"model_type": "bert", "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 96, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0}
#: Whole words of the byte tokenizer (a word keeps the space after it) used as lexicon n-grams.
PHRASES = ["the ", "of ", "in ", "and ", "cell "]
TEXTS = ["the cell of the cell in the house and the garden of the cell", "in the end of the day and the night",
         "x", "the cell cycle of the cell in the lab and in the field of view of the cell biology of the cell"]


def write_lexicon(directory: Path, vocab_size: int, phrases: list[str] = PHRASES) -> Path:
    """A lexicon file whose entries are the byte ids of ``phrases``."""
    from repmix_ernie_gram.lexicon import Lexicon

    path = directory / "lexicon.json"
    Lexicon([tuple(p.encode()) for p in phrases], vocab_size, texts=list(phrases)).save(path)
    return path


def build(tokenizer: Any, lexicon: Path, seed: int = 0, **options: Any) -> tuple[Any, Any]:
    """A tiny ``std.hf-lm`` BERT and an ``ernie-gram.ngram-mask`` reading ``lexicon``."""
    import torch
    from repmix.sdk import Runtime, load_component_class
    from repmix_ernie_gram.masking import NgramMasking

    hf = load_component_class("encoder", "std.hf-lm")
    cfg = hf.Config(architecture=ARCH)
    torch.manual_seed(seed)
    encoder = hf(cfg, Runtime(tokenizer=tokenizer))
    masking = NgramMasking(NgramMasking.Config(**{"file": str(lexicon), "rate": 0.3, **options}),
                           Runtime(tokenizer=tokenizer, encoder=hf.signature(cfg), extras={"encoder": encoder}))
    return encoder, masking


class TowerStub:
    """What a loss sees of a tower in ``LossInputs.towers``: here only its corruptor."""

    def __init__(self, corruptor: Any) -> None:
        self.corruptor = corruptor
