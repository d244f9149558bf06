"""``repmix explain``: draw a molecule shaded by the text tokens aligned to it.

For one (text, molecule) pair and a model with ORMA's fine-grained levels:

* **token–atom** (an ``orma.weighted-pooling`` alignment): ORMA's weights
  ``w[t, a]`` (each token's similarities to the atoms, min–max normalised over
  the atoms and divided by their sum: the weights of the token's grouped-atom
  vector). An atom's shade is the weight all real tokens give it
  (``sum_t w[t, a]``, scaled to [0, 1]); its note names the token that weighs
  it most.
* **multi-token–motif** (an ``orma.ot-multitoken`` alignment): the optimal
  transport plan's token -> motif assignment. Each motif gets a colour, its
  atoms are drawn in it, and the legend lists the tokens assigned to it.

The picture is a PNG: the RDKit drawing on the left, the tokens (per motif,
and each token's most-weighted atom) on the right.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from repmix.sdk import InputError, Model

__all__ = ["Explanation", "draw_explanation", "explain_pair"]

_PALETTE = [
    (0.90, 0.60, 0.00), (0.34, 0.71, 0.91), (0.00, 0.62, 0.45), (0.94, 0.89, 0.26),
    (0.00, 0.45, 0.70), (0.84, 0.37, 0.00), (0.80, 0.47, 0.65), (0.60, 0.60, 0.60),
]  # fmt: skip


@dataclass
class Explanation:
    """What an explanation shows: tokens, token–atom weights, the token -> motif assignment."""

    smiles: str
    tokens: list[str]
    atom_weights: np.ndarray | None = None  # [T, A]
    motifs: list[list[int]] = field(default_factory=list)
    assignment: list[int] | None = None  # [T]: motif index, -1 for none
    notes: list[str] = field(default_factory=list)

    def atom_shade(self) -> np.ndarray | None:
        """Per atom, the weight all tokens give it, scaled to [0, 1]."""
        if self.atom_weights is None:
            return None
        total = self.atom_weights.sum(axis=0)
        return total / total.max() if total.max() > 0 else total

    def tokens_of_motif(self) -> dict[int, list[str]]:
        """Motif index -> the tokens the transport plan assigns to it."""
        out: dict[int, list[str]] = {}
        if self.assignment is None:
            return out
        for tok, m in zip(self.tokens, self.assignment):
            if m >= 0:
                out.setdefault(m, []).append(tok)
        return out


def _find(model: Model, suffix: str) -> str | None:
    for name in model.alignment_between:
        block = model.config.get("model", {}).get("alignments", {}).get(name, {})
        if str(block.get("type", "")).endswith(suffix):
            return name
    return None


def _token_strings(model: Model, tower: str, text: str) -> tuple[list[str], Any]:
    tok = model.tower(tower).tokenizer
    batch = tok([text])
    ids = batch["input_ids"][0] if isinstance(batch, dict) and "input_ids" in batch else None
    hf = getattr(tok, "hf", None)
    if ids is None or hf is None:
        raise InputError("explain needs a Hugging Face text tokenizer (std.hf-tokenizer) on the text side")
    mask = batch.get("attention_mask")
    n = int(mask[0].sum()) if mask is not None else len(ids)
    return list(hf.convert_ids_to_tokens([int(i) for i in ids[:n]])), batch


def token_atom_weights(tokens: torch.Tensor, atoms: torch.Tensor, epsilon: float) -> torch.Tensor:
    """ORMA's pooling weights [T, A] over real tokens and atoms (min–max normalised similarities / their sum)."""
    sim = tokens @ atoms.T
    low = sim.amin(dim=-1, keepdim=True)
    high = sim.amax(dim=-1, keepdim=True)
    sim = (sim - low) / (high - low + epsilon)
    return sim / (sim.sum(dim=-1, keepdim=True) + epsilon)


