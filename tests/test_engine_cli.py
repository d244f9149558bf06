"""``repmix train`` / ``repmix evaluate`` / ``repmix encode RUN_DIR`` from the command line (in-process)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_engine_toys import registered_toys, toy_config

from repmix.cli.main import build_parser, main
from repmix.core.config import load_config
from repmix.engine import is_finished


@pytest.fixture(autouse=True)
def toys(fresh_registry: None) -> Iterator[None]:
    with registered_toys():
        yield


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    """A finished toy run (1 epoch) in tmp_path/run."""
    toy_config(tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "toy.yaml"), "-o", str(run), "--no-progress", "train.epochs=1"]) == 0
    return run


def test_train_applies_overrides_and_prints_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toy_config(tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "toy.yaml"), "train.epochs=1", "-o", str(run), "--no-progress",
                 "train.lr=0.02"]) == 0
    out = capsys.readouterr().out
    assert f"run finished: {run}" in out and "acc:" in out and "cos:" in out
    assert is_finished(run)
    train = load_config(run / "config.yaml").data["train"]
    assert (train["epochs"], train["lr"]) == (1, 0.02)


def test_train_refuses_a_finished_run_unless_forced(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["train", str(tmp_path / "toy.yaml"), "-o", str(trained), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "already holds a finished run" in err and "--force" in err and "Traceback" not in err
    assert main(["train", str(tmp_path / "toy.yaml"), "-o", str(trained), "--no-progress", "--force"]) == 0
    assert load_config(trained / "config.yaml").data["train"]["epochs"] == 2


def test_default_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toy_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "toy.yaml", "--no-progress", "train.max_steps=1"]) == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("toy-") and is_finished(runs[0])


def test_train_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train"]) == 2
    assert "needs a CONFIG" in capsys.readouterr().err
    toy_config(tmp_path)
    assert main(["train", str(tmp_path / "toy.yaml"), "other.yaml"]) == 2
    assert "unexpected argument 'other.yaml'" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "toy.yaml"), "-o", str(tmp_path / "r"), "train.optimizer=sgd"]) == 2
    err = capsys.readouterr().err
    assert "train.optimizer" in err and "unknown key" in err


def test_evaluate_run_directory(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads((trained / "metrics.json").read_text())
    (trained / "metrics.json").unlink()
    capsys.readouterr()
    assert main(["evaluate", str(trained)]) == 0
    assert json.loads((trained / "metrics.json").read_text()) == pytest.approx(expected)
    report = (trained / "evaluation.md").read_text()
    assert "# Evaluation" in report and "| acc |" in report and "split `dev`" in report
    assert "acc:" in capsys.readouterr().out


def test_evaluate_with_other_data_keeps_the_runs_metrics(trained: Path, tmp_path: Path) -> None:
    before = (trained / "metrics.json").read_text()
    assert main(["evaluate", str(trained), "--data", "n=6"]) == 0
    assert (trained / "metrics.json").read_text() == before
    (out,) = list((trained / "evaluations").iterdir())
    small = json.loads((out / "metrics.json").read_text())
    assert set(small) == {"cos", "acc"} and small != json.loads(before)
    (tmp_path / "data.yaml").write_text("data: {type: toy-pairs, n: 6, seed: 3}\n")
    assert main(["evaluate", str(trained), "--data", str(tmp_path / "data.yaml"), "-o", str(tmp_path / "ev")]) == 0
    other = json.loads((tmp_path / "ev/metrics.json").read_text())
    assert other != small and "toy-pairs" in (tmp_path / "ev/evaluation.md").read_text()


def test_evaluate_config_and_refusals(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "toy.yaml"), "-o", str(tmp_path / "untrained")]) == 0
    assert set(json.loads((tmp_path / "untrained/metrics.json").read_text())) == {"cos", "acc"}
    capsys.readouterr()
    assert main(["evaluate", str(trained), "model.towers.query.encoder.dim=8"]) == 2
    assert "changes the model" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text("{}")
    assert main(["evaluate", str(unfinished)]) == 2
    assert "has not finished training" in capsys.readouterr().err
    cfg = toy_config(tmp_path)
    del cfg.data["evaluate"]
    (tmp_path / "noeval.yaml").write_text("model: " + json.dumps(cfg.data["model"]) + "\n")
    assert main(["evaluate", str(tmp_path / "noeval.yaml")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


def test_encode_accepts_a_run_directory(trained: Path, tmp_path: Path) -> None:
    (tmp_path / "items.txt").write_text("abc\nhello\nxyz\n")
    out = tmp_path / "vectors.npy"
    assert main(["encode", str(trained), "--tower", "query", "--input", str(tmp_path / "items.txt"),
                 "--output", str(out), "--no-progress"]) == 0
    vectors = np.load(out)
    assert vectors.shape == (3, 16)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_every_option_has_help(command: str) -> None:
    sub = _subparser(command)
    assert sub.description
    for action in sub._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
