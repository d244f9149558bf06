"""YAML configs: safe loading with line numbers, ``extends:``, dotted overrides.

Every value keeps the file and line it came from, so errors found later (an
unknown component, a bad value) can point at the exact place in the YAML.
Only YAML's safe types are constructed: a config can never import Python.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from repmix.core.errors import ConfigError, InputError

PathKey = tuple[Any, ...]
COMMAND_LINE = "<command line>"

#: Largest config file read, in bytes (``extends:`` parents and grid files too).
MAX_CONFIG_BYTES = 1_000_000
#: Deepest nesting of mappings and lists in one YAML document.
MAX_YAML_DEPTH = 64
#: Most nodes one YAML document may expand to, aliases expanded (an alias bomb stops here).
MAX_YAML_NODES = 100_000
#: Suffixes ``extends:`` accepts.
YAML_SUFFIXES = (".yaml", ".yml")


class YamlLimitError(ConfigError):
    """A YAML document over one of the limits (size, depth, alias expansion)."""


def read_config_text(path: str | Path, *, what: str = "config") -> str:
    """Read a config file's text: a regular file of at most :data:`MAX_CONFIG_BYTES`, UTF-8.

    Never reads devices, pipes or directories, and never reads more than the
    limit plus one byte, so ``/dev/zero`` or a 50 MB file cannot exhaust memory.
    """
    p = Path(path)
    shown = str(path)
    if not p.exists():
        raise InputError(f"{what} file {shown!r} does not exist")
    if p.is_dir():
        raise InputError(f"{shown!r} is a directory, not a {what} file")
    if not p.is_file():
        raise InputError(f"{what} {shown!r} is not a regular file")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what} {shown!r}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise YamlLimitError(
            f"{what} file is larger than {MAX_CONFIG_BYTES:,} bytes; refusing to read it", file=shown
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} {shown!r} is not UTF-8 text") from None


def dotted(path: PathKey | str) -> str:
    """``("model", "towers", "text")`` -> ``"model.towers.text"``."""
    if isinstance(path, str):
        return path
    return ".".join(str(p) for p in path)


@dataclass
class LocatedConfig:
    """A config mapping plus the (file, line) each key came from."""

    data: dict[str, Any]
    lines: dict[PathKey, tuple[str, int]] = field(default_factory=dict)
    source: str | None = None

    def where(self, path: PathKey | str) -> tuple[str | None, int | None]:
        """File and line of ``path`` or, failing that, of its nearest ancestor."""
        key = split_path(path) if isinstance(path, str) else tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.source, None

    def error(self, message: str, path: PathKey | str, **kwargs: Any) -> ConfigError:
        """A :class:`ConfigError` located at ``path``."""
        file, line = self.where(path)
        return ConfigError(message, path=dotted(path), file=file, line=line, **kwargs)

    def locate(self, err: ConfigError, path: PathKey | str) -> ConfigError:
        """Fill in ``err``'s location from ``path`` where it has none."""
        if err.path is None:
            err.path = dotted(path)
        if err.file is None and err.line is None:
            err.file, err.line = self.where(err.path)
        return err

    def get(self, path: PathKey | str, default: Any = None) -> Any:
        """Value at a dotted path, or ``default``."""
        node: Any = self.data
        for part in split_path(path) if isinstance(path, str) else path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
                node = node[part]
            else:
                return default
        return node

    def has(self, path: PathKey | str) -> bool:
        """True when the dotted path exists."""
        sentinel = object()
        return self.get(path, sentinel) is not sentinel

    def copy(self) -> LocatedConfig:
        return LocatedConfig(copy.deepcopy(self.data), dict(self.lines), self.source)


def split_path(path: str) -> PathKey:
    """``"model.losses.0"`` -> ``("model", "losses", 0)``."""
    return tuple(int(p) if p.lstrip("-").isdigit() else p for p in path.split(".") if p != "")


