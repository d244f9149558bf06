"""Helpers of the electra tests (a module of its own so that test files can import it)."""

from __future__ import annotations

from typing import Any

TEXTS = ["replaced token detection trains every position", "a small generator proposes tokens",
         "x", "the discriminator tells real from fake"]
BERT = {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
        "intermediate_size": 128, "max_position_embeddings": 64}
ELECTRA = {"model_type": "electra", "num_hidden_layers": 2, "hidden_size": 64, "embedding_size": 32,
           "num_attention_heads": 2, "intermediate_size": 128, "max_position_embeddings": 64}



def build_pair(tokenizer: Any, arch: dict[str, Any], seed: int = 0, **generator: Any) -> tuple[Any, Any]:
    """An ``electra.discriminator`` and the ``electra.generator`` sharing its embeddings (dropout 0)."""
    import torch
    from repmix.sdk import Runtime
    from repmix_electra.discriminator import ElectraDiscriminator
    from repmix_electra.generator import ElectraGenerator

    torch.manual_seed(seed)
    arch = {**arch, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    disc = ElectraDiscriminator(ElectraDiscriminator.Config(architecture=arch), Runtime(tokenizer=tokenizer))
    gen = ElectraGenerator(ElectraGenerator.Config(**{"rate": 0.3, **generator}),
                           Runtime(tokenizer=tokenizer, extras={"encoder": disc}))
    return disc, gen
