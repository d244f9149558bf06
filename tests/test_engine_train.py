"""Training in-process: determinism, run directory, per-component lr, freezing, accumulation, schedules."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from test_engine_toys import losses_of, max_weight_difference, registered_toys, toy_config, weights

from repmix.core.config import load_config
from repmix.engine import is_finished, train_run
from repmix.engine.settings import TrainConfig, plan_evaluations, train_config
from repmix.engine.optim import lr_multiplier, param_groups
from repmix.core.errors import ArtifactError, ConfigError
from repmix.registry.hooks import get_plugin_manager, hookimpl


@pytest.fixture(autouse=True)
def toys(fresh_registry: None) -> Iterator[None]:
    with registered_toys():
        yield


TWO_TOWERS = """\
model:
  towers:
    query:
      tokenizer: {type: chars}
      encoder: {type: embedding, dim: 16}
      poolers:
        sentence: {type: toy-mean, normalize: true}
    document:
      tokenizer: {type: chars}
      encoder: {type: embedding, dim: 16}
      poolers:
        sentence: {type: toy-mean, normalize: true}
  alignments:
    sim: {type: toy-cosine, between: [query.sentence, document.sentence]}
  losses:
    - {type: diagonal, on: sim}
data: {type: toy-pairs, n: 24}
train: {epochs: 1, batch_size: 8, lr: 0.01, seed: 0, log_every: 1, weight_decay: 0.0}
"""


def test_same_seed_same_losses_and_metrics(tmp_path: Path) -> None:
    m1 = train_run(toy_config(tmp_path), tmp_path / "a", progress=False)
    m2 = train_run(toy_config(tmp_path), tmp_path / "b", progress=False)
    m3 = train_run(toy_config(tmp_path, ["train.seed=1"]), tmp_path / "c", progress=False)
    assert losses_of(tmp_path / "a") == losses_of(tmp_path / "b")
    assert len(losses_of(tmp_path / "a")) == 6
    assert m1 == m2 and set(m1) == {"cos", "acc"}
    assert max_weight_difference(tmp_path / "a/model/model.safetensors", tmp_path / "b/model/model.safetensors") == 0
    assert losses_of(tmp_path / "c") != losses_of(tmp_path / "a")
    assert m3 != m1


def test_run_directory_layout(tmp_path: Path) -> None:
    run = tmp_path / "run"
    keep = ["train.keep_checkpoints_when_finished=true"]  # by default a finished run keeps model/ only
    metrics = train_run(toy_config(tmp_path, keep), run, progress=False)
    assert is_finished(run)
    for name in ("run.json", "config.yaml", "plugins.lock", "metrics.jsonl", "metrics.json", "report.md",
                 "plots/loss.png", "model/repmix.json", "model/model.safetensors"):
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert load_config(run / "config.yaml").data == toy_config(tmp_path, keep).data
    assert json.loads((run / "plugins.lock").read_text())["components"]
    assert (run / "plots/loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # two epochs of three steps: checkpoints at the end of each epoch, the last two kept
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-3", "step-6"]
    ckpt = run / "checkpoints/step-6"
    assert {p.name for p in ckpt.iterdir()} == {"model.safetensors", "optimizer.pt", "state.json", "config.yaml",
                                               "plugins.lock"}
    state = json.loads((ckpt / "state.json").read_text())
    assert (state["step"], state["epoch"], state["position"]) == (6, 2, 0)
    assert torch.load(ckpt / "optimizer.pt", weights_only=True)["state"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["type"] for r in records] == ["train"] * 3 + ["epoch"] + ["train"] * 3 + ["epoch", "eval"]
    for r in records[:-1]:
        assert {"step", "epoch", "loss", "lr", "items_per_s", "elapsed", "cpu_elapsed"} <= set(r)
    cpu = [r["cpu_elapsed"] for r in records[:-1]]
    assert cpu == sorted(cpu) and cpu[-1] > 0  # CPU seconds of training, growing
    assert records[-1]["metrics"] == metrics
    report = (run / "report.md").read_text()
    assert "## Final metrics" in report and f"| acc | {metrics['acc']:.6g} |" in report
    assert "plots/loss.png" in report and "model.towers.query.encoder" in report


def test_warmup_and_linear_decay_are_logged(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_run(toy_config(tmp_path, ["train.warmup_steps=2", "train.warmup_ratio=null"]), run, progress=False)
    lrs = [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()
           if json.loads(line)["type"] == "train"]
    assert lrs == pytest.approx([0.0, 0.005, 0.01, 0.0075, 0.005, 0.0025])


@pytest.mark.parametrize("schedule, name", [("linear", "linear"), ("cosine", "cosine"),
                                            ("constant", "constant_with_warmup")])
def test_schedules_match_transformers(schedule: str, name: str) -> None:
    transformers = pytest.importorskip("transformers")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    ref = transformers.get_scheduler(name, opt, num_warmup_steps=3, num_training_steps=20)
    ours = lr_multiplier(schedule, 3, 20)
    for step in range(21):
        assert ours(step) == pytest.approx(ref.lr_lambdas[0](step), abs=1e-12)


def test_component_lr_and_freezing(tmp_path: Path) -> None:
    text = TWO_TOWERS.replace(
        "      encoder: {type: embedding, dim: 16}\n      poolers:\n"
        "        sentence: {type: toy-mean, normalize: true}\n    document:",
        "      encoder: {type: embedding, dim: 16, trainable: false}\n      poolers:\n"
        "        sentence: {type: toy-mean, normalize: true}\n    document:",
    ).replace(
        "    document:\n      tokenizer: {type: chars}\n      encoder: {type: embedding, dim: 16}",
        "    document:\n      tokenizer: {type: chars}\n      encoder: {type: embedding, dim: 16, lr: 1.0e-8}",
    )
    cfg = toy_config(tmp_path, text=text)
    from repmix.core.assembly import build_model, plan_model

    initial = build_model(plan_model(cfg), seed=0)
    groups, infos = param_groups(initial, train_config(cfg))
    assert [(g.name, g.lr) for g in infos] == [
        ("model.towers.document.encoder", 1e-8),
        ("model.towers.document.encoder (no decay)", 1e-8),
    ]
    assert not any(p is q for g in groups for p in g["params"]
                   for q in initial.tower("query").encoder.parameters())
    run = tmp_path / "run"
    train_run(cfg, run, progress=False)
    final = weights(run / "model/model.safetensors")
    start = initial.state_dict()
    query_keys = [k for k in final if k.startswith("towers.query.encoder.")]
    doc_keys = [k for k in final if k.startswith("towers.document.encoder.")]
    assert query_keys and doc_keys
    for k in query_keys:
        assert torch.equal(final[k], start[k]), f"frozen {k} changed"
    # AdamW moves each weight by about lr per step: 3 steps at 1e-8
    assert max(float((final[k] - start[k]).abs().max()) for k in doc_keys) < 1e-6

    # the same run with the document encoder at train.lr moves it visibly
    cfg2 = toy_config(tmp_path, text=text.replace(", lr: 1.0e-8", ""))
    run2 = tmp_path / "run2"
    train_run(cfg2, run2, progress=False)
    moved = weights(run2 / "model/model.safetensors")
    assert max(float((moved[k] - start[k]).abs().max()) for k in doc_keys) > 1e-3


def test_nested_component_inherits_parent_lr() -> None:
    from types import SimpleNamespace

    from repmix.engine.optim import _effective_lr

    planned = {
        ("model", "losses", 0): SimpleNamespace(lr=0.5),
        ("model", "losses", 0, "base"): SimpleNamespace(lr=None),
        ("model", "losses", 1): SimpleNamespace(lr=None),
    }
    assert _effective_lr(("model", "losses", 0, "base"), planned, 1e-3) == 0.5
    assert _effective_lr(("model", "losses", 1), planned, 1e-3) == 1e-3


def test_gradient_accumulation_matches_a_larger_batch(tmp_path: Path) -> None:
    text = TWO_TOWERS.replace("weight_decay: 0.0}", "weight_decay: 0.01, schedule: cosine, warmup_steps: 1}")
    base = toy_config(tmp_path, text=text)
    assert train_config(base).batch_size == 8
    train_run(base, tmp_path / "big", progress=False)
    train_run(toy_config(tmp_path, ["train.batch_size=4", "train.grad_accumulation=2"], text=text),
              tmp_path / "acc", progress=False)
    assert [s for s, _ in losses_of(tmp_path / "acc")] == [1, 2, 3]
    diff = max_weight_difference(tmp_path / "big/model/model.safetensors", tmp_path / "acc/model/model.safetensors")
    assert diff < 1e-6
    # and the comparison is not vacuous: plain batches of 4 give other weights
    train_run(toy_config(tmp_path, ["train.batch_size=4"], text=text), tmp_path / "small", progress=False)
    assert max_weight_difference(tmp_path / "big/model/model.safetensors",
                                 tmp_path / "small/model/model.safetensors") > 1e-4


def test_max_steps_stops_early_and_sets_schedule_length(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_run(toy_config(tmp_path, ["train.max_steps=4", "train.warmup_ratio=null",
                                     "train.keep_checkpoints_when_finished=true"]), run, progress=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert [r["lr"] for r in train] == pytest.approx([0.01, 0.0075, 0.005, 0.0025])
    assert (run / "checkpoints/step-4").is_dir() and is_finished(run)


def test_train_block_errors_are_located(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        train_config(toy_config(tmp_path, ["train.epoch=3"]))
    assert err.value.path == "train.epoch" and err.value.suggestion == "epochs"
    with pytest.raises(ConfigError) as err:
        train_config(toy_config(tmp_path, ["train.schedule=exponential"]))
    assert "train.schedule" in err.value.render() and "cosine" in err.value.render()
    with pytest.raises(ConfigError, match="either warmup_steps or warmup_ratio"):
        train_config(toy_config(tmp_path, ["train.warmup_steps=3"]))
    with pytest.raises(ConfigError) as err:
        train_config(toy_config(tmp_path, ["train.batch_size=0"]))
    assert err.value.path == "train.batch_size"
    raw = (tmp_path / "toy.yaml").read_text().replace("log_every: 1,", "log_every: 1, lr_decay: 2,")
    (tmp_path / "bad.yaml").write_text(raw)
    with pytest.raises(ConfigError) as err:
        train_config(load_config(tmp_path / "bad.yaml"))
    assert err.value.line == raw.splitlines().index(next(ln for ln in raw.splitlines() if "lr_decay" in ln)) + 1


def test_every_train_field_is_documented() -> None:
    for name, field in TrainConfig.model_fields.items():
        assert field.description, name


def test_cuda_requested_without_cuda_is_a_clear_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA device"):
        train_run(toy_config(tmp_path, ["train.device=cuda"]), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_several_evaluators_get_named_metrics(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, [
        "evaluate=[{type: toy-eval, split: dev}, {type: toy-eval, name: small, data: {type: toy-pairs, n: 6}}]",
        "train.epochs=1",
    ])
    metrics = train_run(cfg, tmp_path / "run", progress=False)
    assert set(metrics) == {"toy-eval/cos", "toy-eval/acc", "small/cos", "small/acc"}
    with pytest.raises(ConfigError, match="both named 'toy-eval'"):
        plan_evaluations(toy_config(tmp_path, ["evaluate=[{type: toy-eval}, {type: toy-eval, split: x}]"]))
    with pytest.raises(ConfigError) as err:
        plan_evaluations(toy_config(tmp_path, ["evaluate.splits=dev"]))
    assert err.value.path == "evaluate.splits" and "unknown key 'splits'" in err.value.message


def test_no_evaluate_block_gives_empty_metrics(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, ["train.epochs=1"])
    del cfg.data["evaluate"]
    run = tmp_path / "run"
    assert train_run(cfg, run, progress=False) == {}
    assert json.loads((run / "metrics.json").read_text()) == {} and is_finished(run)


def test_hooks_are_called_and_add_report_sections(tmp_path: Path) -> None:
    calls: dict[str, list[object]] = {"step": [], "epoch": [], "eval": []}

    class Recorder:
        @hookimpl
        def repmix_train_step_end(self, step: int, logs: dict, run_dir: str | None) -> None:  # type: ignore[type-arg]
            calls["step"].append((step, round(logs["loss"], 6)))

        @hookimpl
        def repmix_train_epoch_end(self, epoch: int, metrics: dict, run_dir: str | None) -> None:  # type: ignore[type-arg]
            calls["epoch"].append((epoch, sorted(metrics)))

        @hookimpl
        def repmix_evaluate_end(self, metrics: dict, run_dir: str | None) -> None:  # type: ignore[type-arg]
            calls["eval"].append(sorted(metrics))

        @hookimpl
        def repmix_report_sections(self, run_dir: str, metrics: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
            return [("From a plugin", f"saw {len(metrics)} metrics")]

    pm = get_plugin_manager()
    recorder = Recorder()
    pm.register(recorder)
    try:
        train_run(toy_config(tmp_path, ["train.evaluate_every_epoch=true"]), tmp_path / "run", progress=False)
    finally:
        pm.unregister(recorder)
    assert [s for s, _ in calls["step"]] == [1, 2, 3, 4, 5, 6]
    assert calls["step"] == [(step, round(loss, 6)) for step, loss in losses_of(tmp_path / "run")]
    assert calls["epoch"] == [(1, ["acc", "cos", "loss"]), (2, ["loss"])]
    assert calls["eval"] == [["acc", "cos"], ["acc", "cos"]]
    assert "## From a plugin\n\nsaw 2 metrics" in (tmp_path / "run/report.md").read_text()


def test_disk_full_leaves_the_run_unfinished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import repmix.engine.training as training

    real = training.atomic_write_text

    def full(path: Path, text: str) -> None:
        if Path(path).name == "metrics.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(training, "atomic_write_text", full)
    run = tmp_path / "run"
    with pytest.raises(ArtifactError, match="No space left on device") as err:
        train_run(toy_config(tmp_path), run, progress=False)
    assert "resume" in err.value.render()
    assert not is_finished(run) and (run / "model/repmix.json").is_file()
    monkeypatch.setattr(training, "atomic_write_text", real)
    # resuming finishes the run from its last checkpoint
    assert train_run(toy_config(tmp_path), run, resume=True, progress=False)
    assert is_finished(run)


def test_failed_checkpoint_write_leaves_no_partial_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_model", full)
    run = tmp_path / "run"
    with pytest.raises(ArtifactError, match="cannot write checkpoint .*No space left on device"):
        train_run(toy_config(tmp_path), run, progress=False)
    assert list((run / "checkpoints").iterdir()) == []
    assert not is_finished(run)


def test_targets_reach_the_loss(tmp_path: Path) -> None:
    text = TWO_TOWERS.replace("{type: diagonal, on: sim}", "{type: diagonal, on: sim, use_targets: true}")
    with_targets = toy_config(tmp_path, ["data.targets=true"], text=text)
    train_run(with_targets, tmp_path / "run", progress=False)
    assert len(losses_of(tmp_path / "run")) == 3

    from test_engine_toys import DiagonalLoss

    from repmix.registry.registry import temporary_component

    class NeedsTargets(DiagonalLoss):
        needs_targets = True

    with temporary_component("loss", "needs-targets", NeedsTargets):
        cfg = toy_config(tmp_path, text=text.replace("type: diagonal", "type: needs-targets"))
        with pytest.raises(ConfigError, match="needs per-example targets") as err:
            train_run(cfg, tmp_path / "run2", progress=False)
    assert err.value.path == "model.losses.0"


def test_unwritable_run_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("a file where the run directory should go")
    with pytest.raises(ArtifactError, match="cannot write the run directory"):
        train_run(toy_config(tmp_path), tmp_path / "run", progress=False)


@pytest.mark.parametrize("budget", ["train.max_minutes=1e-9", "train.max_cpu_minutes=1e-9"])
def test_time_budget_stops_after_the_step_that_spends_it(tmp_path: Path, budget: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    metrics = train_run(toy_config(tmp_path, [budget, "train.keep_checkpoints_when_finished=true"]), run,
                        progress=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "train"] == [1]
    assert (run / "checkpoints/step-1").is_dir() and is_finished(run) and metrics
    assert "time budget" in capsys.readouterr().err
    assert "stopped by" in (run / "report.md").read_text()


def test_no_time_budget_trains_every_step(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_run(toy_config(tmp_path, ["train.max_steps=3", "train.max_minutes=60", "train.max_cpu_minutes=60"]),
              run, progress=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "train"][-1] == 3


def test_init_from_copies_a_saved_models_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    train_run(toy_config(tmp_path, ["train.max_steps=3"]), first, progress=False)
    train_run(toy_config(tmp_path, ["train.max_steps=1", "train.lr=1e-12", f"train.init_from={first}"]), second,
              progress=False)
    assert "initialised" in capsys.readouterr().err
    assert max_weight_difference(first / "model/model.safetensors", second / "model/model.safetensors") < 1e-6
    fresh = tmp_path / "fresh"
    train_run(toy_config(tmp_path, ["train.max_steps=1", "train.lr=1e-12", "train.seed=5"]), fresh, progress=False)
    assert max_weight_difference(first / "model/model.safetensors", fresh / "model/model.safetensors") > 1e-3


def test_init_from_refuses_a_missing_or_unrelated_model(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        train_run(toy_config(tmp_path, [f"train.init_from={tmp_path / 'nowhere'}"]), tmp_path / "run", progress=False)
