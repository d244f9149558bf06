"""Ablations: a base config, a grid of dotted overrides and seeds, trained as independent processes.

A grid file (see docs/ablations.md)::

    name: pooler-vs-loss              # optional, used in report titles
    base: ../examples/tiny.yaml       # relative to this file
    grid:                             # Cartesian product
      model.towers.text.poolers.sentence.type: [mean, cls]
      model.losses.0.type: [mnrl, info-nce]
    zip:                              # varied together as one axis
      train.lr: [1.0e-4, 5.0e-5]
      train.batch_size: [16, 32]
    seeds: [0, 1]                     # sets train.seed

expands to one *variant* per combination and seed. :func:`prepare` loads and
validates every variant before anything runs; :func:`run_ablation` trains the
variants (``repmix train`` subprocesses, ``jobs`` at a time, skipping finished
ones and resuming interrupted ones); :func:`write_results` writes
``results.csv``, ``results.md`` and ``results.png``.
"""

from __future__ import annotations

import hashlib
import contextlib
import io
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from repmix.core.config import (
    COMMAND_LINE,
    LocatedConfig,
    PathKey,
    apply_overrides,
    dotted,
    parse_override,
    parse_yaml,
)
from repmix.engine.compare import (
    MISSING,
    best_index,
    csv_table,
    format_number,
    format_value,
    lower_is_better,
    markdown_table,
    mean_std,
    read_metrics,
    read_run,
    run_finished,
    union_metrics,
)
from repmix.core.errors import ConfigError, InputError, RepmixError
from repmix.engine.runs import locked_dir

#: Keys of a grid file.
GRID_FILE_KEYS: dict[str, str] = {
    "base": "path of the base config, relative to the grid file",
    "grid": "dotted key -> list of values; every combination is a variant",
    "zip": "dotted key -> list of values, all the same length, varied together as one axis "
    "(or a list of such mappings, one axis each)",
    "seeds": "list of integer seeds; each sets train.seed (default: the base config's seed)",
    "name": "a name for the ablation, used in report titles",
    "labels": "dotted key -> short label used in variant names",
    "headline": "metric shown in progress lines (default: the first metric in metrics.json)",
    "description": "free-form text",
}
SEED_KEY = "train.seed"
PLAN_FILE = "plan.json"
VARIANTS_DIR = "variants"
LOGS_DIR = "logs"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
RESULTS_PNG = "results.png"
#: Exit status of ``repmix train`` stopped by Ctrl-C after writing a checkpoint.
INTERRUPTED = 130
#: Longest variant directory name before it is shortened with a hash.
MAX_NAME = 180
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


# --------------------------------------------------------------------------- grid file


@dataclass(frozen=True)
class Axis:
    """One varied dimension: a single grid key, or several zip keys that move together.

    ``values[i][j]`` is the value of ``keys[j]`` at position ``i``; ``where[i][j]``
    is the grid-file path of that value (for located errors).
    """

    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    where: tuple[tuple[PathKey, ...], ...]
    key_where: tuple[PathKey, ...]


