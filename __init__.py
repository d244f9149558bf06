"""repmix: a plugin framework for representation learning.

The repository root is the import package: each top-level folder is one
subpackage. ``repmix.core`` (the kernel: interfaces, the data that flows
between components, configs, assembly, saved models), ``repmix.engine``
(training, evaluation, ablations), ``repmix.cli`` (the ``repmix`` command),
``repmix.registry`` (entry-point discovery, hooks), ``repmix.sdk`` (the one
import a plugin needs) and ``repmix.integrations`` (MTEB, sentence-transformers).

One call gives a model::

    import repmix
    model = repmix.load("examples/minilm.yaml")        # a config, a saved model or a run
    vectors = model.encode(["a sentence", "another"])

Importing :mod:`repmix` is cheap: it does not import torch (``load`` and
``Model`` are imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "1.0.0"

#: Version of the plugin API. Plugins declare compatibility with the
#: distribution version (``Requires-Dist: repmix>=1,<2``); the API version
#: changes its major number exactly when the distribution's does.
API_VERSION = "1.0"

_LAZY = {"load": "repmix.core.loading", "Model": "repmix.core.model"}

__all__ = ["API_VERSION", "Model", "__version__", "load"]

if TYPE_CHECKING:
    from repmix.core.loading import load
    from repmix.core.model import Model


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'repmix' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