class _Loader(yaml.SafeLoader):
    """Safe loader following YAML 1.2's core schema for booleans and floats.

    PyYAML implements YAML 1.1, where ``on``/``off``/``yes``/``no`` are
    booleans (so a loss's ``on:`` key would become ``True``) and ``1e-4`` is a
    string. Configs are written by people who expect 1.2 behaviour.

    Composing is bounded: nesting deeper than :data:`MAX_YAML_DEPTH` stops
    with a clear error before Python's recursion limit is reached.
    """

    file: str = ""
    _depth: int = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102 - PyYAML hook
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(
                    f"YAML nested deeper than {MAX_YAML_DEPTH} levels; configs are never this deep",
                    file=self.file, line=mark.line + 1 if mark is not None else None,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _yaml12_resolvers() -> None:
    import re

    resolvers = {
        ch: [(tag, rx) for tag, rx in lst if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
        for ch, lst in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _Loader.yaml_implicit_resolvers = resolvers
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )


_yaml12_resolvers()


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")


class _Budget:
    """Counts nodes visited (aliases expanded) and the collections being built, to stop alias bombs and cycles."""

    def __init__(self) -> None:
        self.nodes = 0
        self.open: set[int] = set()


def _to_python(
    node: yaml.Node,
    loader: _Loader,
    file: str,
    path: PathKey,
    lines: dict[PathKey, tuple[str, int]],
    budget: _Budget | None = None,
) -> Any:
    budget = budget if budget is not None else _Budget()
    budget.nodes += 1
    if budget.nodes > MAX_YAML_NODES:
        raise YamlLimitError(
            f"YAML expands to more than {MAX_YAML_NODES:,} values (aliases expanded); "
            "is this an alias bomb?",
            path=dotted(path) or None, file=file, line=node.start_mark.line + 1,
        )
    if len(path) > MAX_YAML_DEPTH:
        raise YamlLimitError(
            f"YAML nested deeper than {MAX_YAML_DEPTH} levels (aliases expanded)",
            path=None, file=file, line=node.start_mark.line + 1,
        )
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in budget.open:
            raise YamlLimitError(
                "recursive YAML alias: a node contains itself", path=dotted(path) or None,
                file=file, line=node.start_mark.line + 1,
            )
        budget.open.add(id(node))
        try:
            return _collection(node, loader, file, path, lines, budget)
        finally:
            budget.open.discard(id(node))
    return loader.construct_object(node, deep=True)


def _collection(
    node: yaml.Node, loader: _Loader, file: str, path: PathKey, lines: dict[PathKey, tuple[str, int]], budget: _Budget
) -> Any:
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise ConfigError(
            f"unsupported YAML tag {node.tag!r}: configs hold plain data only",
            path=dotted(path) or None, file=file, line=node.start_mark.line + 1,
        )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    "mapping keys must be plain scalars, found a "
                    + ("mapping" if isinstance(key_node, yaml.MappingNode) else "list"),
                    path=dotted(path) or None, file=file, line=key_node.start_mark.line + 1,
                )
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise ConfigError(
                    f"mapping keys must be plain scalars, found {key!r}",
                    path=dotted(path), file=file, line=key_node.start_mark.line + 1,
                )
            if key in out:
                raise ConfigError(
                    f"key {key!r} appears twice in the same mapping",
                    path=dotted(path + (key,)), file=file, line=key_node.start_mark.line + 1,
                )
            lines[path + (key,)] = (file, key_node.start_mark.line + 1)
            out[key] = _to_python(value_node, loader, file, path + (key,), lines, budget)
        return out
    items = []
    for i, item in enumerate(node.value):
        lines[path + (i,)] = (file, item.start_mark.line + 1)
        items.append(_to_python(item, loader, file, path + (i,), lines, budget))
    return items


def parse_yaml(text: str, file: str) -> tuple[Any, dict[PathKey, tuple[str, int]]]:
    """Parse YAML text safely; returns the data and a path -> (file, line) map.

    Bounded: at most :data:`MAX_CONFIG_BYTES` of text, :data:`MAX_YAML_DEPTH`
    levels of nesting and :data:`MAX_YAML_NODES` values with aliases expanded;
    recursive aliases are refused. Each limit is one :class:`YamlLimitError`.
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise YamlLimitError(f"YAML text is longer than {MAX_CONFIG_BYTES:,} characters; refusing to parse it", file=file)
    loader = _Loader(text)
    loader.file = file
    try:
        node = loader.get_single_node()
        lines: dict[PathKey, tuple[str, int]] = {}
        data = None if node is None else _to_python(node, loader, file, (), lines)
    except RecursionError:
        raise YamlLimitError(
            "YAML nested too deeply or recursive (merge keys '<<' that include themselves?)", file=file
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"YAML syntax error: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML syntax error: {exc}", file=file) from None
    finally:
        loader.dispose()
    return data, lines


def _component_name(block: dict[str, Any]) -> str | None:
    """The unqualified ``type`` of a component block (``std.mean`` and ``mean`` are one name)."""
    t = block.get("type")
    return t.rsplit(".", 1)[-1] if isinstance(t, str) else None


def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` into ``base``: mappings merge key by key, everything else is replaced.

    A component block whose ``type`` names another component replaces the base's block whole:
    the base's options belong to the component it replaces.
    """
    if isinstance(base, dict) and isinstance(override, dict):
        new_type, old_type = _component_name(override), _component_name(base)
        if new_type is not None and old_type is not None and new_type != old_type:
            return copy.deepcopy(override)
        out = dict(base)
        for k, v in override.items():
            out[k] = deep_merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)


