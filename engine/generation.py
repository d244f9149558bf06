"""Generation: the ``generate:`` block and ``repmix generate`` on a run, a saved model or a config.

A decoding strategy is a component (kind ``decoding``, entry-point group ``repmix.decoding``)
that turns a :class:`~repmix.core.components.CausalLM` and prompt ids into new ids. The
config's top-level ``generate:`` block names the default one (validated by ``repmix check``,
which also requires a causal tower); ``repmix generate --strategy NAME`` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repmix.core.assembly import PlannedComponent, instantiate_component, plan_component
from repmix.core.config import LocatedConfig
from repmix.core.errors import InputError, PipelineError
from repmix.registry.registry import Registry, get_registry

#: The strategy used when neither the config nor the command names one.
DEFAULT_STRATEGY = "greedy"


def plan_generation(cfg: LocatedConfig, plan: Any = None, registry: Registry | None = None) -> PlannedComponent | None:
    """Validate the ``generate:`` block (``None`` when absent); with a model ``plan``, require a causal tower."""
    block = cfg.data.get("generate")
    if block is None:
        return None
    planned = plan_component(cfg, registry or get_registry(), "decoding", block, ("generate",))
    if plan is not None and not any(
        t.signature is not None and t.signature.causal for t in plan.towers.values()
    ):
        err = PipelineError(
            "generate: needs a causal tower (a decoder with an LM head), but no tower's encoder is causal",
            hint="use an encoder such as hf-lm with a causal architecture (model_type: gpt2 or llama)",
        )
        raise cfg.locate(err, ("generate",))
    return planned


@dataclass
class Generated:
    """One generation: the prompt, the new text, the new token ids and the strategy used."""

    prompt: str
    text: str
    ids: list[int]
    strategy: str


def causal_tower(model: Any, tower: str | None) -> tuple[str, Any, Any]:
    """``(name, tokenizer, encoder)`` of ``tower`` or of the first tower whose encoder generates."""
    names = [tower] if tower is not None else list(model.tower_names)
    for name in names:
        t = model.tower(name)
        scorer = getattr(t.encoder, "next_logprobs", None)
        if callable(scorer) and getattr(t.encoder, "causal", True) is not False:
            return name, t.tokenizer, t.encoder
    what = f"tower {tower!r}" if tower is not None else "this model"
    raise InputError(
        f"{what} has no causal LM head, so it cannot generate: generation needs a decoder whose encoder "
        "offers next-token log-probabilities (repmix.sdk.CausalLM)",
        hint="train a causal model (e.g. examples/lm-scifact.yaml); a masked-LM or embedding model cannot generate",
    )


def generate_text(
    model: Any,
    prompt: str,
    strategy: Any,
    *,
    tower: str | None = None,
    max_new_tokens: int = 64,
    seed: int | None = None,
) -> Generated:
    """Continue ``prompt`` with ``strategy`` (a built decoding component) on the model's causal tower."""
    import torch

    if max_new_tokens < 1:
        raise InputError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    _, tok, enc = causal_tower(model, tower)
    for attr in ("encode_plain", "decode"):
        if not callable(getattr(tok, attr, None)):
            raise InputError(f"the tower's tokenizer has no {attr}(); generation needs an LM tokenizer (lm-tokenizer)")
    bos = getattr(tok, "bos_token_id", None)
    ids = ([bos] if bos is not None else []) + list(tok.encode_plain(prompt))
    eos = getattr(tok, "eos_token_id", None)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            new = strategy.generate(enc, ids, max_new_tokens=max_new_tokens,
                                    stop_ids=[eos] if eos is not None else [], generator=generator)
    finally:
        model.train(was_training)
    name = getattr(strategy, "type_name", type(strategy).__name__)
    shown, full = tok.decode(ids), tok.decode(ids + list(new))
    text = full[len(shown):] if full.startswith(shown) else tok.decode(new)  # keeps a leading space
    return Generated(prompt, text, list(new), name)


def load_for_generation(source: str, device: str = "cpu") -> tuple[Any, LocatedConfig | None]:
    """The model of a run directory, a saved model or a config (built from scratch), and its config."""
    from repmix.core.artifacts import find_model_dir, load_model
    from repmix.core.config import load_config

    src = Path(source)
    if src.is_dir():
        model_dir = find_model_dir(src)
        return load_model(model_dir, device=device), load_config(model_dir / "config.yaml")
    from repmix.core.assembly import build_model, plan_model

    cfg = load_config(source)
    return build_model(plan_model(cfg)).to(device), cfg


def build_strategy(cfg: LocatedConfig | None, name: str | None, options: dict[str, Any]) -> Any:
    """The decoding component: ``name`` with ``options``, else the config's ``generate:`` block, else greedy."""
    from repmix.core.config import LocatedConfig as _LC

    if name is None and cfg is not None and isinstance(cfg.data.get("generate"), dict):
        block = dict(cfg.data["generate"])
        block.update(options)
        base = cfg
    else:
        block = {"type": name or DEFAULT_STRATEGY, **options}
        base = _LC({"generate": block}, {}, source="<command line>") if cfg is None else cfg
    shown = _LC({"generate": block}, {}, source=base.source)
    planned = plan_component(shown, get_registry(), "decoding", block, ("generate",))
    strategy = instantiate_component(shown, planned)
    strategy.type_name = planned.type_name
    return strategy
