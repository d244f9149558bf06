"""``repmix new-plugin``: generate an installable plugin package with a working example component.

:func:`create_plugin` renders the templates in :mod:`repmix.sdk.templates`
(``string.Template`` syntax) into ``<directory>/repmix-<name>/``::

    repmix-<name>/
        pyproject.toml              entry point in the kind's group, Requires-Dist repmix>=1,<2, [test] extra
        README.md                   install, a YAML example, the sections a plugin's docs need
        src/repmix_<name>/__init__.py
        src/repmix_<name>/<kind>.py a real, minimal component of that kind
        tests/test_conformance.py   the sdk conformance kit on it, resolved through its entry point
        tests/test_reference.py     faithfulness tests of the example against an independent computation

The example components pass the conformance kit as generated: a masked mean
with a learned scale (pooler), symmetric InfoNCE (loss), a bilinear scorer
(aligner), an embedding-bag encoder (encoder) and a character tokenizer
(tokenizer). Importing this module imports neither torch nor any plugin.
"""

from __future__ import annotations

import re
import shutil
import uuid
from importlib import resources
from pathlib import Path
from string import Template

import repmix
from repmix.core.errors import InputError

#: Component kinds a plugin can be generated for, and their entry-point groups.
SCAFFOLD_GROUPS: dict[str, str] = {
    "tokenizer": "repmix.tokenizers",
    "encoder": "repmix.encoders",
    "pooler": "repmix.poolers",
    "aligner": "repmix.aligners",
    "loss": "repmix.losses",
}

#: One-line description of each kind's example component (shown in the README).
EXAMPLES: dict[str, str] = {
    "tokenizer": "a character tokenizer over a fixed alphabet",
    "encoder": "an embedding-bag encoder: token embeddings and their masked mean",
    "pooler": "a masked mean with a learned scale",
    "aligner": "a learned bilinear scorer, initialised as the dot product",
    "loss": "symmetric InfoNCE with in-batch negatives",
}

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_NAME_LENGTH = 64

#: Generated file -> template; ``{kind}`` is filled with the component kind.
_FILES: dict[str, str] = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "src/{package}/__init__.py": "package_init.py.tmpl",
    "src/{package}/{module}.py": "component_{kind}.py.tmpl",
    "tests/test_conformance.py": "conformance_{kind}.py.tmpl",
    "tests/test_reference.py": "reference_{kind}.py.tmpl",
}


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid plugin name, else raise :class:`InputError`."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InputError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and single dashes, "
            "starting with a letter (for example: colbert-v2)"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"plugin name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    if name == "repmix" or name.startswith("repmix-"):
        raise InputError(
            f"invalid plugin name {name!r}: give the name without the 'repmix-' prefix "
            f"(the distribution will be called repmix-{name.removeprefix('repmix-') or '<name>'})"
        )
    return name


def validate_kind(kind: str) -> str:
    """Return ``kind`` if components of that kind can be generated, else raise :class:`InputError`."""
    if kind not in SCAFFOLD_GROUPS:
        raise InputError(f"unknown component kind {kind!r}; choose one of: {', '.join(SCAFFOLD_GROUPS)}")
    return kind


def template_values(name: str, kind: str) -> dict[str, str]:
    """The values substituted into the templates for plugin ``name`` of ``kind``."""
    parts = name.split("-")
    title = " ".join(p.capitalize() for p in parts)
    class_name = "".join(p.capitalize() for p in parts)
    if parts[-1] != kind:
        class_name += kind.capitalize()
    major = int(repmix.__version__.split(".")[0])
    return {
        "name": name,
        "plugin": name,
        "dist": f"repmix-{name}",
        "package": "repmix_" + name.replace("-", "_"),
        "module": kind,
        "kind": kind,
        "group": SCAFFOLD_GROUPS[kind],
        "class_name": class_name,
        "title": title,
        "example": EXAMPLES[kind],
        "repmix_requirement": f"repmix>={major},<{major + 1}",
    }


def _template(filename: str) -> Template:
    return Template((resources.files("repmix.sdk.templates") / filename).read_text(encoding="utf-8"))


def render_files(name: str, kind: str) -> dict[str, str]:
    """Relative path -> content of every file of the plugin (nothing is written)."""
    values = template_values(validate_name(name), validate_kind(kind))
    values["usage"] = _template(f"usage_{kind}.yaml.tmpl").substitute(values).rstrip("\n")
    return {
        path.format(**values): _template(tmpl.format(kind=kind)).substitute(values)
        for path, tmpl in _FILES.items()
    }


