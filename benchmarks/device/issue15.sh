#!/usr/bin/env bash
# Issue 15: every full-scale step of the missing result scripts, in one go on one GPU.
#
#   RUNS=/tmp/runs OUT=$OUT bash benchmarks/device/issue15.sh                      # full scale, cuda
#   SMALL=1 RUNS=/tmp/i15/runs OUT=/tmp/i15/out bash benchmarks/device/issue15.sh   # smoke test, cpu
#
# Trains vdr-stsb, binary-pv-scifact at 128 and 64 bits, m2-bert-scifact (into $RUNS), runs
# bench_vdr_index.py, bench_binary_pv.py, bench_pitome.py and bench_m2bert_scifact.py, and
# leaves in $OUT/issue15/: vdr-index.json, binary-pv.json, pitome.json, m2bert-scifact.json,
# train-metrics.json (each run's metrics.json and last training record) and issue15.log.
# A failing step is reported and the others still run; the exit status is 1 if any failed.
# Bring $OUT/issue15 back and render the docs here with:
#   python benchmarks/issue15_render.py OUT/issue15
#
# Run from anywhere; the repository root is found from this file. Environment:
#   RUNS, OUT (required); SMALL=1 (tiny data, cpu); DEVICE (default cuda, or cpu with SMALL=1);
#   PYTHON (default python), REPMIX (default: repmix, else $PYTHON -m repmix);
#   REPMIX_SHARED_DATA (default ../shared/data beside the repository: scifact/ and stsb/).
# Expected on one H200: about 8-9 minutes in all, each step at most ~2 minutes (M2-BERT's
# training is capped at train.max_minutes=1.75).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
: "${RUNS:?set RUNS (where the training runs go)}" "${OUT:?set OUT (results go to OUT/issue15)}"
SMALL=${SMALL:-0}
PY=${PYTHON:-python}
if [ -n "${REPMIX:-}" ]; then read -r -a RM <<<"$REPMIX"; elif command -v repmix >/dev/null; then RM=(repmix); else RM=("$PY" -m repmix); fi
O="$OUT/issue15"
mkdir -p "$O" "$RUNS"
exec > >(tee -a "$O/issue15.log") 2>&1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
if [ -n "${REPMIX_SHARED_DATA:-}" ]; then
  SHARED=$REPMIX_SHARED_DATA
else
  SHARED=$(cd .. && pwd)/shared/data
  export REPMIX_SHARED_DATA=$SHARED
fi
if [ "$SMALL" = 1 ]; then DEV=${DEVICE:-cpu}; else DEV=${DEVICE:-cuda}; fi

if [ "$SMALL" = 1 ]; then
  TINY_TRAIN=(train.max_steps=2 data.limit=32 'evaluate=[]')
  VDR_BENCH=(--limit 10 --doc-topk 768)
  BPV_BENCH=(--limit 10 --repeats 2 --tile 20000)
  PITOME_BENCH=(--pairs 20 --limit 3 --repeats 1 --official-only)
  M2_TRAIN=(model.towers.query.encoder.dim=32 model.towers.query.encoder.layers=1 model.towers.query.encoder.max_length=256
            model.towers.query.tokenizer.max_length=256 data.beir.limit=6 data.negatives=2 train.max_steps=3
            train.batch_size=4 'evaluate=[]')
  M2_BENCH=(--limit 5)
else
  TINY_TRAIN=()
  VDR_BENCH=(--doc-topk 768 256)
  BPV_BENCH=(--repeats 3 --tile 200000)
  PITOME_BENCH=(--repeats 3)
  M2_TRAIN=(train.max_minutes=1.75)
  M2_BENCH=(--minilm-lengths 256 512)
