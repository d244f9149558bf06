"""Saved models: a self-contained directory with the resolved config, weights, files and a plugin lock.

Layout::

    config.yaml          the resolved config (extends/overrides applied; never 'extends:')
    model.safetensors    the weights (shared parameters stored once)
    plugins.lock         JSON: each component's plugin distribution and version
    files/<path>/<key>/  files components read at build time (tokenizer files, vocabularies,
                         a model's config.json): Component.saved_files()
    README.md            the model card (Hugging Face format): components, plugins, data, metrics, citations
    repmix.json          format version, repmix version, the sha256 of every file above,
                         and which config keys point into files/

Loading verifies every checksum, points the bundled keys at the copies in
``files/``, rebuilds the model from ``config.yaml`` through the registry and
reads the weights with safetensors. Nothing is ever unpickled: a directory
holding a pickle file is refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import repmix
from repmix.core.errors import ArtifactError, PluginError

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
LOCK_FILE = "plugins.lock"
MANIFEST_FILE = "repmix.json"
CARD_FILE = "README.md"
FILES_DIR = "files"
#: 2: every file hashed, bundled files; 1 (read only): the weights' hash alone.
FORMAT_VERSION = 2
#: File suffixes that usually hold pickles; a saved model containing one is refused.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib")
#: Set to 1 to load a saved model whose plugin versions differ from its lock, or that has no lock.
ENV_ALLOW_MISMATCH = "REPMIX_ALLOW_PLUGIN_MISMATCH"


def file_mode() -> int:
    """The mode a newly created file gets under the current umask (0o644 under the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def remove_leftover_tmp(directory: str | Path) -> list[Path]:
    """Delete the temporary files and checkpoint folders an interrupted write left under ``directory``.

    Call only while holding the directory's lock (a resumed run, a new save):
    then no other process is writing them. Returns what was removed.
    """
    removed: list[Path] = []
    root = Path(directory)
    if not root.is_dir():
        return removed
    for p in sorted(root.rglob(".*.tmp*"), key=lambda q: len(q.parts), reverse=True):
        name = p.name
        if not (name.endswith(".tmp") or ".tmp-" in name):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())  # mkstemp creates 0600; a saved file follows the umask like any other
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's contents."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def plugin_lock(model: Any) -> dict[str, Any]:
    """The ``plugins.lock`` content for a built model."""
    return {"repmix": repmix.__version__, "components": list(getattr(model, "lock", []))}


def save_model(model: Any, directory: str | Path, *, metrics: dict[str, float] | None = None) -> Path:
    """Save ``model`` (an :class:`~repmix.core.model.AssembledModel`) to ``directory``, self-contained.

    Files that components read at build time (:meth:`Component.saved_files`)
    are copied under ``files/`` and the config points at the copies. Every
    file is written atomically; the manifest, which hashes all of them, is
    written last, so a directory without ``repmix.json`` is never mistaken for
    a complete model. ``metrics`` go into the model card.
    """
    from safetensors.torch import save_model as st_save_model

    from repmix.core.config import dump_yaml

    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST_FILE).unlink(missing_ok=True)
        remove_leftover_tmp(out)
        config = copy.deepcopy(model.config)
        config.pop("extends", None)
        qualify_types(config, list(getattr(model, "lock", [])))
        bundled = _bundle_files(model, out, config)
        atomic_write_text(out / CONFIG_FILE, dump_yaml(config))
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{WEIGHTS_FILE}.", suffix=".tmp")
        os.close(fd)
        try:
            st_save_model(model, tmp, metadata={"format": "repmix", "repmix": repmix.__version__})
            os.chmod(tmp, file_mode())
            os.replace(tmp, out / WEIGHTS_FILE)
        finally:
            Path(tmp).unlink(missing_ok=True)
        atomic_write_text(out / LOCK_FILE, json.dumps(plugin_lock(model), indent=2) + "\n")
        atomic_write_text(out / CARD_FILE, model_card(model, out.name, metrics))
        names = [CONFIG_FILE, WEIGHTS_FILE, LOCK_FILE, CARD_FILE, *_files_under(out, bundled)]
        manifest = {
            "format": FORMAT_VERSION,
            "repmix": repmix.__version__,
            "files": {name: sha256_file(out / name) for name in names},
            "bundled": bundled,
        }
        atomic_write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise ArtifactError(f"cannot write saved model to {str(out)!r}: {exc.strerror or exc}") from None
    return out


