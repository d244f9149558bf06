"""repmix: a plugin framework for representation learning.

The import package is assembled from the repository's top-level folders:
``repmix.core`` (interfaces, specs, assembly, CLI), ``repmix.registry``
(entry-point discovery, hooks) and ``repmix.sdk`` (for plugin authors).
Importing :mod:`repmix` is cheap: it does not import torch.
"""

from __future__ import annotations

__version__ = "1.0.0"

#: Version of the plugin API. Plugins declare compatibility with the
#: distribution version (``Requires-Dist: repmix>=1,<2``); the API version
#: changes its major number exactly when the distribution's does.
API_VERSION = "1.0"

__all__ = ["API_VERSION", "__version__"]
