"""repmix.integrations.sentence_transformers and ``repmix export-st``.

A tower of std components exports to a folder that ``SentenceTransformer(dir)``
loads to the same embeddings (max abs difference <= 1e-5), on a tiny random
BERT with every std pooler and on the packaged all-MiniLM-L6-v2 built from
examples/minilm.yaml; anything without a sentence-transformers equivalent is
refused with one InputError naming the component.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

st = pytest.importorskip(
    "sentence_transformers", reason="needs sentence-transformers: pip install 'repmix[integrations]'"
)
pytest.importorskip("repmix_std", reason="the exported towers are made of repmix-std components")

import repmix
from repmix.cli.main import main
from repmix.core.errors import InputError
from repmix.integrations import commands
from repmix.integrations.sentence_transformers import export_sentence_transformers, plan_export
from repmix.registry.hooks import get_plugin_manager, make_manager

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5
COMMANDS_MODULE = "repmix.integrations.commands"
#: Short, mid-length and over-long inputs (the last is truncated by both sides).
TEXTS = [
    "a",
    "the man is riding a horse",
    "hello world, this is a sentence about the city park and the blue car.",
    "A woman is playing the guitar while two children are dancing in the street.",
    " ".join(["the dog is running in the park with a red ball"] * 40),
]


def tiny_yaml(
    bert: str, pooler: str = "mean", normalize: bool = False, *, max_length: int = 24, extra: str = ""
) -> str:
    """One shared text tower on the tiny BERT."""
    return f"""
model:
  towers:
    text:
      tokenizer: {{type: hf-tokenizer, model: {bert}, max_length: {max_length}}}
      encoder:   {{type: hf-transformer, model: {bert}}}
      poolers:   {{sentence: {{type: {pooler}, normalize: {str(normalize).lower()}}}}}
    document: {{shared_with: text}}
{extra}"""


def load_yaml(tmp_path: Path, text: str, name: str = "model.yaml") -> Any:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return repmix.load(path)


def st_encode(directory: Path, texts: list[str]) -> np.ndarray:
    model = st.SentenceTransformer(str(directory), device="cpu")
    return np.asarray(model.encode(texts, convert_to_numpy=True, batch_size=2))


def module_types(directory: Path) -> list[str]:
    return [entry["type"].rsplit(".", 1)[-1] for entry in json.loads((directory / "modules.json").read_text())]


@pytest.mark.parametrize(
    ("pooler", "normalize"), [("mean", True), ("cls", False), ("max", False), ("last-token", True)]
)
def test_tiny_bert_exports_to_the_same_embeddings(
    tiny_bert_dir: str, tmp_path: Path, pooler: str, normalize: bool
) -> None:
    model = load_yaml(tmp_path, tiny_yaml(tiny_bert_dir, pooler, normalize))
    out = export_sentence_transformers(model, tmp_path / "st")
    assert module_types(out) == ["Transformer", "Pooling", *(["Normalize"] if normalize else [])]
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == {"last-token": "lasttoken"}.get(pooler, pooler)
    ours = model.encode(TEXTS, tower="text")
    theirs = st_encode(out, TEXTS)
    assert theirs.shape == ours.shape and ours.shape[0] == len(TEXTS)
    assert np.abs(theirs - ours).max() <= TOLERANCE
    assert st.SentenceTransformer(str(out), device="cpu").max_seq_length == 24


def test_minilm_example_exports_to_the_same_embeddings(minilm_dir: Path, tmp_path: Path) -> None:
    """examples/minilm.yaml exported = the repmix model = sentence-transformers' own packaged MiniLM."""
    model = repmix.load(ROOT / "examples" / "minilm.yaml")
    out = export_sentence_transformers(model, tmp_path / "minilm-st")
    assert module_types(out) == ["Transformer", "Pooling", "Normalize"]
    exported = st.SentenceTransformer(str(out), device="cpu")
    assert exported.max_seq_length == 256 and exported.similarity_fn_name == "cosine"
    theirs = np.asarray(exported.encode(TEXTS, convert_to_numpy=True))
    ours = model.encode(TEXTS)
    reference = np.asarray(st.SentenceTransformer(str(minilm_dir), device="cpu").encode(TEXTS, convert_to_numpy=True))
    assert np.abs(theirs - ours).max() <= TOLERANCE
    assert np.abs(theirs - reference).max() <= TOLERANCE


def test_the_models_current_weights_are_exported(tiny_bert_dir: str, tmp_path: Path) -> None:
    """Trained (here: perturbed) weights are what the folder holds, not the pretrained files."""
    model = load_yaml(tmp_path, tiny_yaml(tiny_bert_dir))
    before = model.encode(TEXTS)
    with torch.no_grad():
        for param in model.tower("text").encoder.parameters():
            param.add_(0.05 * torch.randn_like(param))
    after = model.encode(TEXTS)
    assert np.abs(after - before).max() > 1e-3
    out = export_sentence_transformers(model, tmp_path / "st")
    assert np.abs(st_encode(out, TEXTS) - after).max() <= TOLERANCE