@dataclass
class AblationSpec:
    """A parsed, self-consistent grid file (keys not yet checked against the base config)."""

    file: Path
    base: Path
    name: str
    axes: list[Axis]
    seeds: list[int] | None
    labels: dict[str, str]
    headline: str | None
    source: LocatedConfig
    #: Varied key -> a short name per value, in the order of its values (``labels: {key: {values: [...]}}``).
    value_labels: dict[str, list[str]] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """Every varied dotted key, in file order (grid keys, then zip keys)."""
        return [k for axis in self.axes for k in axis.keys]

    def key_where(self, key: str) -> PathKey:
        """Grid-file path of ``key`` (for errors)."""
        for axis in self.axes:
            if key in axis.keys:
                return axis.key_where[axis.keys.index(key)]
        return ()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _value_list(src: LocatedConfig, path: PathKey, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise src.error(
            f"the values of {path[-1]!r} must be a list", path, found=value,
            hint=f"write [{format_value(value)}] to use a single value",
        )
    if not value:
        raise src.error(f"the values of {path[-1]!r} are an empty list: give at least one", path)
    return value


def _check_grid_key(src: LocatedConfig, path: PathKey, key: Any) -> str:
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise src.error(
            "a grid key must be a dotted config key such as train.lr", path, found=key,
        )
    if "=" in key:
        raise src.error("a grid key must not contain '='", path, found=key)
    return key


def load_grid(path: str | Path) -> AblationSpec:
    """Parse and check a grid file: structure, value lists, zip lengths, seeds, labels."""
    from repmix.core.spec import check_keys

    from repmix.core.config import read_config_text

    p = Path(path)
    shown = str(path)
    text = read_config_text(p, what="grid")
    data, lines = parse_yaml(text, shown)
    if data is None:
        raise ConfigError("grid file is empty: expected base:, grid: and seeds:", file=shown, line=1)
    src = LocatedConfig(data if isinstance(data, dict) else {}, lines, shown)
    check_keys(src, (), data, GRID_FILE_KEYS, what="the grid file", required=("base",))
    base_raw = data["base"]
    if not isinstance(base_raw, str) or not base_raw:
        raise src.error("'base' must be the path of a config file", ("base",), found=base_raw)
    base = Path(base_raw) if Path(base_raw).is_absolute() else p.parent / base_raw
    if not base.is_file():
        raise src.error(f"base config {str(base)!r} does not exist", ("base",), found=base_raw,
                        hint="'base' is relative to the grid file's directory")

    axes: list[Axis] = []
    seen: dict[str, PathKey] = {}

    def claim(key: str, where: PathKey) -> None:
        if key in seen:
            raise src.error(f"{key!r} is varied twice (also at {dotted(seen[key])})", where, found=key)
        if key == SEED_KEY:
            raise src.error(
                f"vary the seed with 'seeds:', not as a grid key ({SEED_KEY})", where,
                hint="seeds: [0, 1, 2]",
            )
        seen[key] = where

    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise src.error("'grid' must map dotted keys to lists of values", ("grid",), found=grid)
    for key, values in grid.items():
        kpath: PathKey = ("grid", key)
        _check_grid_key(src, kpath, key)
        vals = _value_list(src, kpath, values)
        claim(key, kpath)
        canon = [_canonical(v) for v in vals]
        for i, c in enumerate(canon):
            if c in canon[:i]:
                raise src.error(f"value {format_value(vals[i])} is listed twice for {key!r}", kpath + (i,))
        axes.append(Axis((key,), tuple((v,) for v in vals), tuple((kpath + (i,),) for i in range(len(vals))), (kpath,)))

    zip_raw = data.get("zip")
    groups: list[tuple[PathKey, Any]]
    if zip_raw is None:
        groups = []
    elif isinstance(zip_raw, dict):
        groups = [(("zip",), zip_raw)] if zip_raw else []
    elif isinstance(zip_raw, list):
        groups = [(("zip", i), g) for i, g in enumerate(zip_raw)]
    else:
        raise src.error("'zip' must map dotted keys to equal-length lists (or be a list of such mappings)",
                        ("zip",), found=zip_raw)
    for gpath, group in groups:
        if not isinstance(group, dict) or not group:
            raise src.error("each zip axis must map dotted keys to equal-length lists", gpath, found=group)
        keys: list[str] = []
        columns: list[list[Any]] = []
        for key, values in group.items():
            kpath = gpath + (key,)
            _check_grid_key(src, kpath, key)
            columns.append(_value_list(src, kpath, values))
            claim(key, kpath)
            keys.append(key)
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            detail = ", ".join(f"{k} has {len(c)}" for k, c in zip(keys, columns, strict=True))
            raise src.error(f"zip lists must all have the same length: {detail}", gpath)
        rows = list(zip(*columns, strict=True))
        canon = [_canonical(list(r)) for r in rows]
        for i, c in enumerate(canon):
            if c in canon[:i]:
                raise src.error(f"zip position {i} repeats an earlier combination", gpath + (keys[0], i))
        axes.append(Axis(
            tuple(keys), tuple(rows),
            tuple(tuple(gpath + (k, i) for k in keys) for i in range(len(rows))),
            tuple(gpath + (k,) for k in keys),
        ))

    seeds: list[int] | None = None
    if "seeds" in data and data["seeds"] is not None:
        raw_seeds = _value_list(src, ("seeds",), data["seeds"])
        for i, s in enumerate(raw_seeds):
            if isinstance(s, bool) or not isinstance(s, int):
                raise src.error("seeds must be integers", ("seeds", i), found=s)
            if s in raw_seeds[:i]:
                raise src.error(f"seed {s} is listed twice", ("seeds", i))
        seeds = list(raw_seeds)

    labels_raw = data.get("labels") or {}
    if not isinstance(labels_raw, dict):
        raise src.error("'labels' must map varied keys to short labels", ("labels",), found=labels_raw)
    labels: dict[str, str] = {}
    value_labels: dict[str, list[str]] = {}
    count_of = {k: len(axis.values) for axis in axes for k in axis.keys}
    for key, label in labels_raw.items():
        lpath: PathKey = ("labels", key)
        if key not in seen:
            raise src.error(f"'labels' names {key!r}, which is not varied by grid: or zip:", lpath,
                            found=key, allowed=list(seen))
        if isinstance(label, dict):
            unknown = [k for k in label if k not in ("label", "values")]
            if unknown:
                raise src.error(f"unknown key {unknown[0]!r} in a label block", lpath + (unknown[0],),
                                found=unknown[0], allowed=["label", "values"])
            names = label.get("values")
            if names is not None:
                if not isinstance(names, list) or len(names) != count_of[key]:
                    raise src.error(f"'values' must list one short name for each of the {count_of[key]} values "
                                    f"of {key!r}", lpath + ("values",), found=names)
                for i, n in enumerate(names):
                    if not isinstance(n, str) or not _LABEL.match(n):
                        raise src.error("a value name must be letters, digits, '.', '_', '+' or '-'",
                                        lpath + ("values", i), found=n)
                # A zip key may repeat a value (its rows differ by the other keys): equal values may
                # share a name, different values may not.
                axis = next(a for a in axes if key in a.keys)
                column = [row[axis.keys.index(key)] for row in axis.values]
                for i, n in enumerate(names):
                    for j in range(i):
                        if names[j] == n and column[j] != column[i]:
                            raise src.error(f"two different values have the same name {n!r}",
                                            lpath + ("values",), found=names)
                value_labels[key] = list(names)
            label = label.get("label")
            if label is None:
                continue
        if not isinstance(label, str) or not _LABEL.match(label):
            raise src.error("a label must be letters, digits, '.', '_', '+' or '-'", lpath, found=label)
        if label in labels.values():
            raise src.error(f"label {label!r} is used twice", lpath)
        labels[key] = label

    name = data.get("name")
    if name is None:
        name = p.stem
    if not isinstance(name, str) or not name:
        raise src.error("'name' must be a non-empty string", ("name",), found=name)
    headline = data.get("headline")
    if headline is not None and (not isinstance(headline, str) or not headline):
        raise src.error("'headline' must be a metric name", ("headline",), found=headline)
    return AblationSpec(p, base, name, axes, seeds, labels, headline, src, value_labels)


# --------------------------------------------------------------------------- names

def _kind_label(parts: Sequence[Any]) -> str | None:
    """``pooler`` for ``model.towers.T.poolers.G``, ``loss`` for ``model.losses.0``, ... else ``None``."""
    parts = list(parts)
    if len(parts) >= 2 and parts[-2] == "poolers":
        return "pooler"
    if parts and parts[-1] in ("tokenizer", "encoder") and "towers" in parts:
        return str(parts[-1])
    if len(parts) == 3 and parts[:2] == ["model", "alignments"]:
        return "aligner"
    if len(parts) == 3 and parts[:2] == ["model", "losses"]:
        return "loss"
    if parts == ["data"]:
        return "data"
    if parts and parts[0] == "evaluate" and (len(parts) == 1 or (len(parts) == 2 and isinstance(parts[1], int))):
        return "evaluator"
    return None


def _split_key(key: str) -> list[Any]:
    return [int(p) if p.lstrip("-").isdigit() else p for p in key.split(".")]


def default_label(key: str) -> str:
    """A short readable label for a dotted key.

    A component's ``type`` (or the whole component block) is labelled by the
    component kind (``model.towers.text.poolers.sentence.type`` -> ``pooler``,
    ``model.losses.0.type`` -> ``loss``); any other key by its last
    non-numeric part (``train.lr`` -> ``lr``).
    """
    parts = _split_key(key)
    if parts[-1] == "type" and len(parts) > 1:
        kind = _kind_label(parts[:-1])
        if kind:
            return kind
    kind = _kind_label(parts)
    if kind:
        return kind
    for part in reversed(parts):
        if not isinstance(part, int):
            return _sanitize(str(part)) or key
    return _sanitize(key) or "key"


def _qualified_label(key: str) -> str:
    parts = [str(p) for p in _split_key(key)]
    if parts and parts[-1] == "type":
        parts = parts[:-1]
    while len(parts) > 1 and parts[0] in ("model", "towers"):
        parts = parts[1:]
    return _sanitize(".".join(parts)) or _sanitize(key)


def key_labels(keys: Sequence[str], user: dict[str, str] | None = None) -> dict[str, str]:
    """Labels for varied keys: the user's, else :func:`default_label`, qualified where two would clash."""
    user = user or {}
    labels = {k: user.get(k) or default_label(k) for k in keys}
    for _ in range(2):
        counts: dict[str, int] = {}
        for lab in labels.values():
            counts[lab] = counts.get(lab, 0) + 1
        clashing = [k for k in keys if counts[labels[k]] > 1 and k not in user]
        if not clashing:
            break
        for k in clashing:
            labels[k] = _qualified_label(k) if labels[k] != _qualified_label(k) else _sanitize(k)
    return labels


def _sanitize(text: str) -> str:
    return _SAFE.sub("-", text).strip("-.")


def _short_hash(value: Any) -> str:
    return hashlib.sha256(_canonical(value).encode("utf-8")).hexdigest()[:8]


def value_text(value: Any) -> str:
    """A value as it appears in a variant name: filesystem-safe and readable.

    Scalars as written (floats by ``repr``: ``0.0001``, ``5e-05``), a component
    block by its type and options (``mean-normalize-true``), a list joined by ``+``.
    Anything longer than 48 characters is shortened with a hash.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, dict):
        parts = [value_text(value["type"])] if "type" in value else []
        parts += [f"{_sanitize(str(k))}-{value_text(v)}" for k, v in value.items() if k != "type"]
        text = "-".join(parts) or "empty"
    elif isinstance(value, list):
        text = "+".join(value_text(v) for v in value) or "empty"
    else:
        text = str(value)
    safe = _sanitize(text) or "empty"
    if len(safe) > 48:
        safe = f"{safe[:39]}~{_short_hash(value)}"
    return safe


def _shorten(name: str, payload: Any) -> str:
    return name if len(name) <= MAX_NAME else f"{name[: MAX_NAME - 9]}~{_short_hash(payload)}"


# --------------------------------------------------------------------------- variants


@dataclass
class Variant:
    """One run of the ablation: a combination of grid values and a seed.

    ``group`` names the combination (shared by its seeds); ``name`` = group +
    seed names the run directory. ``overrides`` are the ``KEY=VALUE`` strings
    (grid values and ``train.seed``) applied after the command-line ones.
    """

    name: str
    group: str
    settings: dict[str, Any]
    seed: int
    overrides: list[str]
    config: LocatedConfig | None = None
    digest: str = ""


@dataclass
class Ablation:
    """A prepared ablation: every variant resolved and validated."""

    spec: AblationSpec
    variants: list[Variant]
    labels: dict[str, str]
    cli_overrides: list[str] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        """Combination names in grid order."""
        return list(dict.fromkeys(v.group for v in self.variants))


def override_text(key: str, value: Any) -> str:
    """``KEY=VALUE`` with the value as JSON, which configio parses back exactly (JSON is YAML 1.2)."""
    return f"{key}={json.dumps(value, ensure_ascii=False)}"


def expand(spec: AblationSpec, base_seed: int = 0, labels: dict[str, str] | None = None) -> list[Variant]:
    """All variants of ``spec`` in grid order (combinations in file order, seeds innermost).

    Names are deterministic: ``label=value`` per varied key joined by ``__``,
    then ``seed=N`` (e.g. ``pooler=mean__loss=mnrl__seed=0``); a grid with no
    varied keys has runs named ``seed=N`` in the group ``base``. Two
    combinations whose names would coincide after sanitising get a hash suffix.
    """
    labels = labels or key_labels(spec.keys, spec.labels)
    seeds = spec.seeds if spec.seeds is not None else [base_seed]
    combos: list[dict[str, Any]] = []
    shown: list[dict[str, str]] = []
    for positions in itertools.product(*(range(len(a.values)) for a in spec.axes)):
        settings: dict[str, Any] = {}
        texts: dict[str, str] = {}
        for axis, pos in zip(spec.axes, positions, strict=True):
            settings.update(zip(axis.keys, axis.values[pos], strict=True))
            for key, value in zip(axis.keys, axis.values[pos], strict=True):
                named = spec.value_labels.get(key)
                texts[key] = named[pos] if named else value_text(value)
        combos.append(settings)
        shown.append(texts)
    names = []
    for texts in shown:
        parts = [f"{labels[k]}={text}" for k, text in texts.items()]
        names.append("__".join(parts) if parts else "base")
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    names = [f"{n}~{_short_hash(s)}" if counts[n] > 1 else n for n, s in zip(names, combos, strict=True)]
    out: list[Variant] = []
    for group, settings in zip(names, combos, strict=True):
        for seed in seeds:
            run = f"seed={seed}" if group == "base" else f"{group}__seed={seed}"
            overrides = [override_text(k, v) for k, v in settings.items()]
            if spec.seeds is not None:
                overrides.append(override_text(SEED_KEY, seed))
            out.append(Variant(_shorten(run, [settings, seed]), group, dict(settings), seed, overrides))
    return out


def check_key(cfg: LocatedConfig, key: str, spec: AblationSpec) -> None:
    """Require the parent of a grid ``key`` to exist in ``cfg`` (the key itself may be new).

    Raises a :class:`ConfigError` at the key's line in the grid file, with a
    did-you-mean from the keys that exist at the level where the path breaks.
    """
    parts = _split_key(key)
    where = spec.key_where(key)
    node: Any = cfg.data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        here = dotted(parts[:i]) or "the top level"
        if isinstance(node, dict):
            if part in node or last:
                if not last:
                    node = node[part]
                continue
            raise spec.source.error(
                f"grid key {key!r} does not exist in the base config: {here} has no key {part!r}",
                where, found=str(part), allowed=[str(k) for k in node],
                hint="a grid key's parent must exist in the base config; only the last part may be new",
            )
        if isinstance(node, list):
            if isinstance(part, int) and -len(node) <= part < len(node):
                node = node[part]
                continue
            raise spec.source.error(
                f"grid key {key!r}: {here} is a list of {len(node)}, so {part!r} is not a valid index",
                where, hint=f"use an index from 0 to {len(node) - 1}",
            )
        raise spec.source.error(
            f"grid key {key!r}: {dotted(parts[:i])} is a value ({format_value(node)}), not a mapping", where,
        )


def _apply(cfg: LocatedConfig, variant: Variant, spec: AblationSpec) -> None:
    """Apply a variant's overrides to ``cfg`` (shorter keys first) and point their lines at the grid file."""
    items = list(variant.settings.items())
    items.sort(key=lambda kv: len(_split_key(kv[0])))
    for key, value in items:
        check_key(cfg, key, spec)
        apply_overrides(cfg, [override_text(key, value)])
        _relocate(cfg, tuple(_split_key(key)), spec, _value_where(spec, key, value))
    if spec.seeds is not None:
        apply_overrides(cfg, [override_text(SEED_KEY, variant.seed)])
        _relocate(cfg, ("train", "seed"), spec, ("seeds", spec.seeds.index(variant.seed)))


def _value_where(spec: AblationSpec, key: str, value: Any) -> PathKey:
    for axis in spec.axes:
        if key in axis.keys:
            j = axis.keys.index(key)
            target = _canonical(value)
            for i, row in enumerate(axis.values):
                if _canonical(row[j]) == target:
                    return axis.where[i][j]
    return ()


def _relocate(cfg: LocatedConfig, path: PathKey, spec: AblationSpec, where: PathKey) -> None:
    """Errors under ``path`` now point at the grid file, where the value was written."""
    n = len(path)
    for k in [k for k in cfg.lines if len(k) > n and k[:n] == path]:
        del cfg.lines[k]
    file, line = spec.source.where(where)
    cfg.lines[path] = (file or str(spec.file), line or 0)


def config_digest(data: dict[str, Any]) -> str:
    """SHA-256 of a resolved config (canonical JSON), to notice a changed base between re-runs."""
    return hashlib.sha256(_canonical(data).encode("utf-8")).hexdigest()


def validate_run_config(cfg: LocatedConfig) -> None:
    """What :func:`~repmix.engine.training.train_run` checks before computing anything.

    The ``train:`` block (and its device), the model pipeline, the data block and
    the ``evaluate:`` blocks; nothing is built or loaded.
    """
    from repmix.core.assembly import plan_model
    from repmix.engine.settings import plan_evaluations, plan_training_data, train_config
    from repmix.engine.training import resolve_device

    resolve_device(train_config(cfg))
    plan_model(cfg)
    plan_training_data(cfg)
    plan_evaluations(cfg)


def _check_cli_overrides(spec: AblationSpec, overrides: Sequence[str]) -> None:
    varied = set(spec.keys) | ({SEED_KEY} if spec.seeds is not None else set())
    for text in overrides:
        path, _ = parse_override(text)
        key = dotted(path)
        if key in varied:
            what = "seeds:" if key == SEED_KEY else "grid"
            raise ConfigError(
                f"override {text!r} sets {key!r}, which the {what} varies", file=COMMAND_LINE,
                hint="drop the override, or remove the key from the grid file",
            )
        # Variants are applied after the command line: a grid value replacing a whole block would drop it.
        above = sorted(v for v in varied if key.startswith(v + "."))
        if above:
            raise ConfigError(
                f"override {text!r} sets {key!r} inside {above[0]!r}, which the grid replaces as a whole "
                "in every variant, so the override would be lost", file=COMMAND_LINE,
                hint=f"put the setting into each value of {above[0]!r} in the grid file",
            )


def prepare(
    grid_file: str | Path,
    cli_overrides: Sequence[str] = (),
    validate: Callable[[LocatedConfig], None] | None = None,
) -> Ablation:
    """Load the grid, expand it, and resolve and validate every variant.

    Nothing is trained or written. The first invalid variant raises its error,
    prefixed with the variant's name; the hint counts how many variants fail.
    ``validate`` defaults to :func:`validate_run_config`.
    """
    from repmix.core.config import load_config

    spec = load_grid(grid_file)
    cli = list(cli_overrides)
    _check_cli_overrides(spec, cli)
    base_cfg = load_config(spec.base, cli)
    train = base_cfg.data.get("train")
    base_seed = train.get("seed", 0) if isinstance(train, dict) else 0
    if isinstance(base_seed, bool) or not isinstance(base_seed, int):
        raise base_cfg.error("train.seed must be an integer", ("train", "seed"), found=base_seed)
    labels = key_labels(spec.keys, spec.labels)
    variants = expand(spec, base_seed, labels)
    check = validate or validate_run_config
    failures: list[tuple[Variant, RepmixError]] = []
    for v in variants:
        cfg = base_cfg.copy()
        _apply(cfg, v, spec)
        try:
            check(cfg)
        except RepmixError as err:
            failures.append((v, err))
            continue
        v.config = cfg
        v.digest = config_digest(cfg.data)
    if failures:
        first_variant, first = failures[0]
        first.message = f"variant {first_variant.name!r}: {first.message}"
        names = ", ".join(v.name for v, _ in failures[:3]) + (", ..." if len(failures) > 3 else "")
        note = f"{len(failures)} of {len(variants)} variants are invalid ({names}); nothing was run"
        first.hint = f"{first.hint}\n{note}" if first.hint else note
        raise first
    return Ablation(spec, variants, labels, cli)


# --------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """What happened to one variant in :func:`run_ablation`."""

    variant: Variant
    status: str  # "finished", "skipped" (finished earlier) or "failed"
    seconds: float = 0.0
    log: Path | None = None
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def run_dir_of(out_dir: Path, variant: Variant) -> Path:
    """Where a variant's run directory lives."""
    return out_dir / VARIANTS_DIR / variant.name


def default_out_dir(grid_file: str | Path) -> Path:
    """``runs/ablate-<grid file stem>``, or ``runs/<stem>`` for a stem already starting with ``ablate-``."""
    stem = Path(grid_file).stem
    return Path("runs") / (stem if stem.startswith("ablate-") else f"ablate-{stem}")


def _read_plan(out_dir: Path) -> dict[str, Any]:
    path = out_dir / PLAN_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def check_previous(ablation: Ablation, out_dir: Path) -> None:
    """Refuse to reuse run directories made from a different config (a changed base or override).

    ``plan.json`` records the digest of every variant's resolved config; a
    variant whose directory exists and whose digest changed would otherwise be
    skipped or resumed with stale settings.
    """
    digests = _read_plan(out_dir).get("digests") or {}
    stale = [
        v.name for v in ablation.variants
        if run_dir_of(out_dir, v).exists() and v.name in digests and digests[v.name] != v.digest
    ]
    if stale:
        shown = ", ".join(stale[:4]) + (", ..." if len(stale) > 4 else "")
        raise InputError(
            f"{len(stale)} variant(s) in {str(out_dir)!r} were run with a different config "
            f"(the base config or the KEY=VALUE overrides changed since): {shown}",
            hint="write to another directory with -o, or delete those variant directories to run them again",
        )


def write_plan(ablation: Ablation, out_dir: Path) -> None:
    """Write ``plan.json``: the grid, every variant's overrides and config digest."""
    from repmix.core.artifacts import atomic_write_text

    previous = _read_plan(out_dir).get("digests") or {}
    digests = {**previous, **{v.name: v.digest for v in ablation.variants}}
    plan = {
        "name": ablation.spec.name,
        "grid": str(ablation.spec.file),
        "base": str(ablation.spec.base),
        "overrides": ablation.cli_overrides,
        "keys": ablation.spec.keys,
        "labels": ablation.labels,
        "variants": [
            {"name": v.name, "group": v.group, "seed": v.seed, "settings": v.settings,
             "overrides": v.overrides, "digest": v.digest}
            for v in ablation.variants
        ],
        "digests": digests,
    }
    atomic_write_text(out_dir / PLAN_FILE, json.dumps(plan, indent=2, ensure_ascii=False) + "\n")


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def job_env(jobs: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a training subprocess: torch threads limited to cores / jobs (unless set)."""
    env = dict(os.environ if base is None else base)
    threads = str(max(1, available_cores() // max(1, jobs)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def train_command(ablation: Ablation, variant: Variant, run_dir: Path, resume: bool) -> list[str]:
    """The ``repmix train`` command line of a variant (``--resume`` when it was interrupted)."""
    cmd = [sys.executable, "-m", "repmix", "train"]
    if resume:
        return [*cmd, "--resume", str(run_dir), "--no-progress"]
    return [*cmd, "-o", str(run_dir), "--no-progress", str(ablation.spec.base),
            *ablation.cli_overrides, *variant.overrides]


def resumable(run_dir: Path) -> bool:
    """True when an unfinished run directory holds a run that ``repmix train --resume`` can continue."""
    from repmix.engine.runs import CONFIG_FILE, is_run

    return is_run(run_dir) and (run_dir / CONFIG_FILE).is_file()


def _failure_reason(log: Path) -> str:
    """The last ``error:`` line of a log, else its last non-empty line."""
    try:
        lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    for ln in reversed(lines):
        if ln.startswith(("error:", "internal error:")) or "Error" in ln.split(":")[0]:
            return ln
    return lines[-1] if lines else ""


def headline_of(metrics: dict[str, float], wanted: str | None) -> str:
    """``metric=value`` for the headline metric (``wanted``, else the first), or ``""``."""
    if not metrics:
        return ""
    key = wanted if wanted in metrics else next(iter(metrics))
    return f"{key}={format_number(metrics[key])}"


class _Runner:
    """Runs variants as subprocesses, ``jobs`` at a time, printing one line per start and end."""

    def __init__(self, ablation: Ablation, out_dir: Path, jobs: int, echo: Callable[[str], None]) -> None:
        self.ablation = ablation
        self.out_dir = out_dir
        self.jobs = jobs
        self.echo = echo
        self.env = job_env(jobs)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.procs: set[subprocess.Popen[bytes]] = set()

    def say(self, text: str) -> None:
        with self.lock:
            self.echo(text)

    def run_one(self, index: int, total: int, variant: Variant) -> Outcome:
        run_dir = run_dir_of(self.out_dir, variant)
        log = self.out_dir / LOGS_DIR / f"{variant.name}.log"
        tag = f"[{index}/{total}]"
        if self.stop.is_set():
            return Outcome(variant, "failed", reason="not started: the ablation was interrupted")
        resume = resumable(run_dir)
        cmd = train_command(self.ablation, variant, run_dir, resume)
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        with log.open("a", encoding="utf-8") as fh:
            with self.lock:
                if self.stop.is_set():
                    return Outcome(variant, "failed", log=log, reason="not started: the ablation was interrupted")
                self.echo(f"{tag} start  {variant.name}" + ("  (resuming)" if resume else ""))
                stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                fh.write(f"=== {stamp} repmix ablate runs: {' '.join(cmd)}\n")
                fh.flush()
                # A session of its own: a terminal's Ctrl-C reaches only this process, which
                # forwards exactly one SIGINT (checkpoint, then stop) in interrupt().
                proc = subprocess.Popen(
                    cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                    start_new_session=True,
                )
                self.procs.add(proc)
            try:
                rc = proc.wait()
            finally:
                with self.lock:
                    self.procs.discard(proc)
        seconds = time.monotonic() - start
        if rc == 0 and run_finished(run_dir):
            metrics = read_metrics(run_dir)
            head = headline_of(metrics, self.ablation.spec.headline)
            self.say(f"{tag} done   {variant.name}  " + (f"{head}  " if head else "") + f"({seconds:.1f} s)")
            return Outcome(variant, "finished", seconds, log, metrics=metrics)
        if rc == INTERRUPTED and self.stop.is_set():
            reason = "interrupted; it resumes from its last checkpoint when the ablation runs again"
            self.say(f"{tag} stopped {variant.name}  ({seconds:.1f} s): {reason}")
            return Outcome(variant, "failed", seconds, log, reason=reason)
        if rc == 0:
            reason = "repmix train exited 0 but the run is not finished (no model/ or metrics.json)"
        else:
            reason = _failure_reason(log) or f"exit status {rc}"
        self.say(f"{tag} FAILED {variant.name}  (exit {rc}, {seconds:.1f} s): {reason}\n    log: {log}")
        return Outcome(variant, "failed", seconds, log, reason=reason)

    def interrupt(self, grace: float = 120.0) -> None:
        """Stop queued variants; ask running ones to checkpoint and stop; kill what outlives ``grace``.

        Each running ``repmix train`` gets one SIGINT, on which it finishes its
        step, writes a checkpoint and exits (so the next ``repmix ablate``
        resumes it). A second Ctrl-C while waiting kills them at once.
        """
        with self.lock:
            self.stop.set()
            procs = [p for p in self.procs if p.poll() is None]
        if not procs:
            return
        self.say(
            f"interrupt: asking {len(procs)} running variant(s) to write a checkpoint and stop "
            "(Ctrl-C again to stop at once)"
        )
        for p in procs:
            p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace
        try:
            for p in procs:
                try:
                    p.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        except KeyboardInterrupt:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                p.wait()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` (main thread only; else a no-op).

    Training processes run in their own sessions, so a terminal's Ctrl-C does not reach
    them; the ablation forwards it (:meth:`_Runner.interrupt`). A ``kill`` or a batch
    scheduler's SIGTERM would otherwise end the parent alone and orphan the running
    variants; this routes it through the same checkpoint-and-stop path.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_order(variants: Sequence[Variant]) -> list[Variant]:
    """Seed-major order: every combination's first seed before any second seed (early, broad results)."""
    seeds = list(dict.fromkeys(v.seed for v in variants))
    return sorted(variants, key=lambda v: seeds.index(v.seed))


def run_ablation(
    ablation: Ablation,
    out_dir: Path,
    *,
    jobs: int = 1,
    echo: Callable[[str], None] = print,
) -> list[Outcome]:
    """Train every unfinished variant (``jobs`` processes at a time) and return outcomes in grid order.

    Finished variants are skipped, interrupted ones resumed with ``--resume``.
    A failed variant does not stop the others. On Ctrl-C the running training
    processes write a checkpoint and stop (see :meth:`_Runner.interrupt`), and
    :class:`KeyboardInterrupt` is re-raised; SIGTERM is handled the same way.
    """
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output {str(out_dir)!r} is a file, not a directory")
    with locked_dir(out_dir, what="ablation output directory"):  # re-entrant: the CLI holds it already
        return _run_ablation(ablation, out_dir, jobs=jobs, echo=echo)


def _run_ablation(
    ablation: Ablation, out_dir: Path, *, jobs: int, echo: Callable[[str], None]
) -> list[Outcome]:
    """:func:`run_ablation` once the output directory is locked (each variant's ``repmix train`` locks its own)."""
    check_previous(ablation, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_plan(ablation, out_dir)
    order = run_order(ablation.variants)
    total = len(order)
    outcomes: dict[str, Outcome] = {}
    todo: list[tuple[int, Variant]] = []
    for i, v in enumerate(order, 1):
        run_dir = run_dir_of(out_dir, v)
        if run_finished(run_dir):
            metrics = read_metrics(run_dir)
            head = headline_of(metrics, ablation.spec.headline)
            echo(f"[{i}/{total}] skip   {v.name}  (finished earlier)" + (f"  {head}" if head else ""))
            outcomes[v.name] = Outcome(v, "skipped", metrics=metrics)
        else:
            todo.append((i, v))
    if todo:
        runner = _Runner(ablation, out_dir, min(jobs, len(todo)), echo)
        pool = ThreadPoolExecutor(max_workers=runner.jobs, thread_name_prefix="repmix-ablate")
        with sigterm_as_interrupt():
            try:
                futures = [pool.submit(runner.run_one, i, total, v) for i, v in todo]
                for fut in as_completed(futures):
                    o = fut.result()
                    outcomes[o.variant.name] = o
            except BaseException:
                runner.interrupt()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
    return [outcomes[v.name] for v in ablation.variants]


# --------------------------------------------------------------------------- results


@dataclass
class GroupStats:
    """Mean and standard deviation over seeds of one combination's finished runs."""

    group: str
    settings: dict[str, Any]
    runs: int
    finished: int
    stats: dict[str, tuple[float, float, int]]  # metric -> (mean, std, n)
    values: dict[str, list[float]]


def collect(ablation: Ablation, out_dir: Path) -> tuple[list[dict[str, Any]], list[GroupStats], list[str]]:
    """Per-run rows, per-combination statistics and the metric names, read from the run directories."""
    rows: list[dict[str, Any]] = []
    for v in ablation.variants:
        info = read_run(run_dir_of(out_dir, v), v.name) if run_dir_of(out_dir, v).exists() else None
        status = info.status if info is not None else "not started"
        rows.append({"variant": v, "status": status, "metrics": info.metrics if info else {}})
    metrics = union_metrics(r["metrics"] for r in rows)
    groups: list[GroupStats] = []
    for g in ablation.groups:
        members = [r for r in rows if r["variant"].group == g]
        values = {m: [r["metrics"][m] for r in members if m in r["metrics"]] for m in metrics}
        stats = {m: (*mean_std(vals), len(vals)) for m, vals in values.items() if vals}
        groups.append(GroupStats(
            g, members[0]["variant"].settings, len(members),
            sum(1 for r in members if r["status"] == "finished"), stats, values,
        ))
    return rows, groups, metrics


def results_csv(ablation: Ablation, rows: list[dict[str, Any]], metrics: list[str]) -> str:
    """``results.csv``: one row per run (variant, run, varied keys, seed, status, every metric)."""
    keys = ablation.spec.keys
    headers = ["variant", "run", *keys, "seed", "status", *metrics]
    body = []
    for r in rows:
        v: Variant = r["variant"]
        m = r["metrics"]
        body.append([
            v.group, v.name, *(format_value(v.settings[k]) for k in keys), v.seed, r["status"],
            *(repr(m[name]) if name in m else "" for name in metrics),
        ])
    return csv_table(headers, body)


def _cell(stat: tuple[float, float, int] | None) -> str:
    if stat is None:
        return MISSING
    mean, std, n = stat
    return format_number(mean) if n < 2 else f"{format_number(mean)} ± {format_number(std)}"


def results_markdown(
    ablation: Ablation, rows: list[dict[str, Any]], groups: list[GroupStats], metrics: list[str],
    outcomes: Sequence[Outcome] = (), plot: bool = True,
) -> str:
    """``results.md``: mean ± std over seeds per combination, the best mean per metric in bold."""
    spec = ablation.spec
    finished = sum(1 for r in rows if r["status"] == "finished")
    seeds = list(dict.fromkeys(v.seed for v in ablation.variants))
    lines = [f"# Ablation: {spec.name}", ""]
    lines.append(f"Base config: `{spec.base}`; grid file: `{spec.file}`"
                 + (f"; overrides: `{' '.join(ablation.cli_overrides)}`" if ablation.cli_overrides else "") + ".")
    lines.append(f"{len(ablation.groups)} combination(s) x {len(seeds)} seed(s) "
                 f"({', '.join(str(s) for s in seeds)}) = {len(rows)} runs, {finished} finished.")
    lines.append("")
    lines.append(
        "Each cell is the mean ± sample standard deviation over the finished seeds (n); a single seed shows "
        "its value alone. The best mean of each metric is **bold**: higher is better (↑), except for metrics "
        "whose name contains `rank` or `loss`, where lower is better (↓)."
    )
    lines.append("")
    if not metrics:
        lines.append(
            "No metrics to compare: no finished run has any"
            + (" (does the base config have an evaluate: block?)." if finished else ".")
        )
    else:
        labels = [ablation.labels[k] for k in spec.keys]
        headers = ["variant", *labels, "n",
                   *(f"{m} {'↓' if lower_is_better(m) else '↑'}" for m in metrics)]
        # Bold marks the best of at least two variants with a value for the metric.
        bold = {
            m: best_index([g.stats[m][0] if m in g.stats else None for g in groups], m)
            if sum(m in g.stats for g in groups) > 1 else set()
            for m in metrics
        }
        body = []
        for i, g in enumerate(groups):
            cells = [g.group, *(format_value(g.settings[k]) for k in spec.keys), str(g.finished)]
            for m in metrics:
                text = _cell(g.stats.get(m))
                cells.append(f"**{text}**" if i in bold[m] else text)
            body.append(cells)
        right = set(range(1 + len(labels), len(headers)))
        lines.append(markdown_table(headers, body, right).rstrip("\n"))
        if plot:
            lines += ["", f"![results]({RESULTS_PNG})"]
    problems = [r for r in rows if r["status"] != "finished"]
    if problems:
        by_name = {o.variant.name: o for o in outcomes}
        lines += ["", "## Runs without results", ""]
        for r in problems:
            v = r["variant"]
            o = by_name.get(v.name)
            detail = r["status"]
            if o is not None and o.status == "failed":
                detail = f"failed: {o.reason}" + (f" (log: `{o.log}`)" if o.log else "")
            lines.append(f"- `{v.name}`: {detail}")
    return "\n".join(lines) + "\n"


#: Longest combination name written as a tick label of results.png; longer ones are numbered.
MAX_TICK_LABEL = 24


def tick_labels(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Tick labels of results.png and the key printed under it (empty when the names fit as ticks).

    Long combination names (several varied keys) squash rotated tick labels into the
    panels, so beyond :data:`MAX_TICK_LABEL` characters the combinations are numbered
    and the key lists ``"<number>: <name>"`` once.
    """
    if max((len(n) for n in names), default=0) <= MAX_TICK_LABEL:
        return list(names), []
    return [str(i + 1) for i in range(len(names))], [f"{i + 1}: {n}" for i, n in enumerate(names)]


def results_plot(groups: list[GroupStats], metrics: list[str], title: str) -> bytes:
    """``results.png``: one panel per metric, combinations on the x axis, error bars = std over seeds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    longest = max(len(g.group) for g in groups)
    ticks, key = tick_labels([g.group for g in groups])
    numbered = bool(key)
    rotate = not numbered and longest > 8
    panel_w = max(4.0, 0.55 * len(groups) + 1.5)
    panel_h = 3.2 + (0.0 if not rotate else min(3.0, 0.055 * longest))
    key_h = 0.3 + 0.17 * len(groups) if numbered else 0.0
    fig_w = max(panel_w * ncols, 0.075 * longest + 1.0 if numbered else 0.0)
    fig = Figure(figsize=(fig_w, panel_h * nrows + key_h), dpi=100)
    FigureCanvasAgg(fig)
    x = list(range(len(groups)))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        means = [g.stats[metric][0] if metric in g.stats else math.nan for g in groups]
        stds = [g.stats[metric][1] if metric in g.stats else 0.0 for g in groups]
        valid = [None if math.isnan(m) else m for m in means]
        best = best_index(valid, metric) if sum(v is not None for v in valid) > 1 else set()
        for i, g in enumerate(groups):
            pts = g.values.get(metric) or []
            if pts:
                ax.scatter([i] * len(pts), pts, s=12, color="0.6", zorder=2)
        colors = ["tab:orange" if i in best else "tab:blue" for i in x]
        for i in x:
            if not math.isnan(means[i]):
                ax.errorbar([i], [means[i]], yerr=[stds[i]], fmt="o", color=colors[i], capsize=4, zorder=3)
        arrow = "lower is better" if lower_is_better(metric) else "higher is better"
        ax.set_title(f"{metric} ({arrow})", fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels(ticks, rotation=30 if rotate else 0, ha="right" if rotate else "center", fontsize=8)
        ax.set_xlim(-0.5, len(groups) - 0.5)
        ax.grid(axis="y", alpha=0.3)
    import textwrap

    heading = textwrap.fill(f"{title}: mean ± std over seeds (grey: single seeds, orange: best)",
                            width=max(40, int(fig_w * 100 / 7.5)))  # wrapped, never cropped at the figure's edge
    fig.suptitle(heading, fontsize=11)
    title_h = 0.35 + 0.2 * heading.count("\n")
    height = panel_h * nrows + key_h
    if numbered:
        fig.text(0.01, 0.005, "\n".join(key), fontsize=8, family="monospace", va="bottom", ha="left")
    fig.tight_layout(rect=(0.0, key_h / height, 1.0, 1.0 - title_h / height))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_results(ablation: Ablation, out_dir: Path, outcomes: Sequence[Outcome] = ()) -> dict[str, Path]:
    """Write ``results.csv``, ``results.md`` and (when any metric exists) ``results.png``."""
    from repmix.core.artifacts import atomic_write_bytes, atomic_write_text

    rows, groups, metrics = collect(ablation, out_dir)
    written = {}
    atomic_write_text(out_dir / RESULTS_CSV, results_csv(ablation, rows, metrics))
    written["csv"] = out_dir / RESULTS_CSV
    plot = bool(metrics)
    atomic_write_text(out_dir / RESULTS_MD, results_markdown(ablation, rows, groups, metrics, outcomes, plot))
    written["md"] = out_dir / RESULTS_MD
    if plot:
        atomic_write_bytes(out_dir / RESULTS_PNG, results_plot(groups, metrics, ablation.spec.name))
        written["png"] = out_dir / RESULTS_PNG
    return written


def describe(ablation: Ablation, out_dir: Path) -> list[str]:
    """Dry-run lines: every variant, what would happen to it, and its overrides."""
    lines = []
    for v in ablation.variants:
        run_dir = run_dir_of(out_dir, v)
        if run_finished(run_dir):
            action = "skip (finished)"
        elif resumable(run_dir):
            action = "resume"
        else:
            action = "train"
        lines.append(f"{action:<16} {v.name}")
        for o in v.overrides:
            lines.append(f"{'':<16}   {o}")
    return lines
