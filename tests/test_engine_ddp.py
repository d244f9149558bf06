"""Scale-out: torchrun with 2 CPU processes (gloo) trains the same weights as 1 process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_engine_toys import (
    TOY_RUN,
    engine_env,
    free_port,
    losses_of,
    max_weight_difference,
    needs_std,
    std_config_file,
    toy_entry_points,
)

from repmix.core.config import load_config
from repmix.engine import is_finished, train_run
from repmix.engine.distributed import DistContext


def test_shards_are_contiguous_slices_of_the_global_batch() -> None:
    batch = torch.arange(10, 19)
    shards = [DistContext(rank=r, world_size=2).shard(batch).tolist() for r in range(2)]
    assert shards == [[10, 11, 12, 13, 14], [15, 16, 17, 18]]
    assert DistContext().shard(batch).tolist() == batch.tolist()


@pytest.mark.parametrize("finished", [True, False])
def test_processes_leave_the_group_together_only_after_a_finished_run(
    monkeypatch: pytest.MonkeyPatch, finished: bool
) -> None:
    """A finished run waits for every process, then collects garbage, then destroys the group;
    a failed one destroys at once (the other processes may never reach the barrier)."""
    import repmix.engine.distributed as distributed

    calls: list[str] = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append("destroy"))
    monkeypatch.setattr(distributed.gc, "collect", lambda: calls.append("collect") or 0)
    ctx = DistContext(rank=1, world_size=2, owns_group=True)
    ctx.close(finished=finished)
    assert calls == (["barrier"] if finished else []) + ["collect", "destroy"]
    ctx.close(finished=finished)  # a second close does nothing
    assert calls.count("destroy") == 1


def _torchrun(config: Path, out: Path, *paths: Path) -> subprocess.Popen[str]:
    """Start ``torchrun --nproc_per_node 2 -m repmix train CONFIG -o OUT`` on CPU (gloo)."""
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         "-m", "repmix", "train", str(config), "-o", str(out), "--no-progress",
         "train.keep_checkpoints_when_finished=true"],  # the test reads the last checkpoint
        env=engine_env(*paths), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _compare(single: Path, double: Path, proc: subprocess.Popen[str], metrics: dict[str, float], steps: int) -> None:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"stdout:\n{stdout[-2000:]}\nstderr:\n{stderr[-3000:]}"
    assert is_finished(double)
    assert json.loads((double / "run.json").read_text())["world_size"] == 2
    assert stdout.count("run finished") == 1  # only rank 0 reports

    (steps1, losses1), (steps2, losses2) = zip(*losses_of(single)), zip(*losses_of(double))
    assert steps1 == steps2 == tuple(range(1, steps + 1))
    assert losses2 == pytest.approx(losses1, abs=1e-5)
    assert max_weight_difference(single / "model/model.safetensors", double / "model/model.safetensors") < 1e-5
    assert json.loads((double / "metrics.json").read_text()) == pytest.approx(metrics, abs=1e-4)
    # the checkpoints hold both processes' RNG states
    state = json.loads((double / f"checkpoints/step-{steps}/state.json").read_text())
    assert len(state["rng"]) == 2


def test_torchrun_two_processes_match_one_process(tmp_path: Path, plugin_dir: Callable[..., Path]) -> None:
    """The loss has in-batch negatives: 2 processes only match 1 because embeddings are gathered over ranks.

    The toy tokenizer pads each process's shard to its own longest item, so the
    gather also has to pad sequence granularities and their masks.
    """
    site = plugin_dir("repmix-enginetoys", requires=["repmix>=1,<2", "torch"], entry_points=toy_entry_points())
    config = tmp_path / "toy.yaml"
    config.write_text(TOY_RUN.replace("n: 24", "n: 48").replace("epochs: 2", "epochs: 2, checkpoint_every: 2"))
    double = tmp_path / "double"
    proc = _torchrun(config, double, site)
    single = tmp_path / "single"
    metrics = train_run(load_config(config), single, progress=False)
    _compare(single, double, proc, metrics, steps=12)


@needs_std
@pytest.mark.slow
def test_torchrun_matches_one_process_with_std_bert_and_mnrl(tmp_path: Path, fresh_registry: None) -> None:
    """The same with repmix-std: a tiny random BERT, mean pooling, cosine, MNRL."""
    config = std_config_file(tmp_path, n=48, extra="evaluate: {type: retrieval, split: train, metrics: [mrr]}\n")
    double = tmp_path / "double"
    proc = _torchrun(config, double)
    single = tmp_path / "single"
    metrics = train_run(load_config(config), single, progress=False)
    _compare(single, double, proc, metrics, steps=12)
