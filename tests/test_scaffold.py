"""Tests of ``repmix.sdk.scaffold.create_plugin`` (what ``repmix new-plugin`` runs)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from repmix.core.errors import InputError
from repmix.sdk.conformance import ByteTokenizer, Case, check_component
from repmix.sdk.scaffold import SCAFFOLD_GROUPS, add_component, create_plugin, render_files, template_values

KINDS = list(SCAFFOLD_GROUPS)


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", KINDS)
def test_generates_an_installable_layout(tmp_path: Path, kind: str) -> None:
    root = create_plugin(f"my-{kind}-method", kind, tmp_path / "plugins")
    assert root == tmp_path / "plugins" / f"repmix-my-{kind}-method"
    package = f"repmix_my_{kind}_method"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == sorted(
        [
            "README.md",
            "pyproject.toml",
            f"src/{package}/__init__.py",
            f"src/{package}/{kind}.py",
            "tests/test_conformance.py",
            "tests/test_reference.py",
        ]
    )
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["name"] == f"repmix-my-{kind}-method"
    assert "repmix>=1,<2" in project["dependencies"]
    assert project["optional-dependencies"]["test"] == ["pytest>=7.4"]
    class_name = template_values(f"my-{kind}-method", kind)["class_name"]
    assert project["entry-points"] == {
        SCAFFOLD_GROUPS[kind]: {f"my-{kind}-method": f"{package}.{kind}:{class_name}"}
    }
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"
    for py in root.rglob("*.py"):
        compile(py.read_text(), str(py), "exec")
    readme = (root / "README.md").read_text()
    assert f"type: my-{kind}-method" in readme and "## Citation" in readme
    assert "$" not in "".join(p.read_text() for p in root.rglob("*") if p.is_file())
    assert not [p for p in (tmp_path / "plugins").iterdir() if p.name.startswith(".")]


def test_class_names() -> None:
    assert template_values("scaled-mean", "pooler")["class_name"] == "ScaledMeanPooler"
    assert template_values("my-pooler", "pooler")["class_name"] == "MyPooler"
    assert template_values("colbert2", "aligner")["class_name"] == "Colbert2Aligner"


@pytest.mark.parametrize(
    "name",
    ["Bad", "1abc", "a_b", "a--b", "-a", "a-", "", "with space", "repmix", "repmix-x", "x" * 65, "naïve"],
)
def test_rejects_invalid_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="plugin name"):
        create_plugin(name, "pooler", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_rejects_unknown_kinds(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown component kind 'dataset'; choose one of: tokenizer, encoder"):
        create_plugin("x", "dataset", tmp_path)


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    first = create_plugin("dup", "loss", tmp_path)
    (first / "README.md").write_text("mine")
    with pytest.raises(InputError, match="already exists"):
        create_plugin("dup", "pooler", tmp_path)
    assert (first / "README.md").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repmix-dup"]


def test_refuses_a_file_as_directory(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(InputError, match="is a file"):
        create_plugin("x", "loss", target)


def test_add_component_to_an_existing_package(tmp_path: Path) -> None:
    root = create_plugin("two-parts", "pooler", tmp_path)
    written = add_component("two-parts-loss", "loss", root)
    assert sorted(p.relative_to(root).as_posix() for p in written) == [
        "src/repmix_two_parts/two_parts_loss.py",
        "tests/test_conformance_two_parts_loss.py",
        "tests/test_reference_two_parts_loss.py",
    ]
    eps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]
    assert eps["repmix.poolers"] == {"two-parts": "repmix_two_parts.pooler:TwoPartsPooler"}
    assert eps["repmix.losses"] == {"two-parts-loss": "repmix_two_parts.two_parts_loss:TwoPartsLoss"}
    add_component("two-parts-other", "loss", root)  # a second entry in an existing group table
    eps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]
    assert set(eps["repmix.losses"]) == {"two-parts-loss", "two-parts-other"}
    module = load_module(root / "src" / "repmix_two_parts" / "two_parts_loss.py", "_scaffold_two_parts_loss")
    report = check_component(Case("loss", module.TwoPartsLoss, bad_configs=[{"temperature": 0}]))
    assert all(v == "passed" or v.startswith("skipped: ") for v in report.values())
    with pytest.raises(InputError, match="already registers a loss called 'two-parts-loss'"):
        add_component("two-parts-loss", "loss", root)
    with pytest.raises(InputError, match="not a plugin package"):
        add_component("x", "loss", tmp_path / "nowhere")


def test_render_files_writes_nothing(tmp_path: Path) -> None:
    files = render_files("only-render", "aligner")
    assert "src/repmix_only_render/aligner.py" in files
    assert "class OnlyRenderAligner(Aligner)" in files["src/repmix_only_render/aligner.py"]


@pytest.mark.parametrize("kind", KINDS)
def test_example_components_pass_the_kit_in_process(tmp_path: Path, kind: str) -> None:
    """Fast feedback on the templates; the slow test runs the generated tests installed."""
    name = f"inproc-{kind}"
    root = create_plugin(name, kind, tmp_path)
    values = template_values(name, kind)
    module = load_module(root / "src" / values["package"] / f"{kind}.py", f"_scaffold_{values['package']}")
    cls = getattr(module, values["class_name"])
    items = ["a", "hello world", "a longer item of text"]
    case = {
        "tokenizer": Case("tokenizer", cls, items=items, bad_items=[""]),
        "encoder": Case("encoder", cls, {"dim": 8}, tokenizer={"type": ByteTokenizer}, items=items),
        "pooler": Case("pooler", cls, bad_configs=[{"init_scale": 0}]),
        "aligner": Case("aligner", cls, {"init_noise": 0.1}, dim=16, bad_configs=[{"init_noise": -1.0}]),
        "loss": Case("loss", cls, bad_configs=[{"temperature": 0}]),
    }[kind]
    report = check_component(case)
    assert all(v == "passed" or v.startswith("skipped: ") for v in report.values())


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """One plugin of each kind, installed into a fresh venv layered on this one."""
    tmp = tmp_path_factory.mktemp("scaffold")
    plugins = {kind: create_plugin(f"scaffold-{kind}", kind, tmp / "plugins") for kind in KINDS}
    add_component("scaffold-extra-loss", "loss", plugins["pooler"])  # a second component in one package
    venv = tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    # --system-site-packages exposes the *base* interpreter's packages; this .pth file
    # adds the current environment's site-packages (repmix, torch, pytest, pip) as a
    # site directory, so its own .pth files (repmix's editable install) are processed.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    Path(purelib, "_repmix_parent_env.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", *map(str, plugins.values())],
        check=True,
        timeout=300,
    )
    return python, plugins


def venv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPMIX_", "PYTEST_", "PYTHONPATH"))}
    env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.mark.slow
def test_generated_plugins_pass_their_own_tests_when_installed(
    installed_plugins: tuple[Path, dict[str, Path]],
) -> None:
    python, plugins = installed_plugins
    tests = [str(p / "tests") for p in plugins.values()]
    result = subprocess.run(
        [str(python), "-m", "pytest", "-v", "-p", "no:cacheprovider", "--import-mode=importlib", *tests],
        capture_output=True, text=True, timeout=300, env=venv_env(), cwd=python.parent.parent.parent,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for kind in KINDS:
        assert f"test_conformance[{kind}-scaffold-{kind}-shapes] PASSED" in result.stdout
        assert f"test_conformance[{kind}-scaffold-{kind}-bad_config] PASSED" in result.stdout
    assert "test_conformance[loss-scaffold-extra-loss-shapes] PASSED" in result.stdout
    assert "FAILED" not in result.stdout and "ERROR" not in result.stdout


@pytest.mark.slow
def test_generated_plugins_are_discovered_through_entry_points(
    installed_plugins: tuple[Path, dict[str, Path]],
) -> None:
    python, _ = installed_plugins
    script = """
import json
from importlib.metadata import entry_points
from repmix.registry import GROUPS, get_registry
out = {}
for kind in ("tokenizer", "encoder", "pooler", "aligner", "loss"):
    name = f"scaffold-{kind}"
    eps = [ep.value for ep in entry_points(group=GROUPS[kind]) if ep.name == name]
    cls = get_registry().load(kind, name)
    out[kind] = {"entry_points": eps, "class": f"{cls.__module__}:{cls.__qualname__}", "kind": cls.kind}
print(json.dumps(out))
"""
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=120, env=venv_env())
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    for kind in KINDS:
        target = f"repmix_scaffold_{kind}.{kind}:Scaffold{kind.capitalize()}"
        assert found[kind] == {"entry_points": [target], "class": target, "kind": kind}
