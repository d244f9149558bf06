"""Run MTEB on a repmix model: :class:`MTEBEncoder` satisfies ``mteb.models.EncoderProtocol``.

Typical use::

    import mteb
    import repmix
    from repmix.integrations.mteb import MTEBEncoder

    encoder = MTEBEncoder(repmix.load("examples/minilm.yaml"), query_tower="query", document_tower="document")
    results = mteb.evaluate(encoder, mteb.get_tasks(tasks=["STSBenchmark"]))

MTEB hands :meth:`MTEBEncoder.encode` a DataLoader of text batches and says
whether they are queries, documents or neither (``prompt_type``); the adapter
sends queries and documents to their towers and everything else to ``tower``.
Needs ``mteb`` (``pip install 'repmix[integrations]'``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from repmix.core.errors import InputError
from repmix.core.model import AssembledModel
from repmix.integrations._components import pooled_similarity

try:
    from mteb.models import ModelMeta
    from mteb.models.abs_encoder import AbsEncoder, get_prompt
    from mteb.similarity_functions import cos_sim, dot_score, pairwise_cos_sim, pairwise_dot_score
    from mteb.types import PromptType
except ImportError as exc:  # pragma: no cover - exercised only without mteb
    raise ImportError(
        f"repmix.integrations.mteb needs the mteb package ({exc}); install it with: pip install 'repmix[integrations]'"
    ) from exc

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from torch.utils.data import DataLoader

__all__ = ["MTEBEncoder", "load_mteb_encoder"]

Similarity = Literal["cosine", "dot"]

_SIMILARITY_FN = {"cosine": (cos_sim, pairwise_cos_sim), "dot": (dot_score, pairwise_dot_score)}


class MTEBEncoder(AbsEncoder):
    """A repmix model as an MTEB encoder (dense, text).

    ``tower`` encodes inputs that are neither queries nor documents (STS,
    classification, clustering, ...); ``query_tower`` and ``document_tower``
    default to it. Every tower writes its pooled ``granularity`` (a name for
    all towers, or a mapping tower -> name; default: the tower's last declared
    pooler). ``similarity`` defaults to the model's own std
    ``cosine``/``dot`` alignment over those towers, else cosine. ``prompts``
    maps MTEB prompt keys (``query``, ``document``, a task type or name) to a
    prefix put before each input, as sentence-transformers' prompts are.
    """

    def __init__(
        self,
        model: AssembledModel,
        *,
        tower: str | None = None,
        query_tower: str | None = None,
        document_tower: str | None = None,
        granularity: str | Mapping[str, str] | None = None,
        similarity: Similarity | None = None,
        prompts: Mapping[str, str] | None = None,
        batch_size: int = 32,
        name: str = "repmix/model",
        revision: str | None = None,
    ) -> None:
        if not isinstance(model, AssembledModel):
            raise InputError(f"MTEBEncoder wraps a repmix model, got {type(model).__name__}")
        self.model = model
        self.tower = tower or model.default_tower()
        self.query_tower = query_tower or self.tower
        self.document_tower = document_tower or self.tower
        towers = sorted({self.tower, self.query_tower, self.document_tower})
        if isinstance(granularity, Mapping):
            for t in granularity:
                if t not in towers:
                    raise InputError(
                        f"granularity names tower {t!r}, which the adapter does not use ({', '.join(towers)})"
                    )
        #: Tower -> the pooled granularity it writes.
        self.granularities: dict[str, str] = {}
        for t in towers:
            model.tower(t)  # an unknown tower is an InputError naming the model's towers
            chosen = granularity.get(t) if isinstance(granularity, Mapping) else granularity
            gran = chosen or model.default_granularity(t)
            self.granularities[t] = gran
            shapes = model.granularities(t)
            if shapes.get(gran) != "pooled":
                raise InputError(
                    f"tower {t!r} has no pooled granularity {gran!r}; pooled ones: "
                    f"{', '.join(g for g, s in shapes.items() if s == 'pooled') or '(none)'}",
                    hint="MTEB scores one vector per input: name a pooled granularity",
                )
        if similarity is not None and similarity not in _SIMILARITY_FN:
            raise InputError(f"similarity must be one of {', '.join(_SIMILARITY_FN)}, got {similarity!r}")
        derived = pooled_similarity(model, set(self.granularities.items()))
        self.similarity_name: Similarity = similarity or ("dot" if derived == "dot" else "cosine")
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.model_prompts = dict(prompts) if prompts else None
        n_parameters = sum(p.numel() for p in model.parameters())
        n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        self.mteb_model_meta = ModelMeta(
            loader=None,
            name=name,
            revision=revision,
            release_date=None,
            languages=None,
            n_parameters=n_parameters,
            memory_usage_mb=round(n_bytes / 2**20, 2),
            max_tokens=None,
            embed_dim=None,
            license=None,
            open_weights=True,
            public_training_code=None,
            public_training_data=None,
            framework=["PyTorch"],
            similarity_fn_name=self.similarity_name,
            use_instructions=bool(self.model_prompts),
            training_datasets=None,
            modalities=["text"],
        )

    def tower_for(self, prompt_type: PromptType | None) -> str:
        """The tower that encodes inputs of this prompt type."""
        if prompt_type == PromptType.query:
            return self.query_tower
        if prompt_type == PromptType.document:
            return self.document_tower
        return self.tower

    def encode(
        self,
        inputs: DataLoader[Any],
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """One float32 row per input text, from the tower that ``prompt_type`` selects."""
        texts: list[str] = []
        for batch in inputs:
            if "text" not in batch:
                raise InputError(
                    f"task {task_metadata.name!r} gives {', '.join(sorted(batch))} inputs; "
                    "the repmix MTEB adapter encodes text"
                )
            texts.extend(batch["text"])
        prompt = get_prompt(self.model_prompts, task_metadata, prompt_type)
        if prompt:
            texts = [prompt + text for text in texts]
        tower = self.tower_for(prompt_type)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return self.model.encode(
            texts,
            tower=tower,
            granularity=self.granularities[tower],
            batch_size=int(kwargs.get("batch_size") or self.batch_size),
            progress=bool(kwargs.get("show_progress_bar", False)),
        )

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        """Every row of ``embeddings1`` against every row of ``embeddings2``."""
        return _SIMILARITY_FN[self.similarity_name][0](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        """Row ``i`` of ``embeddings1`` against row ``i`` of ``embeddings2``."""
        return _SIMILARITY_FN[self.similarity_name][1](embeddings1, embeddings2)


def load_mteb_encoder(
    source: str | Path,
    overrides: Sequence[str] | None = None,
    *,
    device: str = "cpu",
    **kwargs: Any,
) -> MTEBEncoder:
    """:func:`repmix.load` then :class:`MTEBEncoder`: ``source`` is a config, saved model or run directory.

    ``kwargs`` go to :class:`MTEBEncoder` (``query_tower``, ``document_tower``, ...);
    the MTEB model name defaults to ``repmix/<source name>``.
    """
    from repmix.core.loading import load

    model = load(source, overrides, device=device)
    kwargs.setdefault("name", f"repmix/{Path(source).stem or 'model'}")
    return MTEBEncoder(model, **kwargs)
