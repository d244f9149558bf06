"""Tests of the std datasets: pairs, sts, beir (real STS-B / SciFact where available, synthetic files otherwise)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest
from repmix.sdk import InputError, Runtime
from repmix_std.datasets import (
    BeirConfig,
    BeirDataset,
    PairsConfig,
    PairsDataset,
    StsConfig,
    StsDataset,
    holdout_indices,
    read_items,
    subset_indices,
)

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("REPMIX_SHARED_DATA", REPO.parent / "shared" / "data"))
STSB = SHARED / "stsb"
SCIFACT = SHARED / "scifact"
needs_stsb = pytest.mark.skipif(
    not (STSB / "train.tsv").is_file(), reason=f"STS-B not found under {STSB} (set REPMIX_SHARED_DATA)"
)
needs_scifact = pytest.mark.skipif(
    not (SCIFACT / "corpus.jsonl").is_file(), reason=f"SciFact not found under {SCIFACT} (set REPMIX_SHARED_DATA)"
)


def sts(**kw: Any) -> StsDataset:
    return StsDataset(StsConfig(**kw), Runtime())


def pairs(**kw: Any) -> PairsDataset:
    return PairsDataset(PairsConfig(**kw), Runtime())


def beir(**kw: Any) -> BeirDataset:
    return BeirDataset(BeirConfig(**kw), Runtime())


def raw_tsv(path: Path) -> list[list[str]]:
    """Rows of a TSV read independently of repmix: split each line on tabs (no quoting)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return [line.split("\t") for line in lines[1:] if line]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- STS-B
@needs_stsb
@pytest.mark.parametrize(("split", "rows", "mean"), [("train", 5749, 2.701), ("dev", 1500, 2.364)])
def test_stsb_every_row_loads(split: str, rows: int, mean: float) -> None:
    ex = sts(path=str(STSB)).load(split)
    assert len(ex) == rows and ex.skipped == 0 and ex.notes == []
    assert set(ex.columns) == {"query", "document"}
    raw = raw_tsv(STSB / f"{split}.tsv")
    assert ex.columns["query"] == [r[1] for r in raw]
    assert ex.columns["document"] == [r[2] for r in raw]
    assert ex.targets == [float(r[0]) for r in raw]
    assert sum(ex.targets) / rows == pytest.approx(mean, abs=5e-4)  # SOURCE.md's statistics
    assert min(ex.targets) == 0.0 and max(ex.targets) == 5.0


@needs_stsb
@pytest.mark.parametrize(("split", "quoted"), [("train", 124), ("dev", 42)])
def test_stsb_rows_starting_with_a_quote_load_verbatim(split: str, quoted: int) -> None:
    ex = sts(path=str(STSB)).load(split)
    starts = [
        i for i in range(len(ex)) if ex.columns["query"][i].startswith('"') or ex.columns["document"][i].startswith('"')
    ]
    assert len(starts) == quoted  # the counts SOURCE.md gives
    raw = raw_tsv(STSB / f"{split}.tsv")
    for i in starts:
        assert [ex.columns["query"][i], ex.columns["document"][i]] == raw[i][1:]
    # default csv quoting would merge rows; quoting off must not
    with open(STSB / f"{split}.tsv", newline="", encoding="utf-8") as f:
        assert sum(1 for _ in csv.reader(f, delimiter="\t")) - 1 < len(ex)


@needs_stsb
def test_stsb_min_score_keeps_positives_and_reports_the_rest() -> None:
    expected = sum(1 for r in raw_tsv(STSB / "train.tsv") if float(r[0]) >= 4)
    ex = sts(path=str(STSB), min_score=4).load()
    assert len(ex) == expected == 1406
    assert ex.skipped == 5749 - expected
    assert all(t >= 4 for t in ex.targets)
    assert any(f"kept {expected} of 5749" in n and "min_score 4" in n for n in ex.notes)
    # limit applies after the filter: 100 positives, not 100 rows of which some are filtered
    assert len(sts(path=str(STSB), min_score=4, limit=100).load()) == 100


# --------------------------------------------------------------------------- synthetic STS / pairs files
HEADER = "score\tsentence1\tsentence2\n"


def test_quote_characters_are_data(tmp_path: Path) -> None:
    f = write(tmp_path / "train.tsv", HEADER + '4.0\t"Hello, he said\tWorld "quoted"\n1.5\ta\t"b\n')
    ex = sts(path=str(f)).load()
    assert ex.columns["query"] == ['"Hello, he said', "a"]
    assert ex.columns["document"] == ['World "quoted"', '"b']
    assert ex.targets == [4.0, 1.5]