def create_plugin(name: str, kind: str, directory: Path) -> Path:
    """Generate the plugin package ``repmix-<name>`` with an example ``kind`` component in ``directory``.

    Args:
        name: the plugin and component name (lowercase letters, digits, dashes).
        kind: ``tokenizer``, ``encoder``, ``pooler``, ``aligner`` or ``loss``.
        directory: where the package folder ``repmix-<name>`` is created
            (made if missing).

    Returns:
        The path of the new package folder.

    Raises:
        InputError: invalid name or kind, ``directory`` is a file, or the
            package folder already exists (nothing is overwritten).
    """
    files = render_files(name, kind)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{str(directory)!r} is a file, not a directory")
    target = directory / f"repmix-{name}"
    if target.exists():
        raise InputError(
            f"{str(target)!r} already exists; choose another name or directory (nothing was overwritten)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create directory {str(directory)!r}: {exc}") from None
    # Render into a hidden sibling first (created with the user's umask, unlike mkdtemp),
    # then rename: the package folder appears complete or not at all.
    staging = directory / f".repmix-{name}-{uuid.uuid4().hex[:12]}.partial"
    try:
        staging.mkdir()
        for rel, content in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if target.exists():
            raise InputError(f"{str(target)!r} was created concurrently; nothing was overwritten") from None
        raise InputError(f"cannot write the plugin into {str(directory)!r}: {exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def add_component(name: str, kind: str, plugin_dir: Path) -> list[Path]:
    """Add an example ``kind`` component called ``name`` to the existing plugin package at ``plugin_dir``.

    Writes ``src/<package>/<name>.py`` (the example component), its conformance
    and reference tests (``tests/test_conformance_<name>.py``,
    ``tests/test_reference_<name>.py``) and registers its entry point in the
    package's ``pyproject.toml``; reinstall the package (``pip install -e``) for
    the entry point to be seen.

    Raises:
        InputError: invalid name or kind, ``plugin_dir`` is not a repmix plugin
            package with one ``src/<package>``, or a file or entry point of that
            name exists already (nothing is overwritten).
    """
    import tomllib

    plugin_dir = Path(plugin_dir)
    pyproject = plugin_dir / "pyproject.toml"
    if not pyproject.is_file():
        raise InputError(f"{str(plugin_dir)!r} is not a plugin package: it has no pyproject.toml")
    try:
        text = pyproject.read_text(encoding="utf-8")
        project = tomllib.loads(text).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read {str(pyproject)!r}: {exc}") from None
    dist = str(project.get("name", ""))
    packages = sorted(p.parent.name for p in (plugin_dir / "src").glob("*/__init__.py"))
    if not dist.startswith("repmix-") or len(packages) != 1:
        raise InputError(
            f"{str(plugin_dir)!r} is not a repmix plugin package made like `repmix new-plugin` makes them",
            hint="expected project.name 'repmix-<plugin>' and exactly one src/<package>/__init__.py",
        )
    values = template_values(validate_name(name), validate_kind(kind))
    group = values["group"]
    existing = project.get("entry-points", {}).get(group, {})
    if name in existing:
        raise InputError(f"{dist} already registers a {kind} called {name!r} (nothing was overwritten)")
    module = name.replace("-", "_")
    values.update(plugin=dist.removeprefix("repmix-"), dist=dist, package=packages[0], module=module)
    values["usage"] = _template(f"usage_{kind}.yaml.tmpl").substitute(values).rstrip("\n")
    files = {
        f"src/{values['package']}/{module}.py": _template(f"component_{kind}.py.tmpl").substitute(values),
        f"tests/test_conformance_{module}.py": _template(f"conformance_{kind}.py.tmpl").substitute(values),
        f"tests/test_reference_{module}.py": _template(f"reference_{kind}.py.tmpl").substitute(values),
    }
    # The tests import the class from its module: the package's __init__ exports its first component only.
    package_import = f"from {values['package']} import {values['class_name']}"
    module_import = f"from {values['package']}.{module} import {values['class_name']}"
    files = {rel: content.replace(package_import, module_import) for rel, content in files.items()}
    clashes = [rel for rel in files if (plugin_dir / rel).exists()]
    if clashes:
        raise InputError(f"{', '.join(clashes)} already exist in {str(plugin_dir)!r} (nothing was overwritten)")
    line = f'{name} = "{values["package"]}.{module}:{values["class_name"]}"'
    header = f'[project.entry-points."{group}"]'
    if header in text:
        text = text.replace(header, f"{header}\n{line}", 1)
    else:
        text = text.rstrip("\n") + f"\n\n{header}\n{line}\n"
    written: list[Path] = []
    try:
        for rel, content in files.items():
            path = plugin_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            written.append(path)
        pyproject.write_text(text, encoding="utf-8")
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise InputError(f"cannot write into {str(plugin_dir)!r}: {exc}") from None
    return written