def qualify_types(config: dict[str, Any], lock: list[Any]) -> None:
    """Write each locked component's qualified name (``std.mean``) as its block's ``type:``.

    A saved config then never depends on a short name staying unique: a
    plugin installed later that also registers ``mean`` cannot make it
    ambiguous. Blocks whose ``type`` differs from the lock's are left alone.
    """
    for comp in lock:
        if not isinstance(comp, dict) or not isinstance(comp.get("path"), str) or not isinstance(comp.get("name"), str):
            continue
        node: Any = config
        try:
            for part in comp["path"].split("."):
                node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            continue
        if isinstance(node, dict) and node.get("type") in (comp.get("type"), comp["name"]):
            node["type"] = comp["name"]


def _bundle_files(model: Any, out: Path, config: dict[str, Any]) -> dict[str, str]:
    """Copy each component's :meth:`saved_files` under ``files/``; point ``config`` at the copies.

    Returns dotted config key -> path relative to the saved directory.
    """
    bundled: dict[str, str] = {}
    shutil.rmtree(out / FILES_DIR, ignore_errors=True)
    for where, (component, _planned) in sorted(getattr(model, "components", {}).items()):
        files_of = getattr(component, "saved_files", None)
        wanted = files_of() if callable(files_of) else {}
        for key, source in wanted.items():
            target = Path(FILES_DIR) / where / key
            if isinstance(source, (list, tuple)):
                for f in source:
                    _copy_file(Path(f), out / target / Path(f).name)
                rel = target
            elif Path(source).is_dir():
                for f in sorted(Path(source).rglob("*")):
                    if f.is_file():
                        _copy_file(f, out / target / f.relative_to(source))
                rel = target
            else:
                rel = target / Path(source).name
                _copy_file(Path(source), out / rel)
            dotted_key = f"{where}.{key}"
            _set_dotted(config, dotted_key, rel.as_posix())
            bundled[dotted_key] = rel.as_posix()
    return bundled