def test_crlf_and_bom(tmp_path: Path) -> None:
    f = tmp_path / "x.tsv"
    f.write_bytes(b"\xef\xbb\xbf" + HEADER.replace("\n", "\r\n").encode() + b"3\tone\ttwo\r\n")
    ex = sts(path=str(f)).load()
    assert ex.columns == {"query": ["one"], "document": ["two"]} and ex.targets == [3.0]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2.0\tonly two fields", "expected 3 tab-separated fields"),
        ("2.0\ta\tb\tc", "found 4"),
        ("high\ta\tb", "not a finite number"),
        ("nan\ta\tb", "not a finite number"),
        ("5.5\ta\tb", "outside score_range [0, 5]"),
        ("-0.1\ta\tb", "outside score_range"),
        ("3\t\tb", "field 'sentence1' is empty"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, row: str, reason: str) -> None:
    f = write(tmp_path / "train.tsv", HEADER + "1\tx\ty\n" + row + "\n4\tp\tq\n")
    with pytest.raises(InputError) as err:
        sts(path=str(f)).load()
    assert f"{f}:3:" in err.value.message and reason in err.value.message
    assert "on_error: skip" in err.value.render()
    ex = sts(path=str(f), on_error="skip").load()
    assert len(ex) == 2 and ex.skipped == 1 and ex.targets == [1.0, 4.0]
    assert any(f"{f}:3:" in n and reason in n for n in ex.notes)


def test_skip_counts_every_malformed_row(tmp_path: Path) -> None:
    body = "".join(f"{i % 7}\ts{i}\tt{i}\n" for i in range(20))  # scores 5, 6 are out of range
    f = write(tmp_path / "train.tsv", HEADER + body + "bad\n")
    ex = sts(path=str(f), on_error="skip").load()
    bad = sum(1 for i in range(20) if i % 7 > 5) + 1
    assert ex.skipped == bad and len(ex) == 20 - bad + 1
    assert ex.notes[0] == f"skipped {bad} malformed row(s) (on_error: skip)"


def test_undecodable_line(tmp_path: Path) -> None:
    f = tmp_path / "train.tsv"
    f.write_bytes(HEADER.encode() + b"1\tok\tfine\n2\tbad \xff byte\tx\n")
    with pytest.raises(InputError, match=r"train\.tsv:3: not valid UTF-8"):
        sts(path=str(f)).load()
    assert sts(path=str(f), on_error="skip").load().skipped == 1


def test_missing_file_directory_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as err:
        sts(path=str(tmp_path / "nope.tsv")).load()
    assert "current working directory" in err.value.render()
    with pytest.raises(InputError, match="does not exist"):
        sts(path=str(tmp_path / "no-dir")).load()
    empty = write(tmp_path / "empty.tsv", "")
    with pytest.raises(InputError, match="is empty"):
        sts(path=str(empty)).load()
    blank = write(tmp_path / "blank.tsv", "\n\n")
    with pytest.raises(InputError, match="is empty"):
        sts(path=str(blank)).load()
    header_only = write(tmp_path / "header.tsv", HEADER)
    with pytest.raises(InputError, match="has a header but no rows"):
        sts(path=str(header_only), on_error="skip").load()


def test_wrong_header_lists_found_expected_and_suggests(tmp_path: Path) -> None:
    f = write(tmp_path / "train.tsv", "score\tsentence_1\tsentence2\n1\ta\tb\n")
    with pytest.raises(InputError) as err:
        sts(path=str(f), on_error="skip").load()
    text = err.value.render()
    assert f"{f}:1:" in text and "'sentence1'" in text and "did you mean 'sentence_1'?" in text
    assert "columns found: score, sentence_1, sentence2" in text
    assert "columns expected: sentence1, sentence2, score" in text
    comma = write(tmp_path / "comma.tsv", "score,sentence1,sentence2\n1,a,b\n")
    with pytest.raises(InputError, match="tab-separated headers"):
        sts(path=str(comma)).load()


