"""``repmix ablate`` and ``repmix runs compare``: grid expansion, names, validation, results."""

from __future__ import annotations

import csv
import importlib
import io
import json
import statistics
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import subprocess_env
from repmix.cli.main import main
from repmix.core.config import dump_yaml
from repmix.engine import ablate as ab
from repmix.engine.compare import compare_runs, differing_keys, lower_is_better, read_run
from repmix.core.errors import ConfigError

#: A dataset and an evaluator for the toy components (tests/toys.py), installed as a fake plugin.
ABLATE_TOY_SOURCE = '''
from __future__ import annotations

import numpy as np
from pydantic import Field

from repmix.core.components import ComponentConfig
from repmix.core.components import Dataset, Evaluator, Examples

WORDS = ["red", "blue", "green", "cyan", "pink", "gold", "gray", "teal", "lime", "navy", "plum", "rose"]


class ToyPairs(Dataset):
    """Query/document pairs made of colour words; ``fail_on_load`` raises when loading (for tests)."""

    class Config(ComponentConfig):
        n: int = Field(24, ge=2)
        fail_on_load: bool = False

    def load(self, split=None):
        if self.config.fail_on_load:
            raise RuntimeError("toy dataset asked to fail")
        queries, docs = [], []
        for i in range(self.config.n):
            a, b = WORDS[i % len(WORDS)], WORDS[(3 * i + 1) % len(WORDS)]
            queries.append(f"{a} {b} {i}")
            docs.append(f"{b} and {a} {i}")
        return Examples(columns={"query": queries, "document": docs})


class ToyRetrieval(Evaluator):
    """Top-1 accuracy and mean rank of the paired document by cosine similarity."""

    class Config(ComponentConfig):
        pass

    def evaluate(self, model, data):
        q = model.encode(data.columns["query"], tower="query")
        d = model.encode(data.columns["document"], tower="document")
        q = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-9)
        d = d / np.linalg.norm(d, axis=1, keepdims=True).clip(1e-9)
        scores = q @ d.T
        ranks = (scores > np.diag(scores)[:, None]).sum(axis=1) + 1
        return {"accuracy": float((ranks == 1).mean()), "mean_rank": float(ranks.mean())}
'''

TOY_BASE = """\
model:
  towers:
    query:
      tokenizer: {type: chars}
      encoder: {type: embedding, dim: 16}
      poolers:
        sentence: {type: toy-mean, normalize: true}
    document: {shared_with: query}
  alignments:
    sim: {type: toy-cosine, between: [query.sentence, document.sentence]}
  losses:
    - {type: contrastive, on: sim, scale: 20.0}
data: {type: toy-pairs, n: 24}
train: {epochs: 1, batch_size: 8, lr: 0.001, seed: 7}
evaluate: {type: toy-retrieval}
"""


