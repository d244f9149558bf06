"""Issue 17: skipped rows are reported everywhere; items no tower accepts fail up front with file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_engine_toys import TOY_RUN, ToyPairs, registered_toys, toy_config
from toys import CharTokenizer

from repmix.cli.main import main
from repmix.core.components import Examples
from repmix.core.errors import InputError
from repmix.engine.report import chance_levels
from repmix.engine.training import train_run
from repmix.registry.registry import temporary_component


class SkippingPairs(ToyPairs):
    """Toy pairs that report two skipped rows, as ``on_error: skip`` does."""

    def load(self, split: str | None = None) -> Examples:
        ex = super().load(split)
        ex.skipped = 2
        ex.notes = ["skipped 2 malformed row(s) (on_error: skip)", "skipped data.tsv:3: 2 columns, expected 3"]
        return ex


class LinedPairs(ToyPairs):
    """Toy pairs with a bad item at example 5, whose source line is 9 of ``pairs.tsv``."""

    def load(self, split: str | None = None) -> Examples:
        ex = super().load(split)
        if (split or self.config.split) == "train":
            ex.columns["query"][4] = "bad!item"
            ex.extras["source_lines"] = ("pairs.tsv", [i + 5 for i in range(len(ex))])
        return ex


class StrictChars(CharTokenizer):
    """Characters, refusing ``!`` (like a SMILES parser refusing a bad SMILES)."""

    def check_item(self, item: Any) -> str | None:
        return "'!' is not allowed" if "!" in str(item) else None

    def __call__(self, items: Sequence[Any]) -> Any:
        assert not any("!" in s for s in items), "a bad item reached a batch"
        return super().__call__(items)


@pytest.fixture(autouse=True)
def toys(fresh_registry: None) -> Iterator[None]:
    with registered_toys(), temporary_component("dataset", "skipping-pairs", SkippingPairs), \
            temporary_component("dataset", "lined-pairs", LinedPairs), \
            temporary_component("tokenizer", "strict-chars", StrictChars):
        yield


def test_skipped_rows_reach_stdout_metrics_report_and_evaluation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toy_config(tmp_path, text=TOY_RUN.replace("toy-pairs", "skipping-pairs"))
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "toy.yaml"), "-o", str(run), "--no-progress", "train.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 row(s)" in out and "data.tsv:3" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert any(v["rows"] == 2 for v in metrics["skipped_rows"].values())
    assert "## Skipped rows" in (run / "report.md").read_text() and "data.tsv:3" in (run / "report.md").read_text()
    assert main(["evaluate", str(run), "--no-progress"]) == 0
    assert "data.tsv:3" in capsys.readouterr().out
    assert "data.tsv:3" in (run / "evaluation.md").read_text()
    assert json.loads((run / "metrics.json").read_text())["skipped_rows"]


def test_an_item_no_tower_accepts_fails_before_training_naming_file_and_line(tmp_path: Path) -> None:
    text = TOY_RUN.replace("toy-pairs", "lined-pairs").replace("{type: chars}", "{type: strict-chars}")
    with pytest.raises(InputError) as info:
        train_run(toy_config(tmp_path, text=text), tmp_path / "run", progress=False)
    assert "pairs.tsv:9" in info.value.message and "'!' is not allowed" in info.value.message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_chance_levels() -> None:
    text = chance_levels({"hits@1": 0.5, "mrr": 0.6, "mean_rank": 2.0, "spearman": 0.3}, {"": 4})
    assert "`hits@1` 0.2500" in text and "`mean_rank` 2.5" in text and "spearman" not in text
    assert "`mrr` 0.5208" in text
