"""Templates rendered by :func:`repmix.sdk.scaffold.create_plugin` (``string.Template`` syntax).

Shared files: ``pyproject.toml.tmpl``, ``README.md.tmpl``, ``package_init.py.tmpl``.
Per kind: ``component_<kind>.py.tmpl`` (a working example component),
``conformance_<kind>.py.tmpl`` (tests/test_conformance.py), ``reference_<kind>.py.tmpl``
(tests/test_reference.py) and ``usage_<kind>.yaml.tmpl`` (the README's config example).
"""
