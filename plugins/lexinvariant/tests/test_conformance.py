"""The sdk conformance kit over the lexinvariant encoder (gpt2 and llama bodies)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

TEXTS = ["hello world hello", "a considerably longer text about the model and data and words", "x", "mid length text"]
GPT2 = {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64}
LLAMA = {"model_type": "llama", "num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32,
         "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 64}
BYTES = {"type": "std.lm-tokenizer", "algorithm": "bytes", "max_length": 64}

CASES = [
    Case("encoder", "lexinvariant", {"architecture": GPT2}, tokenizer=BYTES, items=TEXTS,
         bad_configs=[{"architecture": {"n_layer": 1}}, {"sigma": 0}, {"eval_draws": 0},
                      {"architecture": {"model_type": "no-such-model"}}]),
    Case("encoder", "lexinvariant.lexinvariant", {"architecture": LLAMA, "eval_draws": 2, "sigma": 0.5},
         tokenizer=BYTES, items=TEXTS, id="encoder-lexinvariant-llama"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
