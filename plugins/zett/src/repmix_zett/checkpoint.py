"""A trained hypernetwork on disk: ``hypernetwork.safetensors`` + ``hypernetwork.json``.

``repmix zett train-hypernetwork`` writes the folder; ``zett.hypernetwork`` (``weights:``) reads
it. The JSON records the architecture and the source the network was trained for (model name,
vocabulary size, embedding width and :func:`~repmix_zett.vocabulary.vocabulary_fingerprint`), so
a checkpoint used with another source model is refused with one message instead of predicting
garbage. The source embeddings are not stored: they are the source model's own, read from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repmix.sdk import ConfigError

from .hypernet import HypernetArchitecture

FORMAT = "repmix-zett-hypernetwork/1"
WEIGHTS_FILE = "hypernetwork.safetensors"
META_FILE = "hypernetwork.json"


def checkpoint_dir(path: str) -> Path:
    """The checkpoint folder ``path`` names (a folder, or its JSON / safetensors file), or a ConfigError."""
    p = Path(path).expanduser()
    if p.is_file() and p.name in (WEIGHTS_FILE, META_FILE):
        p = p.parent
    if not p.is_dir():
        raise ConfigError(
            f"hypernetwork weights {path!r} not found",
            found=path,
            hint="train one first: repmix zett train-hypernetwork plugins/zett/configs/hypernetwork-minilm.yaml "
            "-o runs/zett-hypernetwork (or leave weights empty for an untrained network)",
        )
    missing = [n for n in (WEIGHTS_FILE, META_FILE) if not (p / n).is_file()]
    if missing:
        raise ConfigError(
            f"{str(p)!r} is not a hypernetwork checkpoint: {', '.join(missing)} missing",
            found=path,
            hint="point weights at a folder written by repmix zett train-hypernetwork",
        )
    return p


def read_meta(path: str) -> dict[str, Any]:
    """The checkpoint's JSON, checked for the fields the loader needs."""
    folder = checkpoint_dir(path)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {str(folder / META_FILE)!r}: {exc}", found=path) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(
            f"{str(folder / META_FILE)!r} is not a {FORMAT} file (format: {meta.get('format') if isinstance(meta, dict) else None!r})",
            found=path,
        )
    try:
        HypernetArchitecture(**meta["architecture"])
        src = meta["source"]
        int(src["vocab_size"]), int(src["n_embd"]), str(src["fingerprint"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{str(folder / META_FILE)!r} lacks a valid architecture or source ({exc})", found=path) from None
    return meta


def architecture(meta: dict[str, Any]) -> HypernetArchitecture:
    """The architecture recorded in a checkpoint's JSON."""
    return HypernetArchitecture(**meta["architecture"])


def save_checkpoint(folder: Path, module: Any, meta: dict[str, Any]) -> None:
    """Write the module's weights (without the source embeddings) and ``meta`` (format added)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items() if k != "source_embeddings"}
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / META_FILE).write_text(json.dumps({"format": FORMAT, **meta}, indent=2) + "\n", encoding="utf-8")


def load_weights(folder: Path, module: Any) -> None:
    """Load a checkpoint's weights into ``module`` (everything but the source embeddings)."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:  # noqa: BLE001 - a corrupt file is one message
        raise ConfigError(f"cannot read {str(folder / WEIGHTS_FILE)!r}: {exc}") from None
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "source_embeddings"]
    if missing or unexpected:
        raise ConfigError(
            f"{str(folder / WEIGHTS_FILE)!r} does not match the architecture in {META_FILE}: "
            f"missing {missing[:5]}, unexpected {list(unexpected)[:5]}"
        )
