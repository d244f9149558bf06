"""What the adapters need to know about a model's components, read from its plan.

Integrations never import a plugin (an import contract): components are
recognised by the entry point they were planned from (distribution and
entry-point name, as ``plugins.lock`` records them), and their settings are
read from their validated config blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repmix.core.errors import InputError
from repmix.core.model import AssembledModel

#: The distribution that ships the baselines the adapters know how to translate.
STD_DISTRIBUTION = "repmix-std"
#: std aligners that score pooled vectors the way a similarity function named here does.
STD_SIMILARITIES: dict[str, str] = {"cosine": "cosine", "dot": "dot"}


@dataclass(frozen=True)
class ComponentRef:
    """One built component with where it sits in the YAML and what it was planned from."""

    where: str
    instance: Any
    plan: Any

    @property
    def distribution(self) -> str:
        """The plugin distribution that provides it (``repmix-std``, ...)."""
        entry = getattr(self.plan, "entry", None)
        return str(getattr(getattr(entry, "plugin", None), "distribution", ""))

    @property
    def name(self) -> str:
        """Its entry-point name within its plugin (``mean``, ``hf-transformer``, ...)."""
        entry = getattr(self.plan, "entry", None)
        return str(getattr(entry, "name", "") or getattr(self.plan, "type_name", ""))

    @property
    def qualified_name(self) -> str:
        """``plugin.name`` as a user writes it in YAML."""
        entry = getattr(self.plan, "entry", None)
        qualified = getattr(entry, "qualified_name", None)
        return str(qualified or getattr(self.plan, "type_name", "?"))

    @property
    def config(self) -> Any:
        """Its validated config (a pydantic model)."""
        return getattr(self.plan, "config", None)

    def is_std(self, *names: str) -> bool:
        """Whether it is one of the std components ``names``."""
        return self.distribution == STD_DISTRIBUTION and self.name in names

    def describe(self) -> str:
        """``model.towers.text.poolers.sentence (orma.attention-pool)``: for error messages."""
        return f"{self.where} ({self.qualified_name})"


def component_ref(model: AssembledModel, instance: Any) -> ComponentRef:
    """The plan entry of a built component instance of ``model``."""
    for where, (built, plan) in model.components.items():
        if built is instance:
            return ComponentRef(where, built, plan)
    raise InputError(
        f"the model carries no plan for its {type(instance).__name__} component",
        hint="build or load the model with repmix.load(CONFIG_OR_SAVED_DIR) so each component's configuration is known",
    )


def pooled_similarity(model: AssembledModel, used: set[tuple[str, str]]) -> str | None:
    """``cosine`` or ``dot`` when the model's first alignment between ``used`` (tower, granularity) pairs is std's.

    Both sides of the alignment must be among ``used`` (shared towers count as
    their owner). ``None`` when no such alignment is declared or it scores
    otherwise (then the caller picks its default).
    """
    owned = {(model.tower_alias.get(t, t), g) for t, g in used}
    for name, sides in model.alignment_between.items():
        if not all((model.tower_alias.get(t, t), g) in owned for t, g in sides):
            continue
        ref = component_ref(model, model.aligners[name])
        if ref.distribution == STD_DISTRIBUTION and ref.name in STD_SIMILARITIES:
            return STD_SIMILARITIES[ref.name]
        return None
    return None