def test_a_saved_model_exports_too(tiny_bert_dir: str, tmp_path: Path) -> None:
    model = load_yaml(tmp_path, tiny_yaml(tiny_bert_dir, "cls", True))
    saved = model.save(tmp_path / "saved")
    out = export_sentence_transformers(repmix.load(saved), tmp_path / "st")
    assert np.abs(st_encode(out, TEXTS) - model.encode(TEXTS)).max() <= TOLERANCE


def test_dot_alignment_becomes_the_similarity_function(tiny_bert_dir: str, tmp_path: Path) -> None:
    extra = "  alignments:\n    sim: {type: dot, between: [text.sentence, document.sentence]}\n"
    model = load_yaml(tmp_path, tiny_yaml(tiny_bert_dir, extra=extra))
    assert plan_export(model).similarity == "dot"
    out = export_sentence_transformers(model, tmp_path / "st")
    assert json.loads((out / "config_sentence_transformers.json").read_text())["similarity_fn_name"] == "dot"


def test_a_non_std_pooler_is_refused_naming_it(
    tiny_bert_dir: str, tmp_path: Path, temporary_component: Callable[..., type]
) -> None:
    from toys import LayerMeanPooler

    temporary_component("pooler", "layer-mean", LayerMeanPooler)
    model = load_yaml(tmp_path, tiny_yaml(tiny_bert_dir, "layer-mean"))
    with pytest.raises(InputError) as info:
        export_sentence_transformers(model, tmp_path / "st")
    message = str(info.value)
    assert "model.towers.text.poolers.sentence (test.layer-mean)" in message
    assert "sentence-transformers pools with std.mean" in message
    assert not (tmp_path / "st").exists()


def test_a_non_final_layer_is_refused_naming_the_encoder(tiny_bert_dir: str, tmp_path: Path) -> None:
    text = tiny_yaml(tiny_bert_dir).replace(
        f"encoder:   {{type: hf-transformer, model: {tiny_bert_dir}}}",
        f"encoder:   {{type: hf-transformer, model: {tiny_bert_dir}, granularities: {{token: 1}}}}",
    )
    model = load_yaml(tmp_path, text)
    with pytest.raises(InputError, match=r"model\.towers\.text\.encoder \(std\.hf-transformer\).*hidden state 1"):
        plan_export(model)


def test_bad_targets_are_input_errors(tiny_bert_dir: str, tmp_path: Path) -> None:
    model = load_yaml(tmp_path, tiny_yaml(tiny_bert_dir))
    with pytest.raises(InputError, match="no pooled granularity 'token'"):
        plan_export(model, granularity="token")
    with pytest.raises(InputError, match="no tower 'image'"):
        plan_export(model, tower="image")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="is not empty"):
        export_sentence_transformers(model, busy)
    assert (busy / "keep.txt").is_file()
    export_sentence_transformers(model, busy, overwrite=True)
    assert not (busy / "keep.txt").exists() and (busy / "modules.json").is_file()


def test_the_hook_adds_the_export_st_command() -> None:
    pm = make_manager()
    pm.register(commands, name=COMMANDS_MODULE)
    import argparse

    parser = argparse.ArgumentParser(prog="repmix")
    sub = parser.add_subparsers(dest="command")
    pm.hook.repmix_add_commands(subparsers=sub)
    args = parser.parse_args(["export-st", "m.yaml", "-o", "out", "--tower", "text"])
    assert args.func is commands.cmd_export_st and args.tower == "text" and not args.overwrite


@pytest.fixture
def export_command(fresh_registry: None) -> None:
    """``repmix export-st`` reachable through ``main``: registered on the hook manager as the CLI does."""
    pm = get_plugin_manager()
    if pm.get_plugin(COMMANDS_MODULE) is None:
        pm.register(commands, name=COMMANDS_MODULE)


def test_repmix_export_st_command(
    tiny_bert_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], export_command: None
) -> None:
    config = tmp_path / "model.yaml"
    config.write_text(tiny_yaml(tiny_bert_dir, "max", True), encoding="utf-8")
    out = tmp_path / "st"
    code = main(["export-st", str(config), "model.towers.text.tokenizer.max_length=12", "-o", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "Pooling(max) + Normalize" in stdout and str(out) in stdout
    model = repmix.load(config, ["model.towers.text.tokenizer.max_length=12"])
    assert np.abs(st_encode(out, TEXTS) - model.encode(TEXTS)).max() <= TOLERANCE
    assert main(["export-st", str(config), "-o", str(out)]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_repmix_export_st_refusal_is_one_clear_line(
    tiny_bert_dir: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    export_command: None,
    temporary_component: Callable[..., type],
) -> None:
    from toys import LayerMeanPooler

    temporary_component("pooler", "layer-mean", LayerMeanPooler)
    config = tmp_path / "model.yaml"
    config.write_text(tiny_yaml(tiny_bert_dir, "layer-mean"), encoding="utf-8")
    code = main(["export-st", str(config), "-o", str(tmp_path / "st")])
    err = capsys.readouterr().err
    assert code == 2
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]  # stderr may also hold progress bars
    assert line.startswith("error: tower 'text' (sentence) cannot be exported") and "test.layer-mean" in line
    assert "Traceback" not in err