def test_directory_of_splits_and_files_mapping(tmp_path: Path) -> None:
    write(tmp_path / "d" / "train.tsv", HEADER + "1\ta\tb\n")
    write(tmp_path / "d" / "dev.csv", 'score,sentence1,sentence2\n2,"c, with comma","d\nsecond line"\n3,e,f\n')
    ds = sts(path=str(tmp_path / "d"))
    assert ds.load().columns["query"] == ["a"]
    dev = ds.load("dev")  # another split than the config's
    assert dev.columns["query"] == ["c, with comma", "e"] and dev.columns["document"][0] == "d\nsecond line"
    with pytest.raises(InputError, match=r"no file for split 'trian'.*did you mean 'train'") as err:
        ds.load("trian")
    assert "dev.csv, train.tsv" in err.value.render()
    write(tmp_path / "d" / "train.jsonl", '{"score": 1, "sentence1": "a", "sentence2": "b"}\n')
    with pytest.raises(InputError, match="ambiguous"):
        ds.load("train")
    mapped = sts(files={"train": str(tmp_path / "d" / "train.jsonl"), "dev": str(tmp_path / "d" / "dev.csv")})
    assert mapped.load().targets == [1.0] and len(mapped.load("dev")) == 2
    with pytest.raises(InputError, match="did you mean 'dev'"):
        mapped.load("deV")


def test_csv_error_on_row_with_a_bad_line_number(tmp_path: Path) -> None:
    f = write(tmp_path / "x.csv", 'score,sentence1,sentence2\n1,a,b\n2,"multi\nline",c\n3,x\n')
    with pytest.raises(InputError, match=r"x\.csv:5: expected 3 comma-separated fields"):
        sts(path=str(f)).load()


def test_long_fields(tmp_path: Path) -> None:
    import csv

    long = "x " * 200_000
    f = write(tmp_path / "long.tsv", f"a\tb\n{long}\tshort\n")
    limit = csv.field_size_limit()
    assert pairs(path=str(f), fields={"text": "a", "molecule": "b"}).load().columns["text"] == [long]
    assert csv.field_size_limit() == limit  # the csv module's global limit is restored


def test_relative_paths_are_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "data" / "p.tsv", "a\tb\nx\ty\n")
    monkeypatch.chdir(tmp_path)
    assert pairs(path="data/p.tsv", fields={"text": "a", "molecule": "b"}).load().columns == {
        "text": ["x"],
        "molecule": ["y"],
    }
    monkeypatch.chdir(tmp_path / "data")
    with pytest.raises(InputError, match=r"data/p\.tsv \(= .*data/data/p\.tsv\) does not exist"):
        pairs(path="data/p.tsv", fields={"text": "a"}).load()


def test_pairs_fields_target_and_ids(tmp_path: Path) -> None:
    f = write(tmp_path / "p.tsv", "cid\tsmiles\tdescription\tlogp\n1\tCCO\tethanol\t-0.3\n2\tC\tmethane\t1.1\n")
    ex = pairs(path=str(f), fields={"text": "description", "molecule": "smiles"}, target="logp", id="cid").load()
    assert ex.columns == {"text": ["ethanol", "methane"], "molecule": ["CCO", "C"]}
    assert ex.targets == [-0.3, 1.1] and ex.ids == ["1", "2"]
    one = pairs(path=str(f), fields={"molecule": "smiles"}).load()
    assert one.columns == {"molecule": ["CCO", "C"]} and one.targets is None
    with pytest.raises(InputError, match="did you mean 'smiles'"):
        pairs(path=str(f), fields={"molecule": "smile"}).load()


def test_pairs_jsonl(tmp_path: Path) -> None:
    rows = [
        {"q": "a", "d": "b", "y": 1},
        "not an object",
        {"q": "c"},
        {"q": "e", "d": None},
        {"q": "g", "d": "h", "y": "2.5"},
    ]
    text = "\n".join(json.dumps(r) for r in rows) + "\n{broken\n\n"
    f = write(tmp_path / "train.jsonl", text)
    with pytest.raises(InputError, match=r"train\.jsonl:2: expected a JSON object"):
        pairs(path=str(f), fields={"query": "q", "document": "d"}).load()
    ex = pairs(path=str(f), fields={"query": "q", "document": "d"}, target="y", on_error="skip").load()
    assert ex.columns == {"query": ["a", "g"], "document": ["b", "h"]} and ex.targets == [1.0, 2.5]
    assert ex.skipped == 4
    joined = "\n".join(ex.notes)
    assert f"{f}:3: missing field 'd'" in joined and f"{f}:4: field 'd' is null" in joined
    assert f"{f}:6: invalid JSON" in joined
    with pytest.raises(
        InputError, match="missing field 'smile' \\(did you mean 'smiles'\\?\\); fields found: cid, smiles"
    ):
        pairs(path=str(write(tmp_path / "k.jsonl", '{"cid": 1, "smiles": "C"}\n')), fields={"molecule": "smile"}).load()


