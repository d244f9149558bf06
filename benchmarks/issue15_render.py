"""Render issue-15 result files (JSON written with --out) into docs/results.

    python benchmarks/issue15_render.py OUT/issue15            # every known *.json in the folder
    python benchmarks/issue15_render.py a.json b.json --docs /tmp/docs   # elsewhere (a trial render)

Sections: ``vdr-index`` and ``binary-pv`` in embedding-objectives.md; ``pitome-minilm[-cuda]`` and
``m2bert-scifact`` in efficient-encoders.md (each between its ``<!-- key:start/end -->`` markers,
so rendering again replaces it). Files of other benchmarks (train-metrics.json, logs) are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bench_binary_pv
import bench_m2bert_scifact
import bench_pitome
import bench_vdr_index
import issue15_common as common

RENDERERS = {
    "vdr-index": bench_vdr_index.render,
    "binary-pv": bench_binary_pv.render,
    "pitome": bench_pitome.render,
    "m2bert-scifact": bench_m2bert_scifact.render,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", type=Path, nargs="+", help="result files, or folders of them")
    ap.add_argument("--docs", type=Path, default=common.RESULTS_DIR, help="folder of the results pages (docs/results)")
    ap.add_argument("--allow-small", action="store_true", help="render small-scale (smoke) results too")
    args = ap.parse_args()
    files = [f for p in args.paths for f in (sorted(p.glob("*.json")) if p.is_dir() else [p])]
    known = []
    for f in files:
        payload = common.read_json(f)
        kind = payload.get("benchmark") if isinstance(payload, dict) else None
        if kind not in RENDERERS:
            print(f"skipped {f} (not an issue-15 result file)")
            continue
        known.append((list(RENDERERS).index(kind), str(f), kind))
    done = 0
    for _, f, kind in sorted(known):  # a new page gets its sections in RENDERERS' order
        done += common.render_files([Path(f)], RENDERERS[kind], args.docs, args.allow_small)
    if not done:
        raise SystemExit("nothing rendered")


if __name__ == "__main__":
    main()
