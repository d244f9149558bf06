"""Decoding strategies: ``greedy`` and ``top-p`` (nucleus sampling), over :class:`repmix.sdk.CausalLM`.

Both run the prompt once, then feed one token at a time with the KV cache the model returns,
so each new token costs one single-position forward pass (as transformers' ``generate``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch
from pydantic import Field
from repmix.sdk import CausalLM, ComponentConfig, DecodingStrategy, InputError, Runtime


class _Loop(DecodingStrategy):
    """Shared loop: prompt forward, then one cached step per token; subclasses pick the next id."""

    @abstractmethod
    def pick(self, logprobs: torch.Tensor, generator: torch.Generator | None) -> int:  # [V]
        """The next token id from the next-token log-probabilities ``[V]``."""

    def generate(
        self,
        lm: CausalLM,
        prompt: Sequence[int],
        *,
        max_new_tokens: int,
        stop_ids: Sequence[int] = (),
        generator: torch.Generator | None = None,
    ) -> list[int]:
        if not prompt:
            raise InputError("the prompt holds no tokens to continue")
        limit = getattr(lm, "context_length", None)
        if limit is not None and len(prompt) >= limit:
            raise InputError(f"the prompt is {len(prompt)} tokens long; the model attends to {limit} at most")
        if limit is not None:
            max_new_tokens = min(max_new_tokens, limit - len(prompt))
        device = next(iter(getattr(lm, "parameters")()), torch.empty(0)).device if hasattr(lm, "parameters") else "cpu"
        ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)
        stops = set(int(s) for s in stop_ids)
        out: list[int] = []
        logprobs, cache = lm.next_logprobs(ids, None)
        for _ in range(max_new_tokens):
            nxt = self.pick(logprobs[0, -1], generator)
            out.append(nxt)
            if nxt in stops or len(out) >= max_new_tokens:
                break
            logprobs, cache = lm.next_logprobs(torch.tensor([[nxt]], device=device), cache)
        return out


class GreedyDecoding(_Loop):
    """The most probable token at every step (deterministic)."""

    citation: ClassVar[str] = "Greedy decoding."

    class Config(ComponentConfig):
        """``greedy`` has no options."""

    def pick(self, logprobs: torch.Tensor, generator: torch.Generator | None) -> int:
        return int(torch.argmax(logprobs))


class TopPDecoding(_Loop):
    """Nucleus sampling: sample from the smallest set of tokens whose probability reaches ``p``."""

    citation: ClassVar[str] = "Holtzman et al. (2020). The Curious Case of Neural Text Degeneration. ICLR."

    class Config(ComponentConfig):
        """Options of ``top-p``."""

        p: float = Field(0.9, gt=0, le=1, description="cumulative probability of the nucleus")
        temperature: float = Field(1.0, gt=0, description="divide log-probabilities by this before sampling")
        seed: int | None = Field(None, description="seed of the sampler (default: torch's global RNG)")

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def generate(self, lm: CausalLM, prompt: Sequence[int], *, max_new_tokens: int, stop_ids: Sequence[int] = (),
                 generator: torch.Generator | None = None) -> list[int]:
        if generator is None and self.config.seed is not None:
            generator = torch.Generator().manual_seed(self.config.seed)
        return super().generate(lm, prompt, max_new_tokens=max_new_tokens, stop_ids=stop_ids, generator=generator)

    def pick(self, logprobs: torch.Tensor, generator: torch.Generator | None) -> int:
        probs = torch.softmax(logprobs.float().cpu() / self.config.temperature, dim=-1)
        sorted_p, order = torch.sort(probs, descending=True)
        cum = torch.cumsum(sorted_p, dim=-1)
        keep = cum - sorted_p < self.config.p  # the token that crosses p is kept
        keep[0] = True
        kept = sorted_p * keep
        choice = torch.multinomial(kept / kept.sum(), 1, generator=generator)
        return int(order[choice])