@pytest.fixture
def toy_env(toy_plugin: Path, plugin_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Toy components plus a toy dataset/evaluator, importable here and in ``repmix train`` subprocesses."""
    root = plugin_dir(
        "repmix-ablate-toy",
        requires=["repmix>=1,<2"],
        entry_points={
            "repmix.datasets": {"toy-pairs": "ablate_toy:ToyPairs"},
            "repmix.evaluators": {"toy-retrieval": "ablate_toy:ToyRetrieval"},
        },
        modules={"ablate_toy": ABLATE_TOY_SOURCE},
    )
    # The module was written after its directory went on sys.path: make the import system look again.
    importlib.invalidate_caches()
    monkeypatch.setenv("PYTHONPATH", subprocess_env(root)["PYTHONPATH"])
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def grid_file(tmp_path: Path, body: str, base: str = TOY_BASE) -> Path:
    """``tmp_path/conf/base.yaml`` and ``tmp_path/conf/grid.yaml`` (``base: base.yaml`` + ``body``)."""
    write(tmp_path / "conf" / "base.yaml", base)
    return write(tmp_path / "conf" / "grid.yaml", "base: base.yaml\n" + textwrap.dedent(body))


def fake_finished_run(run_dir: Path, config: dict, metrics: dict[str, float]) -> None:
    """A run directory as the trainer leaves it when finished (config, metrics, saved-model manifest)."""
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(dump_yaml(config), encoding="utf-8")
    (run_dir / "metrics.jsonl").write_text(json.dumps({"step": 3, "loss": 1.0}) + "\n", encoding="utf-8")
    (run_dir / "model" / "repmix.json").write_text("{}", encoding="utf-8")
    (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")


POOLER = "model.towers.query.poolers.sentence.type"
SCALE = "model.losses.0.scale"


# --------------------------------------------------------------------------- grid expansion and names


def test_grid_zip_and_seeds_expand_to_named_variants(tmp_path: Path) -> None:
    grid = grid_file(tmp_path, f"""\
        name: demo
        grid:
          {POOLER}: [toy-mean, layer-mean]
        zip:
          train.lr: [1.0e-3, 5.0e-5, 0.1]
          train.batch_size: [8, 16, 4]
        seeds: [0, 1]
        """)
    spec = ab.load_grid(grid)
    assert spec.name == "demo" and spec.base == grid.parent / "base.yaml"
    assert spec.keys == [POOLER, "train.lr", "train.batch_size"]
    variants = ab.expand(spec)
    # 2 poolers x 3 zipped (lr, batch_size) rows x 2 seeds; the zip is ONE axis, not a product.
    assert len(variants) == 12
    assert len({v.group for v in variants}) == 6
    first = variants[0]
    assert first.name == "pooler=toy-mean__lr=0.001__batch_size=8__seed=0"
    assert first.group == "pooler=toy-mean__lr=0.001__batch_size=8"
    assert first.settings == {POOLER: "toy-mean", "train.lr": 1e-3, "train.batch_size": 8}
    assert first.overrides == [f'{POOLER}="toy-mean"', "train.lr=0.001", "train.batch_size=8", "train.seed=0"]
    assert variants[1].name == "pooler=toy-mean__lr=0.001__batch_size=8__seed=1"
    assert variants[3].name == "pooler=toy-mean__lr=5e-05__batch_size=16__seed=1"
    assert variants[-1].name == "pooler=layer-mean__lr=0.1__batch_size=4__seed=1"
    # Zipped values stay paired.
    assert {(v.settings["train.lr"], v.settings["train.batch_size"]) for v in variants} == {
        (1e-3, 8), (5e-5, 16), (0.1, 4)
    }
    # Deterministic: expanding again gives the same names, and every name is unique.
    assert [v.name for v in ab.expand(ab.load_grid(grid))] == [v.name for v in variants]
    assert len({v.name for v in variants}) == len(variants)
    # Seed-major run order covers every combination's first seed before any second seed.
    assert [v.seed for v in ab.run_order(variants)] == [0] * 6 + [1] * 6


def test_seeds_only_grid_and_default_seed(tmp_path: Path) -> None:
    spec = ab.load_grid(grid_file(tmp_path, "seeds: [3, 4]\n"))
    assert [(v.name, v.group) for v in ab.expand(spec)] == [("seed=3", "base"), ("seed=4", "base")]
    spec = ab.load_grid(grid_file(tmp_path, f"grid:\n  {SCALE}: [1.0, 2.0]\n"))
    variants = ab.expand(spec, base_seed=7)
    assert [v.name for v in variants] == ["scale=1.0__seed=7", "scale=2.0__seed=7"]
    assert all(not any(o.startswith("train.seed=") for o in v.overrides) for v in variants)


def test_labels_name_values_as_well_as_keys(tmp_path: Path) -> None:
    """A whole block as a value reads badly in a name and a plot: labels can name each value."""
    grid = grid_file(tmp_path, f"""\
        grid:
          {POOLER}: [{{type: toy-mean, normalize: true}}, {{type: layer-mean, layer: 0}}]
        zip:
          train.lr: [1.0e-3, 5.0e-5]
          train.batch_size: [8, 16]
        labels:
          {POOLER}: {{label: pool, values: [mean, first-layer]}}
          train.lr: {{values: [fast, slow]}}
        """)
    variants = ab.expand(ab.load_grid(grid))
    assert [v.group for v in variants] == [
        "pool=mean__lr=fast__batch_size=8", "pool=mean__lr=slow__batch_size=16",
        "pool=first-layer__lr=fast__batch_size=8", "pool=first-layer__lr=slow__batch_size=16",
    ]
    assert variants[2].settings[POOLER] == {"type": "layer-mean", "layer": 0}  # names only; values unchanged
    for bad, message in (
        ("{values: [only-one]}", "one short name for each of the 2 values"),
        ("{values: [a, a]}", "two different values have the same name"),
        ("{values: [a, 'b c']}", "a value name must be"),
        ("{names: [a, b]}", "unknown key 'names'"),
    ):
        bad_grid = grid_file(tmp_path, f"grid:\n  {POOLER}: [toy-mean, layer-mean]\nlabels:\n  {POOLER}: {bad}\n")
        with pytest.raises(ConfigError, match=message):
            ab.load_grid(bad_grid)


def test_a_zip_key_repeating_a_value_may_repeat_its_name(tmp_path: Path) -> None:
    """In a zip, one key may keep a value while another changes: equal values may share a name."""
    grid = grid_file(tmp_path, """\
        zip:
          train.lr: [1.0e-3, 1.0e-3, 5.0e-5]
          train.batch_size: [8, 16, 16]
        labels:
          train.lr: {values: [fast, fast, slow]}
        """)
    variants = ab.expand(ab.load_grid(grid))
    assert [v.group for v in variants] == ["lr=fast__batch_size=8", "lr=fast__batch_size=16", "lr=slow__batch_size=16"]
    bad = grid_file(tmp_path, "zip:\n  train.lr: [1.0e-3, 5.0e-5]\n  train.batch_size: [8, 16]\n"
                              "labels:\n  train.lr: {values: [same, same]}\n")
    with pytest.raises(ConfigError, match="two different values have the same name 'same'"):
        ab.load_grid(bad)


def test_labels_and_value_text() -> None:
    assert ab.default_label("model.towers.text.poolers.sentence.type") == "pooler"
    assert ab.default_label("model.towers.text.poolers.sentence") == "pooler"
    assert ab.default_label("model.towers.text.encoder.type") == "encoder"
    assert ab.default_label("model.towers.text.encoder.model") == "model"
    assert ab.default_label("model.losses.0.type") == "loss"
    assert ab.default_label("model.losses.1.weight") == "weight"
    assert ab.default_label("model.alignments.coarse.type") == "aligner"
    assert ab.default_label("evaluate.1.type") == "evaluator"
    assert ab.default_label("train.lr") == "lr"
    labels = ab.key_labels(["model.towers.a.poolers.s.type", "model.towers.b.poolers.s.type", "train.lr"])
    assert labels == {"model.towers.a.poolers.s.type": "a.poolers.s", "model.towers.b.poolers.s.type": "b.poolers.s",
                      "train.lr": "lr"}
    assert ab.key_labels(["train.lr"], {"train.lr": "LR"}) == {"train.lr": "LR"}
    assert ab.value_text(5e-5) == "5e-05"
    assert ab.value_text(True) == "true"
    assert ab.value_text("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers-all-MiniLM-L6-v2"
    assert ab.value_text({"type": "cls", "normalize": True}) == "cls-normalize-true"
    assert ab.value_text(["a", "b"]) == "a+b"
    long = ab.value_text("x" * 100)
    assert len(long) == 48 and long.startswith("x" * 39 + "~")
    assert long != ab.value_text("x" * 101)


@pytest.mark.parametrize(
    "value", ["1e-4", "on", "null", "", "é/ü", 1e-4, 5e-5, 3, True, None, {"type": "cls", "x": [1, 2.5, 'a"b']}]
)
def test_override_text_round_trips_exactly(value: object) -> None:
    from repmix.core.config import parse_override

    path, parsed = parse_override(ab.override_text("a.b", value))
    assert path == ("a", "b") and parsed == value and type(parsed) is type(value)


def test_whole_block_values_and_name_collisions(tmp_path: Path) -> None:
    grid = grid_file(tmp_path, """\
        grid:
          model.towers.query.poolers.sentence:
            - {type: toy-mean}
            - {type: toy-mean, normalize: true}
          model.towers.query.encoder.note: ["a/b", "a-b"]
        """)
    names = [v.name for v in ab.expand(ab.load_grid(grid))]
    assert names[0].startswith("pooler=toy-mean__note=a-b~")  # "a/b" and "a-b" sanitise alike: hashed apart
    assert names[2].startswith("pooler=toy-mean-normalize-true__note=a-b~")
    assert len(set(names)) == 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("grid:\n  train.lr: 0.1\n", "must be a list"),
        ("grid:\n  train.lr: []\n", "empty list"),
        ("grid:\n  train.lr: [0.1, 0.1]\n", "listed twice"),
        ("grid:\n  train.seed: [1, 2]\n", "vary the seed with 'seeds:'"),
        ("grid:\n  train.lr: [0.1]\nzip:\n  train.lr: [0.2]\n", "varied twice"),
        ("zip:\n  train.lr: [0.1, 0.2]\n  train.batch_size: [8]\n", "same length"),
        ("seeds: [0, 0]\n", "listed twice"),
        ("seeds: [0, x]\n", "seeds must be integers"),
        ("sedes: [0]\n", "did you mean 'seeds'"),
        ("grid:\n  train.lr: [0.1]\nlabels:\n  train.epochs: ep\n", "not varied"),
    ],
)
def test_grid_file_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ab.load_grid(grid_file(tmp_path, body))
    assert message in info.value.render()
    assert str(tmp_path / "conf" / "grid.yaml") in info.value.render()


def test_missing_base_is_located(tmp_path: Path) -> None:
    grid = write(tmp_path / "grid.yaml", "base: nowhere.yaml\nseeds: [0]\n")
    with pytest.raises(ConfigError, match="does not exist") as info:
        ab.load_grid(grid)
    assert info.value.line == 1 and "relative to the grid file" in info.value.render()


# --------------------------------------------------------------------------- validation before running


def test_unknown_grid_key_suggests_existing_one(toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid = grid_file(tmp_path, """\
        grid:
          model.towers.qeury.poolers.sentence.type: [toy-mean, layer-mean]
        """)
    out = tmp_path / "out"
    assert main(["ablate", str(grid), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "grid key 'model.towers.qeury.poolers.sentence.type' does not exist in the base config" in err
    assert "did you mean 'query'?" in err
    assert f"{grid}:3" in err
    assert not out.exists()


def test_unknown_top_level_key_suggests(toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid = grid_file(tmp_path, "grid:\n  trian.lr: [0.1, 0.2]\n")
    assert main(["ablate", str(grid), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "the top level has no key 'trian'" in err and "did you mean 'train'?" in err


def test_new_leaf_key_is_allowed_but_validated(toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The parent exists, so the key may be new; the pooler's own config then rejects the misspelling.
    grid = grid_file(tmp_path, "grid:\n  model.towers.query.poolers.sentence.normalise: [true, false]\n")
    assert main(["ablate", str(grid), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "variant 'normalise=true__seed=7'" in err and "unknown key 'normalise'" in err
    assert "did you mean 'normalize'?" in err


def test_one_bad_variant_stops_everything(toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid = grid_file(tmp_path, f"""\
        grid:
          {POOLER}: [toy-mean, layer-maen]
          train.batch_size: [8, 0]
        seeds: [0, 1]
        """)
    out = tmp_path / "out"
    assert main(["ablate", str(grid), "--jobs", "2", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    # The first invalid variant in grid order: batch_size 0 fails the train block's validation.
    assert "variant 'pooler=toy-mean__batch_size=0__seed=0'" in err
    assert "train.batch_size" in err
    assert f"{grid}:4" in err  # located at the grid value, not at the base config
    assert "6 of 8 variants are invalid" in err and "nothing was run" in err
    assert not out.exists()


def test_bad_component_names_variant_and_key(toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid = grid_file(tmp_path, f"grid:\n  {POOLER}: [toy-mean, layer-maen]\nseeds: [0]\n")
    assert main(["ablate", str(grid), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{grid}:3: {POOLER}: variant 'pooler=layer-maen__seed=0': unknown pooler 'layer-maen'" in err
    assert "did you mean 'layer-mean'?" in err
    assert not (tmp_path / "out").exists()


def test_override_of_a_varied_key_is_refused(toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid = grid_file(tmp_path, f"grid:\n  {SCALE}: [1.0, 2.0]\nseeds: [0]\n")
    assert main(["ablate", str(grid), f"{SCALE}=3", "-o", str(tmp_path / "out")]) == 2
    assert "which the grid varies" in capsys.readouterr().err
    assert main(["ablate", str(grid), "train.seed=3", "-o", str(tmp_path / "out")]) == 2
    assert "which the seeds: varies" in capsys.readouterr().err


def test_override_inside_a_block_the_grid_replaces_is_refused(
    toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    grid = grid_file(tmp_path, "grid:\n  model.towers.query.poolers.sentence: [{type: toy-mean}, {type: layer-mean}]\n")
    args = ["ablate", str(grid), "model.towers.query.poolers.sentence.normalize=false", "-o", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "inside 'model.towers.query.poolers.sentence', which the grid replaces as a whole" in err
    assert not (tmp_path / "out").exists()


def test_variant_config_values_and_dry_run(toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid = grid_file(tmp_path, """\
        grid:
          model.towers.query.poolers.sentence: [{type: layer-mean}, {type: toy-mean, normalize: false}]
          model.towers.query.poolers.sentence.source: [token]
        seeds: [5]
        """)
    abl = ab.prepare(grid, ["train.epochs=2"])
    cfgs = [v.config for v in abl.variants]
    assert cfgs[0] is not None and cfgs[1] is not None
    # The whole block is replaced first, then the nested key is set inside it.
    assert cfgs[0].get("model.towers.query.poolers.sentence") == {"type": "layer-mean", "source": "token"}
    assert cfgs[1].get("model.towers.query.poolers.sentence") == {"type": "toy-mean", "normalize": False,
                                                                  "source": "token"}
    assert cfgs[0].get("train") == {"epochs": 2, "batch_size": 8, "lr": 0.001, "seed": 5}
    assert abl.variants[0].digest != abl.variants[1].digest

    out = tmp_path / "out"
    assert main(["ablate", str(grid), "train.epochs=2", "-o", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "1 combination(s)" not in text and "2 combination(s) x 1 seed(s) = 2 run(s), all valid" in text
    assert "train            pooler=layer-mean__source=token__seed=5" in text
    assert 'model.towers.query.poolers.sentence={"type": "layer-mean"}' in text
    assert not out.exists()


# --------------------------------------------------------------------------- results from finished runs

ACCURACY = {  # (pooler, seed) -> accuracy; mean_rank is derived so the best differs per metric
    ("toy-mean", 0): 0.50, ("toy-mean", 1): 0.60, ("toy-mean", 2): 0.70,
    ("layer-mean", 0): 0.40, ("layer-mean", 1): 0.45, ("layer-mean", 2): 0.50,
}
MEAN_RANK = {("toy-mean", s): 3.0 + s for s in range(3)} | {("layer-mean", s): 1.5 for s in range(3)}


def handmade_ablation(tmp_path: Path) -> tuple[Path, Path, ab.Ablation]:
    grid = grid_file(tmp_path, f"name: pools\ngrid:\n  {POOLER}: [toy-mean, layer-mean]\nseeds: [0, 1, 2]\n")
    out = tmp_path / "out"
    abl = ab.prepare(grid)
    for v in abl.variants:
        assert v.config is not None
        key = (v.settings[POOLER], v.seed)
        metrics = {"accuracy": ACCURACY[key], "mean_rank": MEAN_RANK[key]}
        fake_finished_run(ab.run_dir_of(out, v), v.config.data, metrics)
    return grid, out, abl


def test_results_from_finished_runs_are_aggregated(
    toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    grid, out, _ = handmade_ablation(tmp_path)
    assert main(["ablate", str(grid), "-o", str(out), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    # Every run was finished already: all skipped, nothing trained (no logs written).
    assert printed.count(" skip ") == 6 and "0 trained, 6 skipped" in printed
    assert "accuracy=0.5000" in printed  # headline metric = first in metrics.json
    assert not (out / "logs").exists()

    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert len(rows) == 6
    assert list(rows[0]) == ["variant", "run", POOLER, "seed", "status", "accuracy", "mean_rank"]
    assert rows[0] == {"variant": "pooler=toy-mean", "run": "pooler=toy-mean__seed=0", POOLER: "toy-mean",
                       "seed": "0", "status": "finished", "accuracy": "0.5", "mean_rank": "3.0"}

    md = (out / "results.md").read_text()
    good = [ACCURACY[("toy-mean", s)] for s in range(3)]
    bad = [ACCURACY[("layer-mean", s)] for s in range(3)]
    assert f"**{statistics.mean(good):.4f} ± {statistics.stdev(good):.4f}**" in md  # higher accuracy wins
    assert f"| {statistics.mean(bad):.4f} ± {statistics.stdev(bad):.4f} |" in md
    assert "**1.5000 ± 0.0000**" in md  # lower mean_rank wins: layer-mean
    assert f"| {statistics.mean([3.0, 4.0, 5.0]):.4f} ± 1.0000 |" in md
    assert "accuracy ↑" in md and "mean_rank ↓" in md
    assert "| variant | pooler | n |" in md
    assert "![results](results.png)" in md

    png = (out / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000

    plan = json.loads((out / "plan.json").read_text())
    assert [v["name"] for v in plan["variants"]] == [
        f"pooler={p}__seed={s}" for p in ("toy-mean", "layer-mean") for s in range(3)
    ]


def test_changed_base_refuses_to_reuse_runs(toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid, out, _ = handmade_ablation(tmp_path)
    assert main(["ablate", str(grid), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["ablate", str(grid), "train.lr=0.5", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "6 variant(s)" in err and "were run with a different config" in err


def test_dry_run_reports_skip_resume_train(toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid, out, abl = handmade_ablation(tmp_path)
    second = ab.run_dir_of(out, abl.variants[1])
    (second / "metrics.json").unlink()  # interrupted before the end: resumable
    (second / "run.json").write_text("{}")
    third = ab.run_dir_of(out, abl.variants[2])
    for child in sorted(third.rglob("*"), reverse=True):
        child.unlink() if child.is_file() else child.rmdir()
    assert main(["ablate", str(grid), "-o", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "skip (finished)  pooler=toy-mean__seed=0" in text
    assert "resume           pooler=toy-mean__seed=1" in text
    assert "train            pooler=toy-mean__seed=2" in text
    assert not (out / "plan.json").exists()


def test_single_seed_cells_and_missing_runs(toy_env: Path, tmp_path: Path) -> None:
    grid = grid_file(tmp_path, f"grid:\n  {SCALE}: [1.0, 2.0]\nseeds: [0]\n")
    abl = ab.prepare(grid)
    out = tmp_path / "out"
    v = abl.variants[0]
    assert v.config is not None
    fake_finished_run(ab.run_dir_of(out, v), v.config.data, {"val_loss": 0.25})
    written = ab.write_results(abl, out)
    md = written["md"].read_text()
    assert "| scale=1.0 | 1.0 | 1 | 0.2500 |" in md  # one seed: the value alone, no ± and nothing bold
    assert "| scale=2.0 | 2.0 | 0 | — |" in md
    assert "- `scale=2.0__seed=0`: not started" in md
    assert "val_loss ↓" in md


# --------------------------------------------------------------------------- runs compare


def test_lower_is_better_rule() -> None:
    assert lower_is_better("mean_rank") and lower_is_better("eval/Loss") and lower_is_better("median-rank")
    assert not lower_is_better("mrr") and not lower_is_better("ndcg@10") and not lower_is_better("spearman")


def test_differing_keys_tells_types_apart() -> None:
    a = {"train": {"lr": 1, "seed": 0}, "model": {"losses": [{"type": "x"}]}}
    b = {"train": {"lr": 1.0, "seed": 0}, "model": {"losses": [{"type": "y"}]}, "name": "b"}
    assert differing_keys([a, b]) == ["train.lr", "model.losses.0.type", "name"]
    assert differing_keys([a, a]) == []


def make_compare_runs(tmp_path: Path) -> list[Path]:
    base = {"model": {"towers": {"t": {"poolers": {"s": {"type": "mean"}}}}}, "train": {"seed": 0, "lr": 0.1}}
    a = tmp_path / "runs" / "a"
    b = tmp_path / "runs" / "b"
    c = tmp_path / "runs" / "c"
    fake_finished_run(a, base, {"mrr": 0.5, "mean_rank": 2.0})
    cfg_b = json.loads(json.dumps(base))
    cfg_b["model"]["towers"]["t"]["poolers"]["s"]["type"] = "cls"
    fake_finished_run(b, cfg_b, {"mrr": 0.7, "mean_rank": 3.0})
    cfg_c = json.loads(json.dumps(base))
    cfg_c["train"]["seed"] = 1
    c.mkdir(parents=True)
    (c / "config.yaml").write_text(dump_yaml(cfg_c))
    (c / "metrics.jsonl").write_text('{"step": 10, "loss": 2.0}\n{"step": 20, "loss": 1.5}\n')
    return [a, b, c]


def test_runs_compare_markdown(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b, c = make_compare_runs(tmp_path)
    assert main(["runs", "compare", str(a), str(b), str(c)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| run | status | model.towers.t.poolers.s.type | train.seed | mrr | mean_rank |"
    assert lines[2] == f"| {a} | finished | mean | 0 | 0.5000 | **2.0000** |"
    assert lines[3] == f"| {b} | finished | cls | 0 | **0.7000** | 3.0000 |"
    assert lines[4] == f"| {c} | unfinished (step 20) | mean | 1 | — | — |"


def test_runs_compare_csv_metrics_and_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_compare_runs(tmp_path)
    folder = tmp_path / "runs"
    assert main(["runs", "compare", str(folder), "--metrics", "mean_rank", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["run", "status", "model.towers.t.poolers.s.type", "train.seed", "mean_rank"]
    assert rows[1] == [str(folder / "a"), "finished", "mean", "0", "2.0"]
    assert rows[3] == [str(folder / "c"), "unfinished (step 20)", "mean", "1", ""]
    assert main(["runs", "compare", str(folder), "--metrics", "mrrr"]) == 2
    assert "did you mean 'mrr'?" in capsys.readouterr().err
    assert main(["runs", "compare", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_runs_compare_reads_ablation_output(toy_env: Path, tmp_path: Path) -> None:
    _, out, _ = handmade_ablation(tmp_path)
    runs = [read_run(p) for p in sorted((out / "variants").iterdir())]
    table = compare_runs(runs, "accuracy")
    assert table.count("finished") == 6
    assert f"**{max(ACCURACY.values()):.4f}**" in table
    assert POOLER in table.splitlines()[0] and "train.seed" in table.splitlines()[0]


# --------------------------------------------------------------------------- end to end (real training)


@pytest.mark.slow
def test_failed_variant_is_reported_and_others_continue(
    toy_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    grid = grid_file(tmp_path, "grid:\n  data.fail_on_load: [false, true]\nseeds: [0]\n")
    out = tmp_path / "out"
    assert main(["ablate", str(grid), "train.max_steps=2", "-o", str(out), "--jobs", "2"]) == 1
    captured = capsys.readouterr()
    ok, bad = "fail_on_load=false__seed=0", "fail_on_load=true__seed=0"
    assert f"done   {ok}  accuracy=" in captured.out
    assert f"FAILED {bad}" in captured.out and "toy dataset asked to fail" in captured.out
    log = out / "logs" / f"{bad}.log"
    assert f"log: {log}" in captured.err and "toy dataset asked to fail" in log.read_text()
    assert (out / "variants" / ok / "metrics.json").is_file()
    md = (out / "results.md").read_text()
    assert f"- `{bad}`: failed:" in md and "toy dataset asked to fail" in md
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert [(r["run"], r["status"] == "finished", r["accuracy"] != "") for r in rows] == [
        (ok, True, True), (bad, False, False)
    ]

    # Running again skips the finished variant and retries only the failed one.
    assert main(["ablate", str(grid), "train.max_steps=2", "-o", str(out)]) == 1
    again = capsys.readouterr().out
    assert f"skip   {ok}" in again and f"start  {bad}" in again and f"start  {ok}" not in again

    # A run that stopped before writing its final metrics is resumed (repmix train --resume), not restarted.
    (out / "variants" / ok / "metrics.json").unlink()
    assert main(["ablate", str(grid), "train.max_steps=2", "-o", str(out)]) == 1
    third = capsys.readouterr().out
    assert f"start  {ok}  (resuming)" in third and f"done   {ok}  accuracy=" in third
    assert any("--resume" in line for line in (out / "logs" / f"{ok}.log").read_text().splitlines()[-12:])


def test_job_env_limits_threads_per_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ab, "available_cores", lambda: 8)
    env = ab.job_env(3, base={"PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "2" and env["PATH"] == "/bin"
    assert ab.job_env(16, base={})["OMP_NUM_THREADS"] == "1"
    assert ab.job_env(2, base={"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"  # the user's choice wins


def write_tiny_bert(directory: Path) -> Path:
    """A random 2-layer BERT (hidden 32) over a letter WordPiece vocabulary, saved with save_pretrained."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *[f"##{c}" for c in letters]]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=True).save_pretrained(str(directory))
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(directory))
    return directory