def _copy_file(source: Path, target: Path) -> None:
    if not source.is_file():
        raise ArtifactError(f"a component asked to save {str(source)!r}, which is not a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, source.read_bytes())


def _files_under(out: Path, bundled: dict[str, str]) -> list[str]:
    """Every bundled file, relative to ``out`` (posix), sorted."""
    found: set[str] = set()
    for rel in bundled.values():
        p = out / rel
        if p.is_dir():
            found.update(f.relative_to(out).as_posix() for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            found.add(rel)
    return sorted(found)


def _set_dotted(config: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``a.b.0.c`` in nested dicts/lists."""
    node: Any = config
    parts = dotted_key.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[parts[-1]] = value


def model_card(model: Any, title: str, metrics: dict[str, float] | None = None) -> str:
    """A model card in the Hugging Face format: YAML front matter, components, data, metrics, citations."""
    from repmix.core.config import dump_yaml

    config = getattr(model, "config", {}) or {}
    lock = list(getattr(model, "lock", []))
    plugins = sorted({(c.get("distribution", ""), c.get("version", "")) for c in lock})
    front = {"library_name": "repmix", "tags": ["repmix", *sorted({c.get("type", "") for c in lock})]}
    lines = ["---", dump_yaml(front).strip(), "---", "", f"# {config.get('name') or title}", ""]
    if config.get("description"):
        lines += [str(config["description"]), ""]
    lines += [
        f"A [repmix](https://pypi.org/project/repmix/) model saved with repmix {repmix.__version__}. "
        "It loads offline and self-contained:",
        "",
        "```python",
        "import repmix",
        "model = repmix.load(\"path/to/this/folder\")",
        "vectors = model.encode([\"first input\", \"second input\"])",
        "```",
        "",
        "## Components",
        "",
        "| YAML path | kind | type | plugin | version |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| `{c.get('path', '')}` | {c.get('kind', '')} | `{c.get('name', c.get('type', ''))}` "
        f"| {c.get('distribution', '')} | {c.get('version', '')} |"
        for c in lock
    ]
    lines += ["", "Plugins needed: " + (", ".join(f"`{d}=={v}`" for d, v in plugins) or "none"), ""]
    lines += ["## Training data", ""]
    data = config.get("data")
    lines += ["```yaml", dump_yaml({"data": data}).strip(), "```", ""] if data else ["Not recorded (built without training).", ""]
    if "train" in config:
        lines += ["## Training settings", "", "```yaml", dump_yaml({"train": config["train"]}).strip(), "```", ""]
    lines += ["## Metrics", ""]
    if metrics:
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    else:
        lines += ["None recorded with this save."]
    citations = []
    for component, _planned in getattr(model, "components", {}).values():
        text = str(getattr(type(component), "citation", "") or "").strip()
        if text and text not in citations:
            citations.append(text)
    lines += ["", "## Citation", ""]
    lines += [f"- {c}" for c in citations] if citations else ["No component declares a citation."]
    return "\n".join(lines) + "\n"


def write_model_card(directory: str | Path, model: Any, metrics: dict[str, float] | None) -> None:
    """Rewrite a saved model's card (e.g. with metrics measured after saving) and its checksum."""
    out = Path(directory)
    manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
    atomic_write_text(out / CARD_FILE, model_card(model, out.name, metrics))
    manifest.setdefault("files", {})[CARD_FILE] = sha256_file(out / CARD_FILE)
    atomic_write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


def find_model_dir(path: str | Path) -> Path:
    """Locate a saved model: the directory itself, or ``model/`` inside a run directory."""
    p = Path(path)
    if not p.exists():
        raise ArtifactError(f"{str(p)!r} does not exist")
    if not p.is_dir():
        raise ArtifactError(f"{str(p)!r} is not a saved-model directory")
    for candidate in (p, p / "model"):
        if (candidate / MANIFEST_FILE).is_file() or (candidate / WEIGHTS_FILE).exists():
            return candidate
    raise ArtifactError(
        f"{str(p)!r} is not a saved model: it has no {MANIFEST_FILE}",
        hint=f"a saved model holds {CONFIG_FILE}, {WEIGHTS_FILE}, {LOCK_FILE} and {MANIFEST_FILE}",
    )


def init_weights_from(model: Any, path: str | Path) -> dict[str, int]:
    """Copy the weights of the saved model (or run) at ``path`` into ``model``'s tensors of the same name and shape.

    The source's checksums are verified first. Tensors of ``model`` that the source
    lacks, or holds with another shape, keep their initialisation. Returns the counts
    ``loaded``, ``shape_mismatch``, ``absent`` (tensors of ``model``) and ``unused``
    (tensors of the source that nothing took); an :class:`ArtifactError` when nothing
    matches, because then the two models share no part and the option is a mistake.
    """
    import torch
    from safetensors import SafetensorError, safe_open

    directory = find_model_dir(path)
    verify_model_dir(directory)
    own = model.state_dict()
    counts = {"loaded": 0, "shape_mismatch": 0, "absent": 0, "unused": 0}
    try:
        with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as source:
            names = set(source.keys())
            loaded_storage: set[int] = set()
            absent: list[Any] = []
            with torch.no_grad():
                for name, tensor in own.items():
                    if name not in names:
                        absent.append(tensor)
                        continue
                    value = source.get_tensor(name)
                    if tuple(value.shape) != tuple(tensor.shape):
                        counts["shape_mismatch"] += 1
                        continue
                    tensor.copy_(value.to(dtype=tensor.dtype, device=tensor.device))
                    counts["loaded"] += 1
                    loaded_storage.add(tensor.untyped_storage().data_ptr())
            # A tied tensor (a decoder sharing the input embeddings) is saved under one name only:
            # its other names are loaded through the shared storage, not absent.
            counts["absent"] = sum(1 for t in absent if t.untyped_storage().data_ptr() not in loaded_storage)
    except SafetensorError as exc:
        raise ArtifactError(f"cannot read {WEIGHTS_FILE} in {str(directory)!r}: {exc}") from None
    counts["unused"] = len(names - set(own))
    if counts["loaded"] == 0:
        raise ArtifactError(
            f"init_from: no tensor of {str(directory)!r} matches this model by name and shape",
            hint="initialise from a model built from the same components (e.g. the pre-training run of this encoder)",
        )
    return counts


def read_manifest(directory: Path) -> dict[str, Any]:
    """The parsed ``repmix.json`` of a saved model; clear errors when unreadable."""
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ArtifactError(f"{MANIFEST_FILE} in {str(directory)!r} is unreadable") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{MANIFEST_FILE} in {str(directory)!r} is not a JSON object")
    return manifest


def _recorded_checksums(directory: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """File name -> recorded sha256; format 1 recorded the weights only."""
    files = manifest.get("files")
    if files is None and "weights_sha256" in manifest:
        warnings.warn(
            f"{str(directory)!r} was saved by an older repmix that hashed the weights only; "
            "save it again to protect its config and lock too",
            stacklevel=4,
        )
        files = {WEIGHTS_FILE: manifest["weights_sha256"]}
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ArtifactError(f"{MANIFEST_FILE} in {str(directory)!r} has no valid 'files' checksums")
    fmt = manifest.get("format", 1)
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise ArtifactError(f"{MANIFEST_FILE} in {str(directory)!r}: 'format' must be a number, found {fmt!r}")
    if fmt > FORMAT_VERSION:
        raise ArtifactError(
            f"{str(directory)!r} was saved in format {fmt} by a newer repmix; this one reads up to {FORMAT_VERSION}",
            hint="upgrade repmix",
        )
    if fmt >= 2:
        for name in (CONFIG_FILE, WEIGHTS_FILE, LOCK_FILE):
            if name not in files:
                raise ArtifactError(f"{MANIFEST_FILE} in {str(directory)!r} records no checksum for {name}")
    return files


def allow_mismatch_default() -> bool:
    """True when ``REPMIX_ALLOW_PLUGIN_MISMATCH`` is set to a true value."""
    return os.environ.get(ENV_ALLOW_MISMATCH, "").strip().lower() not in ("", "0", "false", "no")


def verify_model_dir(directory: Path, *, allow_mismatch: bool | None = None) -> dict[str, Any]:
    """Refuse pickles, missing or modified files and missing or incompatible plugins. Returns the lock.

    A missing ``plugins.lock`` or a locked plugin version other than the
    installed one is refused unless ``allow_mismatch`` (default: the
    ``REPMIX_ALLOW_PLUGIN_MISMATCH`` environment variable), which warns instead.
    """
    allow = allow_mismatch_default() if allow_mismatch is None else allow_mismatch
    pickles = sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES
    )
    if pickles:
        raise ArtifactError(
            f"{str(directory)!r} contains {', '.join(pickles)}: repmix never loads pickle files",
            hint="saved models hold weights only as model.safetensors",
        )
    for name in (CONFIG_FILE, WEIGHTS_FILE, MANIFEST_FILE):
        if not (directory / name).is_file():
            raise ArtifactError(f"saved model {str(directory)!r} is incomplete: {name} is missing")
    manifest = read_manifest(directory)
    for name, expected in _recorded_checksums(directory, manifest).items():
        path = directory / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise ArtifactError(f"{MANIFEST_FILE} in {str(directory)!r} names a file outside the model: {name!r}")
        if not path.is_file():
            raise ArtifactError(f"saved model {str(directory)!r} is incomplete: {name} is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"{name} in {str(directory)!r} does not match its recorded checksum: "
                "the file was truncated, replaced or modified after saving",
                hint=f"expected sha256 {expected[:16]}..., found {actual[:16]}...",
            )
    lock: dict[str, Any] = {}
    if (directory / LOCK_FILE).is_file():
        try:
            lock = json.loads((directory / LOCK_FILE).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ArtifactError(f"{LOCK_FILE} in {str(directory)!r} is not valid JSON") from None
        _check_lock_shape(lock, directory)
    elif allow:
        warnings.warn(f"{str(directory)!r} has no {LOCK_FILE}: its plugins are not checked", stacklevel=3)
    else:
        raise ArtifactError(
            f"saved model {str(directory)!r} has no {LOCK_FILE}: which plugins built it is unknown",
            hint=f"save it again, or load it anyway with --allow-plugin-mismatch ({ENV_ALLOW_MISMATCH}=1)",
        )
    check_lock(lock, allow_mismatch=allow)
    return lock


def _check_lock_shape(lock: Any, directory: Path) -> None:
    """A lock is a JSON object whose ``components`` is a list of objects with string fields."""
    bad = f"{LOCK_FILE} in {str(directory)!r} is malformed"
    if not isinstance(lock, dict):
        raise ArtifactError(f"{bad}: expected a JSON object, found {type(lock).__name__}")
    comps = lock.get("components", [])
    if not isinstance(comps, list) or not all(
        isinstance(c, dict) and all(isinstance(v, str) for v in c.values()) for c in comps
    ):
        raise ArtifactError(f"{bad}: 'components' must be a list of objects with string values")


def check_lock(lock: dict[str, Any], *, allow_mismatch: bool = False) -> None:
    """Every locked plugin must be installed, compatible and at the locked version.

    A version other than the locked one is refused (the weights may not fit
    what the new version builds) unless ``allow_mismatch``, which warns.
    """
    from repmix.registry.discovery import OK
    from repmix.registry.registry import get_registry

    registry = get_registry()
    seen: set[str] = set()
    mismatched: list[str] = []
    for comp in lock.get("components", []):
        dist = comp.get("distribution", "")
        if dist in seen or dist.startswith("<"):
            continue
        seen.add(dist)
        info = registry.plugin(dist)
        if info is None:
            raise PluginError(
                f"this saved model needs plugin distribution {dist} {comp.get('version', '')} "
                f"(for {comp.get('kind')} {comp.get('type')!r}), which is not installed",
                hint=f"pip install '{dist}=={comp.get('version', '')}'",
            )
        if info.status != OK:
            raise PluginError(f"this saved model needs {dist}, which is {info.status}: {info.reason}")
        if comp.get("version") and info.version != comp["version"]:
            mismatched.append(f"{dist} {comp['version']} (installed: {info.version})")
    if mismatched and allow_mismatch:
        warnings.warn(f"saved with {', '.join(mismatched)}; loading anyway", stacklevel=3)
    elif mismatched:
        raise PluginError(
            f"this saved model was built with {', '.join(mismatched)}",
            hint="install the locked versions (pip install 'DIST==VERSION'), or load it anyway with "
            f"--allow-plugin-mismatch ({ENV_ALLOW_MISMATCH}=1)",
        )


def load_model(path: str | Path, device: str = "cpu", *, allow_mismatch: bool | None = None) -> Any:
    """Load a saved model (or a run directory's ``model/``) without unpickling anything.

    Component names are resolved through ``plugins.lock`` (qualified), so a
    plugin installed later that registers the same short name changes nothing.
    ``allow_mismatch`` accepts plugin versions other than the locked ones (see
    :func:`verify_model_dir`).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model as st_load_model

    from repmix.core.assembly import build_model, plan_model
    from repmix.core.config import load_config, parse_yaml

    directory = find_model_dir(path)
    lock = verify_model_dir(directory, allow_mismatch=allow_mismatch)
    raw, _ = parse_yaml((directory / CONFIG_FILE).read_text(encoding="utf-8"), str(directory / CONFIG_FILE))
    if isinstance(raw, dict) and "extends" in raw:
        raise ArtifactError(
            f"{CONFIG_FILE} in {str(directory)!r} contains 'extends:', but a saved config is fully resolved",
            hint="save the model again with repmix build or Model.save",
        )
    cfg = load_config(directory / CONFIG_FILE)
    qualify_types(cfg.data, list(lock.get("components", [])))
    bundled = read_manifest(directory).get("bundled") or {}
    if not isinstance(bundled, dict):
        raise ArtifactError(f"{MANIFEST_FILE} in {str(directory)!r}: 'bundled' must be a mapping")
    for key, rel in bundled.items():
        try:
            _set_dotted(cfg.data, str(key), str(directory / str(rel)))
        except (KeyError, IndexError, ValueError, TypeError):
            raise ArtifactError(
                f"{MANIFEST_FILE} in {str(directory)!r} bundles files for {key!r}, which is not in {CONFIG_FILE}"
            ) from None
    plan = plan_model(cfg)
    model = build_model(plan, load_pretrained=False)
    try:
        missing, unexpected = st_load_model(model, str(directory / WEIGHTS_FILE), strict=False, device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {WEIGHTS_FILE} in {str(directory)!r}: {exc}") from None
    except RuntimeError as exc:  # load_state_dict: size mismatch
        first = str(exc).strip().splitlines()
        detail = next((ln.strip() for ln in first if "size mismatch" in ln), first[0] if first else "")
        raise ArtifactError(
            f"weights in {str(directory)!r} do not fit the model built from its {CONFIG_FILE}: {detail}",
            hint="the config and the weights were saved from different models",
        ) from None
    if missing or unexpected:
        detail = []
        if missing:
            detail.append(f"missing {', '.join(sorted(missing)[:5])}")
        if unexpected:
            detail.append(f"unexpected {', '.join(sorted(unexpected)[:5])}")
        raise ArtifactError(
            f"weights in {str(directory)!r} do not fit the model built from its config ({'; '.join(detail)})"
        )
    model.to(device)
    model.eval()
    return model
