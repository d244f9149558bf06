"""Entry-point discovery, name resolution, compatibility, environment controls."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from core_helpers import run_cli, subprocess_env
from toys import TOY_CONFIG, MeanPooler

from repmix.cli.main import main
from repmix.core.errors import ConfigError, PluginError
from repmix.registry import get_registry, temporary_component
from repmix.registry.discovery import check_compatibility, plugin_name

BOOM_MODULE = {"boom_mod": "raise RuntimeError('boom at import')\n"}


def test_plugin_name() -> None:
    assert plugin_name("repmix-orma") == "orma"
    assert plugin_name("repmix_std") == "std"
    assert plugin_name("Other.Pkg") == "other-pkg"


@pytest.mark.parametrize(
    ("requires", "status"),
    [(["repmix>=1,<2"], "ok"), (["repmix<1"], "incompatible"), (["repmix>=2"], "incompatible"),
     (["torch", "numpy>=1"], "ok"), (["repmix>=9; extra == 'x'"], "ok")],
)
def test_compatibility_from_requires_dist(requires: list[str], status: str) -> None:
    assert check_compatibility(requires)[0] == status


def test_short_and_qualified_names(toy_plugin: Path) -> None:
    reg = get_registry()
    assert reg.resolve("pooler", "toy-mean").qualified_name == "toy.toy-mean"
    assert reg.load("pooler", "toy.toy-mean") is reg.load("pooler", "toy-mean")
    with pytest.raises(ConfigError) as info:
        reg.resolve("pooler", "toy-maen")
    assert info.value.suggestion == "toy-mean"


def test_name_clash_names_both_distributions(toy_plugin: Path, plugin_dir) -> None:  # type: ignore[no-untyped-def]
    plugin_dir("repmix-other", requires=["repmix>=1"], entry_points={"repmix.poolers": {"toy-mean": "toys:MeanPooler"}})
    reg = get_registry()
    with pytest.raises(ConfigError) as info:
        reg.resolve("pooler", "toy-mean")
    msg = info.value.render()
    assert "ambiguous" in msg and "repmix-toy" in msg and "repmix-other" in msg
    assert reg.resolve("pooler", "other.toy-mean").plugin.distribution == "repmix-other"


def test_broken_plugin_is_listed_and_others_work(toy_plugin: Path, plugin_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site = plugin_dir("repmix-boom", requires=["repmix>=1"], entry_points={"repmix.poolers": {"boom": "boom_mod:Boom"}},
                      modules=BOOM_MODULE)
    env = subprocess_env(site)
    listing = run_cli(["plugins", "list", "--check"], env=env)
    assert listing.returncode == 1, listing.stderr  # CI can rely on it (issue 17)
    assert "repmix-boom (broken)" in listing.stderr
    assert "BROKEN" in listing.stdout and "boom at import" in listing.stdout
    assert "toy" in listing.stdout and "[ok]" in listing.stdout
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TOY_CONFIG.replace("{type: toy-mean, normalize: true}", "{type: boom}"))
    res = run_cli(["check", str(cfg)], env=env)
    assert res.returncode == 2 and "broken" in res.stderr and "Traceback" not in res.stderr
    assert "model.towers.query.poolers.sentence.type" in res.stderr
    cfg.write_text(TOY_CONFIG)
    assert run_cli(["check", str(cfg)], env=env).returncode == 0


def test_incompatible_plugin(toy_plugin: Path, plugin_dir, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    plugin_dir("repmix-old", version="0.3.0", requires=["repmix>=0.1,<1"],
               entry_points={"repmix.poolers": {"old-mean": "toys:MeanPooler"}})
    assert main(["plugins", "list"]) == 0
    out = capsys.readouterr().out
    assert "INCOMPATIBLE: requires repmix<1,>=0.1" in out or "INCOMPATIBLE: requires repmix>=0.1,<1" in out
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TOY_CONFIG.replace("{type: toy-mean, normalize: true}", "{type: old-mean}"))
    assert main(["check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "incompatible" in err and "repmix-old 0.3.0" in err and "<1" in err


def test_env_controls(toy_plugin: Path, plugin_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site = plugin_dir("repmix-extra", requires=["repmix>=1"], entry_points={"repmix.poolers": {"extra-mean": "toys:MeanPooler"}})
    def listing(**env: str) -> dict:  # type: ignore[type-arg]
        res = run_cli(["plugins", "list", "--json"], env=subprocess_env(site, **env))
        assert res.returncode == 0, res.stderr
        return {p["name"]: p["status"] for p in json.loads(res.stdout)["plugins"]}

    base = listing()
    assert base["toy"] == "ok" and base["extra"] == "ok"
    assert listing(REPMIX_PLUGINS="toy")["extra"] == "disabled"
    assert listing(REPMIX_PLUGINS="repmix-toy,extra")["extra"] == "ok"
    assert listing(REPMIX_DISABLED_PLUGINS="extra")["extra"] == "disabled"
    assert listing(REPMIX_DISABLE_PLUGIN_AUTOLOAD="1") == {}
    res = run_cli(["plugins", "list"], env=subprocess_env(site, REPMIX_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert "No repmix plugins are installed" in res.stdout and "pip install" in res.stdout
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TOY_CONFIG.replace("toy-mean", "extra-mean"))
    res = run_cli(["check", str(cfg)], env=subprocess_env(site, REPMIX_DISABLED_PLUGINS="extra"))
    assert res.returncode == 2 and "disabled" in res.stderr


def test_plugins_list_imports_no_torch(toy_plugin: Path) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from repmix.cli.main import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    rc = main(['plugins', 'list'])\n"
        "assert rc == 0\n"
        "assert 'toy' in buf.getvalue(), buf.getvalue()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'toys', 'transformers', 'numpy'))\n"
        "assert not heavy, heavy\n"
    )
    import subprocess

    res = subprocess.run([sys.executable, "-c", code], env=subprocess_env(toy_plugin), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_temporary_registration(fresh_registry: None) -> None:
    reg = get_registry()
    with pytest.raises(ConfigError):
        reg.resolve("pooler", "tmp-mean")
    with temporary_component("pooler", "tmp-mean", MeanPooler):
        assert reg.load("pooler", "tmp-mean") is MeanPooler
        assert reg.load("pooler", "test.tmp-mean") is MeanPooler
    with pytest.raises(ConfigError):
        reg.resolve("pooler", "tmp-mean")


def test_no_plugins_explains_how_to_install(fresh_registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REPMIX_DISABLE_PLUGIN_AUTOLOAD", "1")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TOY_CONFIG)
    assert main(["check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "no repmix plugins are installed" in err and "pip install" in err


def test_plugins_show(toy_plugin: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["plugins", "show", "contrastive"]) == 0
    out = capsys.readouterr().out
    assert "loss toy.contrastive" in out and "repmix-toy 1.0.0" in out and "scale" in out and "20.0" in out
    assert main(["plugins", "show", "contrastive", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["config"][0] == {"key": "scale", "type": "float", "default": 20.0, "description": ""}
    assert main(["plugins", "show", "toy"]) == 0
    assert "toy.chars" in capsys.readouterr().out
    assert main(["plugins", "show", "contrastiv"]) == 2
    assert "did you mean 'contrastive'" in capsys.readouterr().err


def test_kind_mismatch_is_a_plugin_error(toy_plugin: Path, plugin_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugin_dir("repmix-wrong", requires=["repmix>=1"], entry_points={"repmix.poolers": {"not-a-pooler": "toys:CosineAligner"}})
    reg = get_registry()
    from repmix.core.assembly import plan_model
    from repmix.core.config import LocatedConfig, parse_yaml

    text = TOY_CONFIG.replace("{type: toy-mean, normalize: true}", "{type: not-a-pooler}")
    with pytest.raises(PluginError, match="does not subclass"):
        plan_model(LocatedConfig(*parse_yaml(text, "c.yaml"), "c.yaml"), reg)