fi
# configs read ../shared/data relative to the working directory; point them at $SHARED
DATA_VDR=(data.path="$SHARED/stsb")
DATA_BPV=(data.path="$SHARED/stsb")
DATA_M2=(data.beir.path="$SHARED/scifact")
if [ "$SMALL" != 1 ]; then
  DATA_VDR+=(evaluate.0.data.path="$SHARED/stsb" evaluate.1.data.path="$SHARED/scifact")
  DATA_BPV+=(evaluate.0.data.path="$SHARED/scifact" evaluate.1.data.path="$SHARED/scifact")
  DATA_M2+=(evaluate.0.data.path="$SHARED/scifact")
fi

FAILED=()
step() {  # step NAME COMMAND...: run, time, and record a failure without stopping
  local name=$1; shift
  local start=$SECONDS
  echo "== $(date +%T) start $name: $*"
  if "$@"; then
    echo "== $(date +%T) done  $name in $((SECONDS - start)) s"
  else
    echo "== $(date +%T) FAILED $name (status $?) after $((SECONDS - start)) s"
    FAILED+=("$name")
  fi
}

echo "issue15: device=$DEV small=$SMALL runs=$RUNS out=$O shared=$SHARED repmix=${RM[*]}"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

# --- VDR: train on STS-B positives, then the inverted index on SciFact
step train-vdr "${RM[@]}" train plugins/vdr/configs/vdr-stsb.yaml -o "$RUNS/vdr-stsb" train.device="$DEV" \
  "${DATA_VDR[@]}" "${TINY_TRAIN[@]}" --no-progress --force
step bench-vdr "$PY" benchmarks/bench_vdr_index.py "$RUNS/vdr-stsb" --device "$DEV" --out "$O" "${VDR_BENCH[@]}"

# --- binary-pv: 128- and 64-bit codes, Hamming vs real, search speed
for bits in 128 64; do
  step "train-binary-pv-$bits" "${RM[@]}" train plugins/binary-pv/configs/binary-pv-scifact.yaml -o "$RUNS/binary-pv-$bits" \
    train.device="$DEV" model.towers.query.poolers.code.bits=$bits "${DATA_BPV[@]}" "${TINY_TRAIN[@]}" --no-progress --force
done
step bench-binary-pv "$PY" benchmarks/bench_binary_pv.py "$RUNS/binary-pv-64" "$RUNS/binary-pv-128" --device "$DEV" --out "$O" \
  "${BPV_BENCH[@]}"

# --- PiToMe: merge ratios on pretrained MiniLM (no training)
step bench-pitome "$PY" benchmarks/bench_pitome.py --device "$DEV" --out "$O" "${PITOME_BENCH[@]}"

# --- M2-BERT: single-sample loss on SciFact long abstracts, vs MiniLM@256 and BM25
step train-m2-bert "${RM[@]}" train plugins/m2-bert/configs/m2-bert-scifact.yaml -o "$RUNS/m2-bert-scifact" train.device="$DEV" \
  "${DATA_M2[@]}" "${M2_TRAIN[@]}" --no-progress --force
step bench-m2-bert "$PY" benchmarks/bench_m2bert_scifact.py "$RUNS/m2-bert-scifact" --device "$DEV" --out "$O" "${M2_BENCH[@]}"

# --- the runs' own metrics (training evaluations, last training record) in one file
"$PY" - "$RUNS" "$O/train-metrics.json" <<'EOF'
import json, sys
from pathlib import Path
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
result = {}
for name in ("vdr-stsb", "binary-pv-128", "binary-pv-64", "m2-bert-scifact"):
    run = runs / name
    entry = {}
    if (run / "metrics.json").is_file():
        entry["metrics"] = json.loads((run / "metrics.json").read_text())
    if (run / "metrics.jsonl").is_file():
        train = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"type": "train"' in l]
        entry["last_train_record"] = train[-1] if train else None
    result[name] = entry
out.write_text(json.dumps(result, indent=1) + "\n")
print("wrote", out)
EOF

if [ ${#FAILED[@]} -gt 0 ]; then
  echo "issue15: FAILED steps: ${FAILED[*]}"
  exit 1
fi
echo "issue15: all steps done; results in $O"
