"""Checkpoints and resuming: Ctrl-C, SIGKILL from outside, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_engine_toys import (
    TOY_RUN,
    losses_of,
    max_weight_difference,
    engine_env,
    registered_toys,
    toy_config,
    toy_entry_points,
)

from repmix.cli.main import main
from repmix.core.config import load_config
from repmix.engine import is_finished, train_run
from repmix.engine.runs import latest_checkpoint
from repmix.engine.training import TrainingInterrupted
from repmix.core.errors import ArtifactError
from repmix.registry.hooks import get_plugin_manager, hookimpl


@pytest.fixture
def toys(fresh_registry: None) -> Iterator[None]:
    with registered_toys():
        yield


class Interrupter:
    """Sends this process SIGINT ``times`` times when optimizer step ``at`` first ends (a user's Ctrl-C)."""

    def __init__(self, at: int, times: int = 1) -> None:
        self.at = at
        self.times = times
        self.fired = False

    @hookimpl
    def repmix_train_step_end(self, step: int, logs: dict, run_dir: str | None) -> None:  # type: ignore[type-arg]
        if step == self.at and not self.fired:
            self.fired = True
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def interrupt() -> Iterator[Callable[..., None]]:
    pm = get_plugin_manager()
    registered: list[Interrupter] = []

    def add(at: int, times: int = 1) -> None:
        registered.append(Interrupter(at, times))
        pm.register(registered[-1])

    yield add
    for r in registered:
        pm.unregister(r)


def _assert_same_run(a: Path, b: Path) -> None:
    assert is_finished(a) and is_finished(b)
    steps_a, losses_a = zip(*losses_of(a))
    steps_b, losses_b = zip(*losses_of(b))
    assert steps_a == steps_b
    assert losses_a == pytest.approx(losses_b, abs=1e-7)
    assert max_weight_difference(a / "model/model.safetensors", b / "model/model.safetensors") < 1e-6
    assert json.loads((a / "metrics.json").read_text()) == pytest.approx(json.loads((b / "metrics.json").read_text()))


def test_ctrl_c_writes_a_checkpoint_and_resume_matches(tmp_path: Path, toys: None, interrupt) -> None:  # type: ignore[no-untyped-def]
    reference = tmp_path / "reference"
    train_run(toy_config(tmp_path), reference, progress=False)

    run = tmp_path / "run"
    interrupt(at=2)
    with pytest.raises(TrainingInterrupted) as err:
        train_run(toy_config(tmp_path), run, progress=False)
    assert err.value.exit_code == 130
    assert f"repmix train --resume {run}" in err.value.render()
    assert latest_checkpoint(run) == run / "checkpoints/step-2"
    state = json.loads((run / "checkpoints/step-2/state.json").read_text())
    assert (state["step"], state["epoch"], state["position"]) == (2, 0, 2)
    assert not is_finished(run)

    resumed = train_run(load_config(run / "config.yaml"), run, resume=True, progress=False)
    assert resumed == json.loads((reference / "metrics.json").read_text())
    _assert_same_run(run, reference)


def test_second_ctrl_c_stops_at_once_and_resume_restarts(tmp_path: Path, toys: None, interrupt) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    interrupt(at=2, times=2)
    with pytest.raises(TrainingInterrupted, match="at once"):
        train_run(toy_config(tmp_path), run, progress=False)
    assert latest_checkpoint(run) is None
    train_run(load_config(run / "config.yaml"), run, resume=True, progress=False)
    reference = tmp_path / "reference"
    train_run(toy_config(tmp_path), reference, progress=False)
    _assert_same_run(run, reference)


def test_cli_ctrl_c_exits_130_and_tells_how_to_resume(
    tmp_path: Path, toys: None, interrupt, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    toy_config(tmp_path)
    run = tmp_path / "run"
    interrupt(at=4)
    assert main(["train", str(tmp_path / "toy.yaml"), "-o", str(run), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "interrupted at step 4" in err and f"repmix train --resume {run}" in err
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert is_finished(run)


def test_resume_refuses_what_is_not_a_run(tmp_path: Path, toys: None, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = toy_config(tmp_path)
    with pytest.raises(ArtifactError, match="no such directory"):
        train_run(cfg, tmp_path / "missing", resume=True)
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff/notes.txt").write_text("hello")
    with pytest.raises(ArtifactError, match="not a repmix run directory"):
        train_run(cfg, tmp_path / "stuff", resume=True)
    assert main(["train", "--resume", str(tmp_path / "stuff")]) == 2
    assert "not a repmix run directory" in capsys.readouterr().err


def test_resume_refuses_a_changed_config(
    tmp_path: Path, toys: None, interrupt, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    run = tmp_path / "run"
    interrupt(at=2)
    with pytest.raises(TrainingInterrupted):
        train_run(toy_config(tmp_path), run, progress=False)
    changed = toy_config(tmp_path, ["train.lr=0.5", "model.towers.query.encoder.dim=8"])
    with pytest.raises(ArtifactError) as err:
        train_run(changed, run, resume=True)
    assert "train.lr" in err.value.message and "model.towers.query.encoder.dim" in err.value.message
    assert main(["train", "--resume", str(run), "train.epochs=5"]) == 2
    assert "train.epochs" in capsys.readouterr().err
    # an equal config loaded from elsewhere is fine: numbers compare by value
    train_run(toy_config(tmp_path, ["train.lr=1e-2"]), run, resume=True, progress=False)
    assert is_finished(run)


def test_existing_runs_need_resume_or_force(tmp_path: Path, toys: None, interrupt) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    interrupt(at=2)
    with pytest.raises(TrainingInterrupted):
        train_run(toy_config(tmp_path), run, progress=False)
    with pytest.raises(ArtifactError, match="unfinished run") as err:
        train_run(toy_config(tmp_path), run, progress=False)
    assert "--resume" in err.value.render() and "--force" in err.value.render()
    metrics = train_run(toy_config(tmp_path, ["train.max_steps=2"]), run, progress=False, force=True)
    assert is_finished(run) and len(losses_of(run)) == 2
    with pytest.raises(ArtifactError, match="already holds a finished run"):
        train_run(toy_config(tmp_path), run, progress=False)
    # resuming a finished run is a no-op returning its metrics
    assert train_run(load_config(run / "config.yaml"), run, resume=True, progress=False) == metrics


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(
    tmp_path: Path, plugin_dir: Callable[..., Path]
) -> None:
    site = plugin_dir("repmix-enginetoys", requires=["repmix>=1,<2", "torch"], entry_points=toy_entry_points())
    text = (
        TOY_RUN.replace("{type: contrastive, on: sim, scale: 20.0}", "{type: diagonal, on: sim, delay_ms: 40}")
        .replace("data: {type: toy-pairs, n: 24}", "data: {type: toy-pairs, n: 64}")
        .replace("batch_size: 8,", "batch_size: 4, checkpoint_every: 3,")
    )
    config = tmp_path / "slow.yaml"
    config.write_text(text)
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "repmix", "train", str(config), "-o", str(run), "--no-progress"],
        env=engine_env(site),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while latest_checkpoint(run) is None:
            assert proc.poll() is None, f"training ended before a checkpoint appeared: {proc.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not is_finished(run)
    latest = latest_checkpoint(run)
    assert latest is not None
    state = json.loads((latest / "state.json").read_text())
    assert state["epoch"] == 0 and 0 < state["position"] < 16, state  # killed in the middle of the first epoch

    resumed = train_run(load_config(run / "config.yaml"), run, resume=True, progress=False)
    reference = tmp_path / "reference"
    assert train_run(load_config(config), reference, progress=False) == resumed
    _assert_same_run(run, reference)
    assert [s for s, _ in losses_of(run)] == list(range(1, 33))
