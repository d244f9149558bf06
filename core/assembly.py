"""From a located config to a checked plan (no compute) to a built model.

:func:`plan_model` resolves every component through the registry, validates
each block with the component's own ``Config`` and runs the static
requires/provides checks, so ``repmix check`` rejects an impossible pipeline
before any weights are loaded. :func:`build_model` then instantiates the plan,
injecting runtime values (input dimensions, the tokenizer) into components.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repmix.core.config import LocatedConfig, PathKey, dotted, split_path
from repmix.core.errors import ConfigError, PluginError
from repmix.core.spec import (
    ALIGNMENT_KEYS,
    COMMON_KEYS,
    LOSS_KEYS,
    MODEL_KEYS,
    TOP_LEVEL_KEYS,
    TOWER_KEYS,
    check_keys,
    component_type,
    split_ref,
    validate_pydantic,
)
from repmix.registry.discovery import ComponentEntry
from repmix.registry.registry import Registry, get_registry

if TYPE_CHECKING:
    from repmix.core.dataflow import AlignmentView, EncoderSignature


@dataclass
class PlannedComponent:
    """A resolved, validated component block, not yet instantiated."""

    kind: str
    type_name: str
    entry: ComponentEntry
    cls: type
    config: Any
    path: PathKey
    trainable: bool = True
    lr: float | None = None
    nested: dict[str, PlannedComponent] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return dotted(self.path)


@dataclass
class TowerPlan:
    """A tower's components and the granularities it provides.

    ``signature`` is the encoder's static signature (the owner's for a
    ``shared_with`` tower).
    """

    name: str
    tokenizer: PlannedComponent | None
    encoder: PlannedComponent | None
    poolers: dict[str, PlannedComponent]
    granularities: dict[str, Any]
    num_layers: int | None
    shared_with: str | None = None
    signature: EncoderSignature | None = None
    #: the ``corruption:`` block (training-only corruption of the tokenized batch), if any
    corruptor: PlannedComponent | None = None


@dataclass
class AlignmentPlan:
    name: str
    component: PlannedComponent
    between: tuple[tuple[str, str], tuple[str, str]]


@dataclass
class LossPlan:
    component: PlannedComponent
    on: list[str]
    weight: float


@dataclass
class ModelPlan:
    """Everything ``repmix check`` validated: ready to build."""

    config: LocatedConfig
    towers: dict[str, TowerPlan]
    alignments: dict[str, AlignmentPlan]
    losses: list[LossPlan]

    def components(self) -> list[PlannedComponent]:
        """Every planned component, nested ones included, in build order."""
        out: list[PlannedComponent] = []

        def add(c: PlannedComponent | None) -> None:
            if c is None:
                return
            out.append(c)
            for n in c.nested.values():
                add(n)

        for t in self.towers.values():
            add(t.tokenizer)
            add(t.encoder)
            add(t.corruptor)
            for p in t.poolers.values():
                add(p)
        for a in self.alignments.values():
            add(a.component)
        for loss in self.losses:
            add(loss.component)
        return out


def _located_plugin_error(cfg: LocatedConfig, err: PluginError, path: PathKey) -> PluginError:
    file, line = cfg.where(path)
    where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
    return PluginError(f"{where}{dotted(path)}: {err.message}", hint=err.hint)


def plan_component(
    cfg: LocatedConfig,
    registry: Registry,
    kind: str,
    block: Any,
    path: PathKey,
    reserved: dict[str, str] | None = None,
) -> PlannedComponent:
    """Resolve and validate one ``{type: ...}`` block."""
    from repmix.core.components import KIND_BASES

    type_name = component_type(cfg, path, block, kind)
    try:
        entry = registry.resolve(kind, type_name)
        cls = registry.load(kind, type_name)
    except ConfigError as err:
        raise cfg.locate(err, path + ("type",)) from None
    except PluginError as err:
        raise _located_plugin_error(cfg, err, path + ("type",)) from None
    base = KIND_BASES.get(kind)
    if base is not None and not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(
            f"{entry.target} ({entry.plugin.distribution}) is registered as a {kind} "
            f"but does not subclass repmix.core.{base.__name__}"
        )
    # Datasets and evaluators hold no parameters: only ``type`` is common to them.
    common = {"type": COMMON_KEYS["type"]} if kind in ("dataset", "evaluator") else COMMON_KEYS
    reserved_keys = {**common, **(reserved or {})}
    params = {k: v for k, v in block.items() if k not in reserved_keys}
    config = validate_pydantic(
        cls.Config, params, cfg, path, extra_allowed=list(reserved_keys), what=f"{kind} {type_name!r}"
    )
    trainable = block.get("trainable", True)
    if not isinstance(trainable, bool):
        raise cfg.error("'trainable' must be true or false", path + ("trainable",), found=trainable)
    lr = block.get("lr")
    if lr is not None:
        try:
            lr = float(lr)
        except (TypeError, ValueError):
            raise cfg.error("'lr' must be a number", path + ("lr",), found=lr) from None
        if not math.isfinite(lr) or lr <= 0:
            raise cfg.error("'lr' must be a finite number above 0", path + ("lr",), found=lr)
    planned = PlannedComponent(kind, type_name, entry, cls, config, path, trainable, lr)
    for fname, (nkind, nblock) in cls.nested_components(config).items():
        planned.nested[fname] = plan_component(cfg, registry, nkind, nblock, path + (fname,))
    return planned


def _static(cfg: LocatedConfig, path: PathKey, fn: Any, *args: Any) -> Any:
    """Run a static signature check, locating any error it raises at ``path``."""
    try:
        return fn(*args)
    except ConfigError as err:
        raise cfg.locate(err, path) from None


def alignment_view(towers: dict[str, TowerPlan], plan: AlignmentPlan) -> AlignmentView:
    """The static view of one planned alignment that :meth:`Loss.check_alignments` receives."""
    from repmix.core.dataflow import AlignmentView

    (ta, ga), (tb, gb) = plan.between
    sig_a, sig_b = towers[ta].signature, towers[tb].signature
    assert sig_a is not None and sig_b is not None, "every planned tower has an encoder signature"
    return AlignmentView(
        plan.name,
        ((ta, ga), (tb, gb)),
        (towers[ta].granularities[ga], towers[tb].granularities[gb]),
        (sig_a, sig_b),
    )


def tower_views(towers: dict[str, TowerPlan]) -> dict[str, Any]:
    """Static views of every planned tower, which :meth:`Loss.check_towers` receives."""
    from repmix.core.dataflow import TowerView

    views = {}
    for name, tp in towers.items():
        owner = towers[tp.shared_with] if tp.shared_with is not None else tp
        assert tp.signature is not None, "every planned tower has an encoder signature"
        corr = owner.corruptor.type_name if owner.corruptor is not None else None
        views[name] = TowerView(name, dict(tp.granularities), tp.signature, corr)
    return views


def plan_model(cfg: LocatedConfig, registry: Registry | None = None) -> ModelPlan:
    """Validate a config and resolve every component, without instantiating anything."""
    from repmix.core.dataflow import GranularitySpec

    registry = registry or get_registry()
    check_keys(cfg, (), cfg.data, TOP_LEVEL_KEYS, what="the config", required=("model",))
    model = check_keys(cfg, ("model",), cfg.data["model"], MODEL_KEYS, what="model", required=("towers",))
    towers_raw = model["towers"]
    if not isinstance(towers_raw, dict) or not towers_raw:
        raise cfg.error("model.towers must map tower names to towers (at least one)", ("model", "towers"))
    for tname in towers_raw:
        if not isinstance(tname, str) or not tname or "." in tname:
            raise cfg.error(
                "a tower name must be a non-empty string without dots: 'between:' reads tower.granularity",
                ("model", "towers", tname), found=tname,
                hint="for example: query, text_encoder",
            )

    towers: dict[str, TowerPlan] = {}
    shared: dict[str, str] = {}
    for tname, traw in towers_raw.items():
        tpath: PathKey = ("model", "towers", tname)
        tdata = check_keys(cfg, tpath, traw, TOWER_KEYS, what=f"tower {tname!r}")
        if "shared_with" in tdata:
            if set(tdata) != {"shared_with"}:
                extra = sorted(set(tdata) - {"shared_with"})
                raise cfg.error(
                    f"tower {tname!r} uses shared_with and so cannot declare {', '.join(extra)}", tpath + (extra[0],)
                )
            shared[tname] = tdata["shared_with"]
            continue
        for key in ("tokenizer", "encoder"):
            if key not in tdata:
                raise cfg.error(f"tower {tname!r} is missing required key {key!r}", tpath)
        tok = plan_component(cfg, registry, "tokenizer", tdata["tokenizer"], tpath + ("tokenizer",))
        enc = plan_component(cfg, registry, "encoder", tdata["encoder"], tpath + ("encoder",))
        sig = _static(cfg, tpath + ("encoder",), enc.cls.signature, enc.config)
        grans: dict[str, GranularitySpec] = dict(sig.granularities)
        corruptor = None
        if tdata.get("corruption") is not None:
            cpath = tpath + ("corruption",)
            corruptor = plan_component(cfg, registry, "corruptor", tdata["corruption"], cpath)
            for gname, gspec in _static(cfg, cpath, corruptor.cls.signature, corruptor.config, sig).items():
                if gname in grans:
                    raise cfg.error(
                        f"the corruption's target granularity {gname!r} already exists in tower {tname!r}", cpath
                    )
                grans[gname] = gspec
        poolers: dict[str, PlannedComponent] = {}
        praw = tdata.get("poolers") or {}
        if not isinstance(praw, dict):
            raise cfg.error("poolers must map granularity names to pooler blocks", tpath + ("poolers",), found=praw)
        for gname, pblock in praw.items():
            ppath = tpath + ("poolers", gname)
            if gname in grans:
                raise cfg.error(
                    f"granularity {gname!r} already exists in tower {tname!r}; name the pooled one differently",
                    ppath,
                )
            pc = plan_component(cfg, registry, "pooler", pblock, ppath)
            current = type(sig)(grans, sig.num_layers, sig.layers_of)
            grans[gname] = _static(cfg, ppath, pc.cls.signature, pc.config, current)
            poolers[gname] = pc
        towers[tname] = TowerPlan(tname, tok, enc, poolers, grans, sig.num_layers, signature=sig,
                                  corruptor=corruptor)
    for tname, owner in shared.items():
        tpath = ("model", "towers", tname, "shared_with")
        if owner not in towers:
            raise cfg.error(
                f"tower {tname!r} is shared_with {owner!r}, which is not a tower with its own components",
                tpath,
                found=owner,
                allowed=sorted(towers),
            )
        o = towers[owner]
        towers[tname] = TowerPlan(
            tname, None, None, {}, o.granularities, o.num_layers, shared_with=owner, signature=o.signature
        )

    gran_names = {t: set(p.granularities) for t, p in towers.items()}
    alignments: dict[str, AlignmentPlan] = {}
    araw = model.get("alignments") or {}
    if not isinstance(araw, dict):
        raise cfg.error("model.alignments must map names to aligner blocks", ("model", "alignments"))
    for aname, ablock in araw.items():
        apath: PathKey = ("model", "alignments", aname)
        if not isinstance(ablock, dict) or "between" not in ablock:
            component_type(cfg, apath, ablock, "aligner")
            raise cfg.error(f"alignment {aname!r} is missing required key 'between'", apath,
                            hint="between: [tower.granularity, tower.granularity]")
        between = ablock["between"]
        if not isinstance(between, list) or len(between) != 2:
            raise cfg.error("'between' must list exactly two tower.granularity names", apath + ("between",), found=between)
        sides = tuple(split_ref(cfg, apath + ("between", i), ref, gran_names) for i, ref in enumerate(between))
        ac = plan_component(cfg, registry, "aligner", ablock, apath, ALIGNMENT_KEYS)
        (ta, ga), (tb, gb) = sides
        _static(cfg, apath, ac.cls.signature, ac.config, towers[ta].granularities[ga], towers[tb].granularities[gb])
        alignments[aname] = AlignmentPlan(aname, ac, sides)  # type: ignore[arg-type]

    losses: list[LossPlan] = []
    lraw = model.get("losses") or []
    if not isinstance(lraw, list):
        raise cfg.error("model.losses must be a list of loss blocks", ("model", "losses"), found=lraw)
    for i, lblock in enumerate(lraw):
        lpath: PathKey = ("model", "losses", i)
        lc = plan_component(cfg, registry, "loss", lblock, lpath, LOSS_KEYS)
        on = lblock.get("on")
        if on is None and lc.cls.num_alignments == 0:
            on = []
        if on is None:
            if len(alignments) != 1:
                raise cfg.error(
                    "loss needs 'on:' naming the alignment(s) it reads", lpath, allowed=sorted(alignments)
                )
            on = list(alignments)
        on_list = [on] if isinstance(on, str) else on
        if not isinstance(on_list, list) or not all(isinstance(o, str) for o in on_list):
            raise cfg.error("'on' must be an alignment name or a list of them", lpath + ("on",), found=on)
        for o in on_list:
            if o not in alignments:
                raise cfg.error(f"loss reads alignment {o!r}, which is not declared", lpath + ("on",),
                                found=o, allowed=sorted(alignments))
        _static(cfg, lpath, lc.cls.signature, lc.config, on_list)
        views = {o: alignment_view(towers, alignments[o]) for o in on_list}
        _static(cfg, lpath, lc.cls.check_alignments, lc.config, views)
        _static(cfg, lpath, lc.cls.check_towers, lc.config, tower_views(towers))
        weight = lblock.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise cfg.error("'weight' must be a finite number", lpath + ("weight",), found=weight)
        losses.append(LossPlan(lc, on_list, float(weight)))
    return ModelPlan(cfg, towers, alignments, losses)


def instantiate_component(
    cfg: LocatedConfig, pc: PlannedComponent, runtime: Any = None, built: dict[str, Any] | None = None
) -> Any:
    """Instantiate one planned component (its nested components first).

    ``runtime`` (a :class:`~repmix.core.components.Runtime`, default empty) gets the
    component's path and nested instances; ``trainable: false`` freezes the
    parameters; ``built`` (when given) records every instance by YAML path.
    Used by :func:`build_model` and by the engine for datasets and evaluators.
    """
    if runtime is None:
        from repmix.core.components import Runtime

        runtime = Runtime()
    runtime.path = pc.where
    runtime.nested = {
        name: instantiate_component(cfg, n, type(runtime)(load_pretrained=runtime.load_pretrained), built)
        for name, n in pc.nested.items()
    }
    try:
        obj = pc.cls(pc.config, runtime)
    except ConfigError as err:
        if err.path is not None and err.file is None and err.line is None:
            # A component names its own option (``path="entities"``): relative to its block.
            err.path = dotted(pc.path + split_path(err.path))
        raise cfg.locate(err, pc.path) from None
    if not pc.trainable and hasattr(obj, "parameters"):
        for p in obj.parameters():
            p.requires_grad_(False)
    if built is not None:
        built[pc.where] = obj
    return obj


def _instantiate(plan: ModelPlan, pc: PlannedComponent, runtime: Any, built: dict[str, Any]) -> Any:
    return instantiate_component(plan.config, pc, runtime, built)


def config_seed(cfg: LocatedConfig) -> int:
    """The ``train.seed`` of a config (0 when absent): the seed of model initialisation.

    The engine validates the whole ``train:`` block (:class:`repmix.engine.settings.TrainConfig`);
    the builder reads this one key, so a model can be built without the engine.
    """
    train = cfg.data.get("train")
    seed = train.get("seed", 0) if isinstance(train, dict) else 0
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise cfg.error("train.seed must be an integer", ("train", "seed"), found=seed)
    return seed


def load_component_class(kind: str, name: str) -> type:
    """The class registered as ``name`` (``plugin.name`` or a unique short name) for ``kind``.

    ``kind`` is one of tokenizer, encoder, pooler, aligner, loss, dataset,
    evaluator. Unknown or ambiguous names raise a :class:`ConfigError` with a
    did-you-mean; a plugin that fails to import raises a :class:`PluginError`.
    """
    from repmix.registry import get_registry

    return get_registry().load(kind, name)


def build_component(
    cfg: LocatedConfig,
    kind: str,
    block: Any,
    path: PathKey,
    *,
    registry: Registry | None = None,
    reserved: dict[str, str] | None = None,
) -> Any:
    """Resolve, validate and instantiate one component block (a dataset, an evaluator, a nested loss, ...).

    Errors are located at ``path`` in the config. ``reserved`` keys are read by
    the caller and hidden from the component's ``Config``.
    """
    from repmix.registry import get_registry

    planned = plan_component(cfg, registry or get_registry(), kind, block, path, reserved)
    return instantiate_component(cfg, planned)


def build_model(plan: ModelPlan, *, load_pretrained: bool = True, seed: int | None = None) -> Any:
    """Instantiate a checked plan. Same seed -> same initial weights."""
    import torch

    from repmix.core.components import Runtime
    from repmix.core.model import AssembledModel, Tower
    if seed is None:
        seed = config_seed(plan.config)
    torch.manual_seed(seed)
    built: dict[str, Any] = {}
    towers: dict[str, Tower] = {}
    alias: dict[str, str] = {}
    for tname, tp in plan.towers.items():
        if tp.shared_with is not None:
            continue
        assert tp.tokenizer is not None and tp.encoder is not None
        tok = _instantiate(plan, tp.tokenizer, Runtime(), built)
        enc = _instantiate(plan, tp.encoder, Runtime(tokenizer=tok, load_pretrained=load_pretrained), built)
        sig = tp.encoder.cls.signature(tp.encoder.config)
        poolers = {}
        grans = dict(sig.granularities)
        for gname, pc in tp.poolers.items():
            source = getattr(pc.config, "source", None)
            poolers[gname] = _instantiate(
                plan, pc, Runtime(input=grans.get(source), encoder=sig, tokenizer=tok), built
            )
            grans[gname] = tp.granularities[gname]
        corruptor = None
        if tp.corruptor is not None:
            corruptor = _instantiate(
                plan, tp.corruptor, Runtime(encoder=sig, tokenizer=tok, extras={"encoder": enc}), built
            )
        towers[tname] = Tower(tok, enc, poolers, corruptor)
        alias[tname] = tname
    for tname, tp in plan.towers.items():
        if tp.shared_with is not None:
            alias[tname] = tp.shared_with
    aligners = {}
    for name, ap in plan.alignments.items():
        (ta, ga), (tb, gb) = ap.between
        sides = (plan.towers[ta].granularities[ga], plan.towers[tb].granularities[gb])
        aligners[name] = _instantiate(plan, ap.component, Runtime(sides=sides), built)
    losses = [_instantiate(plan, lp.component, Runtime(), built) for lp in plan.losses]
    shapes = {t: {g: s.shape for g, s in tp.granularities.items()} for t, tp in plan.towers.items()}
    model = AssembledModel(
        towers,
        alias,
        aligners,
        {n: a.between for n, a in plan.alignments.items()},
        losses,
        [lp.on for lp in plan.losses],
        [lp.weight for lp in plan.losses],
        shapes,
        plan.config.data,
    )
    model.components = {c.where: (built[c.where], c) for c in plan.components()}
    model.lock = [
        {
            "path": c.where,
            "kind": c.kind,
            "type": c.type_name,
            "name": c.entry.qualified_name,
            "distribution": c.entry.plugin.distribution,
            "version": c.entry.plugin.version,
        }
        for c in plan.components()
    ]
    from repmix.registry.hooks import get_hooks

    get_hooks().repmix_build_finished(model=model, config=plan.config.data)
    return model