def explain_pair(model: Model, text: str, smiles: str) -> Explanation:
    """Token–atom weights and the OT token -> motif assignment of one pair."""
    from repmix_orma.graph import parse_smiles

    if not isinstance(text, str) or not text.strip():
        raise InputError("empty text: give a description to explain")
    mol, reason = parse_smiles(smiles)
    if mol is None:
        raise InputError(f"cannot explain this molecule: {reason}")
    local, mid = _find(model, "weighted-pooling"), _find(model, "ot-multitoken")
    if local is None and mid is None:
        raise InputError(
            "explain needs a model with ORMA's fine-grained levels (an orma.weighted-pooling or "
            "orma.ot-multitoken alignment); this model aligns only whole texts and molecules"
        )
    some = local or mid
    assert some is not None
    (t_tower, _), (m_tower, _) = model.alignment_between[some]
    tokens, _ = _token_strings(model, t_tower, text)
    model.eval()
    exp = Explanation(smiles, tokens)
    with torch.inference_mode():
        t_enc = model.encode_batch(t_tower, [text])
        m_enc = model.encode_batch(m_tower, [smiles])
        if local is not None:
            (_, tg), (_, mg) = model.alignment_between[local]
            tg_, mg_ = t_enc[tg], m_enc[mg]
            tm, am = tg_.full_mask()[0], mg_.full_mask()[0]
            eps = float(getattr(model.aligners[local].config, "epsilon", 1e-8))
            w = token_atom_weights(tg_.hidden[0][tm].float(), mg_.hidden[0][am].float(), eps)
            exp.atom_weights = w.cpu().numpy()
            if int(am.sum()) < mol.GetNumAtoms():
                exp.notes.append(f"only the first {int(am.sum())} of {mol.GetNumAtoms()} atoms are in the model's output")
        if mid is not None:
            tok = model.tower(m_tower).tokenizer
            graph = tok.graph(smiles) if hasattr(tok, "graph") else None
            exp.motifs = graph.motifs() if graph is not None else []
            (_, tg), (_, mg) = model.alignment_between[mid]
            align = model.aligners[mid](t_enc[tg], m_enc[mg])
            assignment = align.detail.get("assignment")
            if assignment is not None:
                a = assignment.reshape(-1, assignment.shape[-1])[0]
                exp.assignment = [int(x) for x in a[: len(tokens)].tolist()]
            if not exp.motifs:
                exp.notes.append("this molecule has no BRICS motif: no token -> motif assignment to show")
    return exp


def draw_explanation(exp: Explanation, out: str | Path, size: tuple[int, int] = (700, 520)) -> Path:
    """Draw ``exp`` as a PNG: the shaded molecule and the tokens per motif."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    mol = Chem.MolFromSmiles(exp.smiles)
    shade = exp.atom_shade()
    colors: dict[int, tuple[float, float, float]] = {}
    radii: dict[int, float] = {}
    for k, atoms in enumerate(exp.motifs):
        for a in atoms:
            colors.setdefault(a, _PALETTE[k % len(_PALETTE)])
    if shade is not None:
        top_token = exp.atom_weights.argmax(axis=0) if exp.atom_weights is not None else None
        for a in range(min(len(shade), mol.GetNumAtoms())):
            s = float(shade[a])
            radii[a] = 0.25 + 0.35 * s
            if a not in colors:
                colors[a] = (1.0, 1.0 - 0.7 * s, 1.0 - 0.7 * s)
            if top_token is not None and s >= 0.5:
                mol.GetAtomWithIdx(a).SetProp("atomNote", exp.tokens[int(top_token[a])])
    drawer = rdMolDraw2D.MolDraw2DCairo(*size)
    drawer.drawOptions().annotationFontScale = 0.6
    atoms = sorted(colors)
    rdMolDraw2D.PrepareAndDrawMolecule(
        drawer, mol, highlightAtoms=atoms, highlightAtomColors=colors, highlightAtomRadii=radii or None
    )
    drawer.FinishDrawing()
    from PIL import Image

    image = Image.open(io.BytesIO(drawer.GetDrawingText()))
    lines: list[tuple[str, tuple[float, float, float]]] = []
    by_motif = exp.tokens_of_motif()
    for k in range(len(exp.motifs)):
        toks = by_motif.get(k, [])
        shown = " ".join(toks[:14]) + (" ..." if len(toks) > 14 else "")
        lines.append((f"motif {k + 1} ({len(exp.motifs[k])} atoms): {shown or '(no token)'}", _PALETTE[k % len(_PALETTE)]))
    if exp.atom_weights is not None:
        lines.append(("token -> most-weighted atom:", (0, 0, 0)))
        best = exp.atom_weights.argmax(axis=1)
        for t, tok in enumerate(exp.tokens[:40]):
            a = int(best[t])
            lines.append((f"  {tok} -> {mol.GetAtomWithIdx(a).GetSymbol()}{a}", (0.3, 0.3, 0.3)))
    lines += [(n, (0.6, 0.0, 0.0)) for n in exp.notes]
    fig = plt.figure(figsize=(13, 6.5), dpi=100)
    ax_img = fig.add_axes((0.0, 0.0, 0.55, 1.0))
    ax_img.imshow(image)
    ax_img.axis("off")
    ax_txt = fig.add_axes((0.56, 0.0, 0.44, 1.0))
    ax_txt.axis("off")
    step = min(0.05, 0.96 / max(1, len(lines)))
    for i, (line, color) in enumerate(lines):
        ax_txt.text(0.0, 0.98 - i * step, line if len(line) <= 70 else line[:67] + "...", color=color,
                    fontsize=8 if step < 0.03 else 10, va="top", family="monospace")
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, format="png")
    plt.close(fig)
    return out_path