TINY_BERT_BASE = """\
model:
  towers:
    query:
      tokenizer: {{type: hf-tokenizer, model: {bert}, max_length: 16}}
      encoder: {{type: hf-transformer, model: {bert}}}
      poolers:
        sentence: {{type: mean}}
    document: {{shared_with: query}}
  alignments:
    sim: {{type: cosine, between: [query.sentence, document.sentence]}}
  losses:
    - {{type: mnrl, on: sim}}
data: {{type: pairs, path: {data}, fields: {{query: query, document: document}}}}
train: {{epochs: 1, batch_size: 8, lr: 0.001, max_steps: 3}}
evaluate: {{type: retrieval, progress: false, metrics: [mrr, mean_rank]}}
"""


@pytest.mark.slow
def test_tiny_bert_ablation_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("repmix_std", reason="the end-to-end ablation trains repmix-std components")
    bert = write_tiny_bert(tmp_path / "bert")
    words = ["alpha beta", "gamma delta", "epsilon", "zeta eta theta", "iota kappa", "lambda mu", "nu xi", "omicron pi"]
    rows = ["query\tdocument", *(f"{w} {i}\t{w} {w.split()[0]} {i}" for i, w in enumerate(words * 2))]
    data = write(tmp_path / "pairs.tsv", "\n".join(rows) + "\n")
    grid = grid_file(
        tmp_path,
        f"name: tiny-bert\ngrid:\n  {POOLER}: [mean, cls]\nseeds: [0, 1]\n",
        base=TINY_BERT_BASE.format(bert=bert, data=data),
    )
    out = tmp_path / "out"
    assert main(["ablate", str(grid), "-o", str(out), "--jobs", "2"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    names = [f"pooler={p}__seed={s}" for p in ("mean", "cls") for s in (0, 1)]
    for name in names:
        assert f"start  {name}" in printed and f"done   {name}  query->document/mrr=" in printed
        run = read_run(out / "variants" / name)
        assert run.status == "finished"
        assert run.config["model"]["towers"]["query"]["poolers"]["sentence"]["type"] == name.split("__")[0][7:]
        assert run.config["train"]["seed"] == int(name[-1])
        assert set(run.metrics) >= {"query->document/mrr", "query->document/mean_rank"}
    assert "4 trained, 0 skipped (finished earlier), 0 failed" in printed

    rows_out = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert [r["run"] for r in rows_out] == names and all(r["status"] == "finished" for r in rows_out)
    mrr = {r["run"]: float(r["query->document/mrr"]) for r in rows_out}
    md = (out / "results.md").read_text()
    for pooler in ("mean", "cls"):
        vals = [mrr[f"pooler={pooler}__seed={s}"] for s in (0, 1)]
        assert f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" in md
    assert md.count("**") >= 2  # a best value is marked per metric
    assert (out / "results.png").stat().st_size > 5000

    # Re-running skips every finished variant; runs compare reads the ablation's directory.
    assert main(["ablate", str(grid), "-o", str(out), "--jobs", "2"]) == 0
    assert "0 trained, 4 skipped (finished earlier), 0 failed" in capsys.readouterr().out
    assert main(["runs", "compare", str(out), "--metrics", "query->document/mrr"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == f"| run | status | {POOLER} | train.seed | query->document/mrr |"
    assert len(table) == 6 and all("| finished |" in line for line in table[2:])


def test_interrupt_forwards_one_sigint_and_stops_queued_variants(toy_env: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    grid = grid_file(tmp_path, f"grid:\n  {SCALE}: [1.0, 2.0]\nseeds: [0]\n")
    abl = ab.prepare(grid)
    lines: list[str] = []
    runner = ab._Runner(abl, tmp_path / "out", 1, lines.append)
    marker = tmp_path / "got-sigint"
    # Stands in for a training process: on its first SIGINT it "checkpoints" (writes a file) and exits 130.
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import pathlib, signal, sys, time
        def stop(*_):
            pathlib.Path({str(marker)!r}).write_text("checkpoint")
            sys.exit(130)
        signal.signal(signal.SIGINT, stop)
        print("ready", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    runner.procs.add(child)
    runner.interrupt(grace=30)
    assert child.returncode == 130 and marker.read_text() == "checkpoint"
    assert "asking 1 running variant(s) to write a checkpoint and stop" in lines[0]
    outcome = runner.run_one(2, 2, abl.variants[1])  # queued variants no longer start
    assert outcome.status == "failed" and "interrupted" in outcome.reason
    assert not (tmp_path / "out" / "logs").exists()


def test_sigterm_becomes_an_interrupt_while_variants_run() -> None:
    """A SIGTERM to the ablation takes the Ctrl-C path (running variants checkpoint and stop), not orphaning them."""
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), ab.sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_long_combination_names_are_numbered_in_the_plot() -> None:
    short = ["pooler=cls", "pooler=mean"]
    assert ab.tick_labels(short) == (short, [])
    long = ["global=0.5__local=0.25__mid=0.25__solver=ipot", "global=1.0__local=0.0__mid=0.0__solver=ipot"]
    ticks, key = ab.tick_labels(long)
    assert ticks == ["1", "2"] and key == [f"1: {long[0]}", f"2: {long[1]}"]


def test_default_output_directory_does_not_double_the_prefix() -> None:
    assert ab.default_out_dir("grids/pooler-loss.yaml") == Path("runs/ablate-pooler-loss")
    assert ab.default_out_dir("examples/ablate-poolers.yaml") == Path("runs/ablate-poolers")
