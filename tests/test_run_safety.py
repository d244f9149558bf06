"""Issue 17: locked run directories, finite training, disk hygiene, file modes (toy components, seconds)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from pydantic import Field
from test_engine_toys import TOY_RUN, registered_toys, toy_config, weights

from repmix.cli.main import main
from repmix.core.components import ComponentConfig, Loss, LossInputs
from repmix.core.dataflow import LossOutput
from repmix.core.errors import ArtifactError
from repmix.registry.registry import temporary_component
from repmix.engine import is_finished
from repmix.engine.runs import DIR_LOCK_HOLDER, locked_dir
from repmix.engine.training import NonFiniteTraining, train_run


class NanAfterLoss(Loss):
    """``1 - mean diagonal score``, which becomes NaN from the ``after + 1``-th training call on."""

    class Config(ComponentConfig):
        after: int = Field(1000, ge=0)

    calls = 0

    def forward(self, inputs: LossInputs) -> LossOutput:
        value = (1.0 - inputs.alignment.scores.diagonal()).mean()
        if self.training:
            self.calls += 1
            if self.calls > self.config.after:
                value = value * torch.tensor(float("nan"))
        return LossOutput(value, {})


@pytest.fixture(autouse=True)
def toys(fresh_registry: None) -> Iterator[None]:
    with registered_toys(), temporary_component("loss", "nan-after", NanAfterLoss):
        yield


def nan_config(tmp_path: Path, after: int, *overrides: str):  # type: ignore[no-untyped-def]
    """The toy run whose loss turns NaN after ``after`` optimizer steps."""
    text = TOY_RUN.replace("{type: contrastive, on: sim, scale: 20.0}", f"{{type: nan-after, on: sim, after: {after}}}")
    return toy_config(tmp_path, list(overrides), text=text)


# ------------------------------------------------------------------ locks
def test_second_writer_of_a_run_directory_is_refused_naming_the_pid(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from repmix.engine.runs import locked_dir\n"
         "with locked_dir(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        cfg = toy_config(tmp_path, ["train.max_steps=1"])
        with pytest.raises(ArtifactError) as info:
            train_run(cfg, run, progress=False)
        assert f"pid {holder.pid}" in info.value.message and "in use" in info.value.message
        assert not (run / "metrics.jsonl").exists()  # nothing was written by the refused process
        # A holder killed with SIGKILL leaves its lock file and record behind: taken over at once.
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert (run / DIR_LOCK_HOLDER).is_file()
        assert train_run(cfg, run, progress=False) == train_run(cfg, run, progress=False, resume=True)
        assert is_finished(run)
        assert not (run / DIR_LOCK_HOLDER).exists()
    finally:
        holder.kill()
        holder.wait(10)


def test_concurrent_cli_writers_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toy_config(tmp_path)
    out = tmp_path / "ev"
    with locked_dir(out):
        # the same process re-enters its own lock; another process is refused
        with locked_dir(out):
            pass
        code = subprocess.run(
            [sys.executable, "-c", "import sys; from repmix.engine.runs import locked_dir\n"
             "try:\n    locked_dir(sys.argv[1]).__enter__()\nexcept Exception as e:\n    print(e); sys.exit(2)",
             str(out)], capture_output=True, text=True,
        )
        assert code.returncode == 2 and f"pid {os.getpid()}" in code.stdout


def test_two_ablations_on_one_output_directory_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toy_config(tmp_path)
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: toy.yaml\ngrid:\n  train.lr: [0.01, 0.02]\nseeds: [0]\n")
    out = tmp_path / "abl"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from repmix.engine.runs import locked_dir\n"
         "with locked_dir(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert main(["ablate", str(grid), "-o", str(out), "train.max_steps=1"]) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "in use" in err
        assert not (out / "variants").exists()
    finally:
        holder.kill()
        holder.wait(10)


# ---------------------------------------------------------- finite training
def test_infinite_lr_is_refused_at_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toy_config(tmp_path)
    for override, expected in [("train.lr=.inf", "finite"), ("train.batch_size=true", "valid integer"),
                               ("train.batch_size=1e38", "valid integer"), ("train.lr=.nan", "finite")]:
        assert main(["check", str(tmp_path / "toy.yaml"), override]) == 2
        err = capsys.readouterr().err
        assert expected in err and "internal error" not in err, override
    assert main(["check", str(tmp_path / "toy.yaml"), "model.losses.0.scale=.inf"]) == 2
    assert "finite" in capsys.readouterr().err


def test_training_stops_at_the_first_non_finite_loss_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(NonFiniteTraining) as info:  # 3 steps per epoch: NaN in the third epoch
        train_run(nan_config(tmp_path, 6, "train.epochs=3"), run, progress=False)
    assert "step 7" in info.value.message and "step-6" in info.value.message
    assert not is_finished(run) and not (run / "model").exists() and not (run / "metrics.json").exists()
    good = weights(run / "checkpoints" / "step-6" / "model.safetensors")
    assert all(bool(t.isfinite().all()) for t in good.values())


def test_cli_exit_status_for_non_finite_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nan_config(tmp_path, 0)
    assert main(["train", str(tmp_path / "toy.yaml"), "-o", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "training stopped at step 1" in err and "on_nonfinite: skip" in err


def test_on_nonfinite_skip_skips_and_logs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_run(nan_config(tmp_path, 6, "train.epochs=3", "train.on_nonfinite=skip"), run, progress=False)
    assert is_finished(run)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    skipped = [r["step"] for r in records if r["type"] == "skipped"]
    assert skipped and skipped[0] == 7


# --------------------------------------------------------------- disk, modes
def test_finished_run_keeps_only_the_final_model_unless_asked(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path)
    train_run(cfg, tmp_path / "lean", progress=False)
    assert is_finished(tmp_path / "lean") and not (tmp_path / "lean" / "checkpoints").exists()
    cfg = toy_config(tmp_path, ["train.keep_checkpoints_when_finished=true"])
    train_run(cfg, tmp_path / "kept", progress=False)
    assert (tmp_path / "kept" / "checkpoints").is_dir()


def test_saved_files_follow_the_umask_and_leftover_tmp_is_removed_on_resume(tmp_path: Path) -> None:
    from repmix.core.config import load_config

    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        with pytest.raises(NonFiniteTraining):  # stopped unfinished after one epoch, as a kill would leave it
            train_run(nan_config(tmp_path, 3, "train.epochs=2"), run, progress=False)
        leftover = run / "model" / ".model.safetensors.abc123.tmp"
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"x" * 1000)
        partial = run / "checkpoints" / ".step-9.tmp-4242"
        partial.mkdir(parents=True)
        (partial / "model.safetensors").write_bytes(b"x")
        (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("after: 3", "after: 1000"))
        train_run(load_config(run / "config.yaml"), run, progress=False, resume=True)
        assert is_finished(run)
        assert not leftover.exists() and not partial.exists()
        for name in ("config.yaml", "model.safetensors", "plugins.lock", "repmix.json", "README.md"):
            assert stat.S_IMODE((run / "model" / name).stat().st_mode) == 0o644, name
        assert stat.S_IMODE((run / "metrics.json").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_data_ends_first_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = toy_config(tmp_path, ["train.epochs=1", "train.max_steps=20"])
    train_run(cfg, tmp_path / "run", progress=False)
    err = capsys.readouterr().err
    assert "the data ends first" in err and "train.max_steps=20" in err


def test_lock_record_is_written_and_removed(tmp_path: Path) -> None:
    with locked_dir(tmp_path / "d") as d:
        info = json.loads((d / DIR_LOCK_HOLDER).read_text())
        assert info["pid"] == os.getpid() and time.time() > 0
    assert not (tmp_path / "d" / DIR_LOCK_HOLDER).exists()
