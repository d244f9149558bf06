"""Saved models: a directory with the resolved config, safetensors weights and a plugin lock.

Layout::

    config.yaml          the resolved config (extends/overrides applied)
    model.safetensors    the weights (shared parameters stored once)
    plugins.lock         JSON: each component's plugin distribution and version
    repmix.json          format version, repmix version, sha256 of the weights

Loading rebuilds the model from ``config.yaml`` through the registry and reads
the weights with safetensors. Nothing is ever unpickled: a directory holding a
pickle file is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
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
FORMAT_VERSION = 1
#: File suffixes that usually hold pickles; a saved model containing one is refused.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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


def save_model(model: Any, directory: str | Path) -> Path:
    """Save ``model`` (an :class:`~repmix.core.model.AssembledModel`) to ``directory``.

    Every file is written atomically; the manifest is written last, so a
    directory without ``repmix.json`` is never mistaken for a complete model.
    """
    from safetensors.torch import save_model as st_save_model

    from repmix.core.configio import dump_yaml

    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST_FILE).unlink(missing_ok=True)
        atomic_write_text(out / CONFIG_FILE, dump_yaml(model.config))
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{WEIGHTS_FILE}.", suffix=".tmp")
        os.close(fd)
        try:
            st_save_model(model, tmp, metadata={"format": "repmix", "repmix": repmix.__version__})
            os.replace(tmp, out / WEIGHTS_FILE)
        finally:
            Path(tmp).unlink(missing_ok=True)
        atomic_write_text(out / LOCK_FILE, json.dumps(plugin_lock(model), indent=2) + "\n")
        manifest = {
            "format": FORMAT_VERSION,
            "repmix": repmix.__version__,
            "weights_sha256": sha256_file(out / WEIGHTS_FILE),
        }
        atomic_write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise ArtifactError(f"cannot write saved model to {str(out)!r}: {exc.strerror or exc}") from None
    return out


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


def verify_model_dir(directory: Path) -> dict[str, Any]:
    """Refuse pickles, missing/tampered weights and missing or incompatible plugins. Returns the lock."""
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise ArtifactError(
            f"{str(directory)!r} contains {', '.join(pickles)}: repmix never loads pickle files",
            hint="saved models hold weights only as model.safetensors",
        )
    for name in (CONFIG_FILE, WEIGHTS_FILE, MANIFEST_FILE):
        if not (directory / name).is_file():
            raise ArtifactError(f"saved model {str(directory)!r} is incomplete: {name} is missing")
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        expected = manifest["weights_sha256"]
    except (ValueError, KeyError, TypeError):
        raise ArtifactError(f"{MANIFEST_FILE} in {str(directory)!r} is unreadable") from None
    actual = sha256_file(directory / WEIGHTS_FILE)
    if actual != expected:
        raise ArtifactError(
            f"{WEIGHTS_FILE} in {str(directory)!r} does not match its recorded checksum: "
            "the file was truncated, replaced or modified after saving",
            hint=f"expected sha256 {expected[:16]}..., found {actual[:16]}...",
        )
    lock: dict[str, Any] = {}
    if (directory / LOCK_FILE).is_file():
        try:
            lock = json.loads((directory / LOCK_FILE).read_text(encoding="utf-8"))
        except ValueError:
            raise ArtifactError(f"{LOCK_FILE} in {str(directory)!r} is not valid JSON") from None
    check_lock(lock)
    return lock


def check_lock(lock: dict[str, Any]) -> None:
    """Every locked plugin must be installed and compatible; version drift only warns."""
    from repmix.registry.discovery import OK
    from repmix.registry.registry import get_registry

    registry = get_registry()
    seen: set[str] = set()
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
            warnings.warn(
                f"saved with {dist} {comp['version']}, loading with {info.version}", stacklevel=3
            )


def load_model(path: str | Path, device: str = "cpu") -> Any:
    """Load a saved model (or a run directory's ``model/``) without unpickling anything."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model as st_load_model

    from repmix.core.assembly import build_model, plan_model
    from repmix.core.configio import load_config

    directory = find_model_dir(path)
    verify_model_dir(directory)
    plan = plan_model(load_config(directory / CONFIG_FILE))
    model = build_model(plan, load_pretrained=False)
    try:
        missing, unexpected = st_load_model(model, str(directory / WEIGHTS_FILE), strict=False, device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {WEIGHTS_FILE} in {str(directory)!r}: {exc}") from None
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