def load_config(
    path: str | Path,
    overrides: list[str] | None = None,
    *,
    _stack: tuple[Path, ...] = (),
) -> LocatedConfig:
    """Load a YAML config, following ``extends:`` and applying dotted ``overrides``."""
    p = Path(path)
    shown = str(path)
    if _stack:
        _check_extended(p, shown, _stack[-1])
    resolved = p.resolve()
    if resolved in _stack:
        chain = " -> ".join(str(s) for s in (*_stack, resolved))
        raise ConfigError(f"circular 'extends:' chain: {chain}", file=str(_stack[-1]), path="extends")
    text = read_config_text(p)
    data, lines = parse_yaml(text, shown)
    if data is None:
        raise ConfigError("config is empty: expected a mapping with at least 'model:'", file=shown, line=1)
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
            type(data), type(data).__name__
        )
        raise ConfigError(f"config must be a mapping (key: value), found {kind}", file=shown, line=1)
    cfg = LocatedConfig(data, lines, shown)
    if "extends" in data:
        parents = data.pop("extends")
        parent_list = parents if isinstance(parents, list) else [parents]
        merged: LocatedConfig | None = None
        for i, parent in enumerate(parent_list):
            if not isinstance(parent, str):
                raise cfg.error("'extends:' must be a file path or a list of paths", ("extends",), found=parent)
            parent_path = (p.parent / parent) if not Path(parent).is_absolute() else Path(parent)
            base = load_config(parent_path, _stack=(*_stack, resolved))
            if merged is None:
                merged = base
            else:
                merged = LocatedConfig(deep_merge(merged.data, base.data), {**merged.lines, **base.lines}, merged.source)
        assert merged is not None
        cfg = LocatedConfig(
            deep_merge(merged.data, data),
            {**merged.lines, **{k: v for k, v in lines.items() if k != ("extends",)}},
            shown,
        )
    if overrides:
        apply_overrides(cfg, overrides)
    return cfg


def _check_extended(p: Path, shown: str, child: Path) -> None:
    """``extends:`` reads only regular files with a YAML suffix; never quote anything of another file."""
    where = {"file": str(child), "path": "extends"}
    if p.suffix.lower() not in YAML_SUFFIXES:
        raise ConfigError(
            f"'extends:' {shown!r} is not a YAML file: only {' or '.join(YAML_SUFFIXES)} files can be extended",
            **where,
        )
    if not p.exists():
        raise ConfigError(f"extended config {shown!r} does not exist", **where)
    if not p.is_file():
        raise ConfigError(f"'extends:' {shown!r} is not a regular file", **where)


def parse_override(text: str) -> tuple[PathKey, Any]:
    """``"train.lr=1e-4"`` -> (("train", "lr"), 0.0001)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    path = split_path(key) if key else ()
    if not sep or not key or not path or any(p == "" for p in key.split(".")):
        raise ConfigError(
            f"override {text!r} is not of the form dotted.key=value",
            file=COMMAND_LINE, hint="example: train.lr=1e-4",
        )
    try:
        value, _ = parse_yaml(raw, COMMAND_LINE) if raw.strip() else ("", {})
    except YamlLimitError as exc:
        raise ConfigError(f"override {text!r}: {exc.message}", file=COMMAND_LINE) from None
    except ConfigError:
        value = raw
    return path, value


def apply_overrides(cfg: LocatedConfig, overrides: list[str]) -> None:
    """Set each ``dotted.key=value`` in place; lists are indexed by number."""
    for text in overrides:
        path, value = parse_override(text)
        node: Any = cfg.data
        for i, part in enumerate(path[:-1]):
            if isinstance(node, list):
                if not isinstance(part, int) or not -len(node) <= part < len(node):
                    raise ConfigError(
                        f"override {text!r}: {dotted(path[: i + 1])} is not an index of a list of {len(node)}",
                        file=COMMAND_LINE,
                    )
                node = node[part]
                continue
            if not isinstance(node, dict):
                raise ConfigError(
                    f"override {text!r}: {dotted(path[:i])} is not a mapping", file=COMMAND_LINE
                )
            node = node.setdefault(part, {})
        last = path[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or not -len(node) <= last < len(node):
                raise ConfigError(f"override {text!r}: index out of range", file=COMMAND_LINE)
            node[last] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"override {text!r}: {dotted(path[:-1])} is not a mapping", file=COMMAND_LINE)
        where = (f"{COMMAND_LINE} {text!r}", 0)
        for stale in [k for k in cfg.lines if len(k) > len(path) and k[: len(path)] == path]:
            del cfg.lines[stale]  # a replaced block's keys now come from the command line
        cfg.lines[path] = where
        for sub in _paths(value, path):
            cfg.lines[sub] = where


def _paths(value: Any, base: PathKey) -> list[PathKey]:
    """Every key path inside ``value`` (mappings and lists), prefixed by ``base``."""
    out: list[PathKey] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        out.append(base + (k,))
        out.extend(_paths(v, base + (k,)))
    return out


def dump_yaml(data: Any) -> str:
    """Serialise a resolved config (plain types only) to YAML."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