def test_unknown_suffix_and_config_errors(tmp_path: Path) -> None:
    f = write(tmp_path / "p.data", "a\tb\nx\ty\n")
    with pytest.raises(InputError, match="cannot tell the format"):
        pairs(path=str(f), fields={"t": "a"}).load()
    assert pairs(path=str(f), fields={"t": "a"}, format="tsv").load().columns == {"t": ["x"]}
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="exactly one of 'path'"):
        PairsConfig(fields={"t": "a"})
    with pytest.raises(ValidationError):
        PairsConfig(path="x", fields={"t": "a"}, on_error="ignore")
    with pytest.raises(ValidationError, match="holdout"):
        PairsConfig(path="x", fields={"t": "a"}, holdout=1.5)


def test_read_items(tmp_path: Path) -> None:
    assert read_items(write(tmp_path / "m.txt", "CCO\n\nC\n")) == ["CCO", "C"]
    assert read_items(write(tmp_path / "m.tsv", "cid\tsmiles\n1\tN\n"), "smiles") == ["N"]
    with pytest.raises(InputError, match="name the column"):
        read_items(tmp_path / "m.tsv")


# --------------------------------------------------------------------------- subsets and holdout
def test_subset_is_deterministic_nested_and_in_file_order() -> None:
    a = subset_indices(1000, 50, None, 0)
    assert a == subset_indices(1000, 50, None, 0) == sorted(a) and len(a) == 50
    assert set(a) < set(subset_indices(1000, 80, None, 0))  # growing the limit only adds rows
    assert a != subset_indices(1000, 50, None, 1)
    assert len(subset_indices(1000, None, 0.25, 0)) == 250
    assert len(subset_indices(10, None, 0.01, 0)) == 1  # ceil: never empty
    assert len(subset_indices(1000, 100, 0.5, 0)) == 100  # the smaller of the two
    assert subset_indices(5, None, None, 0) == [0, 1, 2, 3, 4]


def test_limit_and_fraction_on_files(tmp_path: Path) -> None:
    f = write(tmp_path / "p.tsv", "a\n" + "".join(f"row{i}\n" for i in range(40)))
    first = pairs(path=str(f), fields={"t": "a"}, limit=7).load()
    again = pairs(path=str(f), fields={"t": "a"}, limit=7).load()
    assert first.columns == again.columns and len(first) == 7
    assert first.columns["t"] == [f"row{i}" for i in subset_indices(40, 7, None, 0)]
    assert any("kept 7 of 40 rows" in n for n in first.notes)
    other = pairs(path=str(f), fields={"t": "a"}, limit=7, subset_seed=3).load()
    assert other.columns != first.columns
    assert len(pairs(path=str(f), fields={"t": "a"}, fraction=0.5).load()) == 20


def test_holdout_splits_one_file(tmp_path: Path) -> None:
    f = write(tmp_path / "v.tsv", "a\n" + "".join(f"r{i}\n" for i in range(30)))
    ds = pairs(path=str(f), fields={"t": "a"}, holdout=0.2, holdout_split="valid")
    train, held = ds.load(), ds.load("valid")
    assert len(held) == 6 and len(train) == 24
    assert set(train.columns["t"]).isdisjoint(held.columns["t"])
    assert set(train.columns["t"]) | set(held.columns["t"]) == {f"r{i}" for i in range(30)}
    with pytest.raises(InputError, match="did you mean 'valid'"):
        ds.load("vali")
    assert holdout_indices(30, 6, 0) == holdout_indices(30, 0.2, 0)
    with pytest.raises(InputError, match="leaves no rows"):
        pairs(path=str(f), fields={"t": "a"}, holdout=30).load()


def test_single_file_serves_other_splits_with_a_note(tmp_path: Path) -> None:
    f = write(tmp_path / "p.tsv", "a\nx\n")
    ex = pairs(path=str(f), fields={"t": "a"}).load("dev")
    assert ex.columns == {"t": ["x"]} and "same rows as 'train'" in ex.notes[0]


# --------------------------------------------------------------------------- BEIR
@needs_scifact
def test_scifact_loads() -> None:
    ex = beir(path=str(SCIFACT)).load()
    e = ex.extras
    assert len(e["corpus_ids"]) == len(e["corpus_texts"]) == 5183
    assert len(e["query_ids"]) == len(e["query_texts"]) == 809
    assert sum(len(v) for v in e["qrels"].values()) == 919 == len(ex)  # every score is 1
    assert len({d for v in e["qrels"].values() for d in v}) == 565
    assert max(len(v) for v in e["qrels"].values()) == 5
    assert set(ex.columns) == {"query", "document"} and e["query_tower"] == "query"
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as fh:
        doc0 = json.loads(fh.readline())
    assert e["corpus_ids"][0] == doc0["_id"]
    assert e["corpus_texts"][0] == (doc0["title"] + " " + doc0["text"]).strip()
    with open(SCIFACT / "qrels" / "train.tsv", encoding="utf-8") as fh:
        next(fh)
        qid, did, _ = next(fh).rstrip("\n").split("\t")
    i = e["query_ids"].index(qid)
    assert ex.columns["query"][0] == e["query_texts"][i]
    assert ex.columns["document"][0] == e["corpus_texts"][e["corpus_ids"].index(did)]


@needs_scifact
def test_scifact_query_subset_and_no_title() -> None:
    ex = beir(
        path=str(SCIFACT), limit=100, include_title=False, fields={"query": "claim", "document": "abstract"}
    ).load()
    e = ex.extras
    assert len(e["query_ids"]) == 100 and set(e["qrels"]) == set(e["query_ids"])
    assert len(e["corpus_ids"]) == 5183  # the corpus stays whole
    assert len(ex) == sum(len(v) for v in e["qrels"].values())
    assert set(ex.columns) == {"claim", "abstract"}
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as fh:
        assert e["corpus_texts"][0] == json.loads(fh.readline())["text"].strip()


def make_beir(
    root: Path, qrels: str = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td3\t1\nq3\td1\t0\n"
) -> Path:
    docs = [
        {"_id": "d1", "title": "Alpha", "text": "first doc"},
        {"_id": "d2", "title": "", "text": "second doc"},
        {"_id": "d3", "title": "Gamma", "text": "third doc"},
    ]
    write(root / "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": q, "text": f"query {q}"} for q in ("q1", "q2", "q3", "q4")]
    write(root / "queries.jsonl", "".join(json.dumps(q) + "\n" for q in queries))
    write(root / "qrels" / "test.tsv", qrels)
    return root


def test_beir_synthetic(tmp_path: Path) -> None:
    root = make_beir(tmp_path / "b")
    ex = beir(path=str(root), split="test", title_separator=". ").load()
    e = ex.extras
    assert e["corpus_texts"] == ["Alpha. first doc", "second doc", "Gamma. third doc"]
    assert e["query_ids"] == ["q1", "q2", "q3"]  # q4 has no judgment; q3 has only a 0 judgment
    assert e["qrels"] == {"q1": {"d1": 1.0, "d2": 2.0}, "q2": {"d3": 1.0}, "q3": {"d1": 0.0}}
    assert ex.columns["query"] == ["query q1", "query q1", "query q2"]  # positive pairs only
    assert ex.columns["document"] == ["Alpha. first doc", "second doc", "Gamma. third doc"]
    assert ex.ids == ["q1\td1", "q1\td2", "q2\td3"]
    with pytest.raises(InputError, match="no qrels for split 'tset'.*did you mean 'test'"):
        beir(path=str(root)).load("tset")


def test_beir_bad_judgment_and_missing_directory(tmp_path: Path) -> None:
    root = make_beir(tmp_path / "b", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\tdX\t1\nq9\td1\t1\nq2\td3\tone\n")
    rel = root / "qrels" / "test.tsv"
    with pytest.raises(InputError, match=rf"{rel}:3: corpus id 'dX' is not in corpus\.jsonl"):
        beir(path=str(root), split="test").load()
    ex = beir(path=str(root), split="test", on_error="skip").load()
    assert ex.skipped == 3 and ex.extras["query_ids"] == ["q1"]
    assert any(f"{rel}:4: query id 'q9'" in n for n in ex.notes)
    assert any(f"{rel}:5: score is not a finite number" in n for n in ex.notes)
    with pytest.raises(InputError, match="BEIR directory .* does not exist"):
        beir(path=str(tmp_path / "missing")).load()
    write(tmp_path / "c" / "queries.jsonl", '{"_id": "q", "text": "t"}\n')
    with pytest.raises(InputError, match="BEIR corpus .*corpus.jsonl.* does not exist"):
        beir(path=str(tmp_path / "c")).load()
