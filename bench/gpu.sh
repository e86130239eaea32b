#!/usr/bin/env bash
# GPU run of the speed benchmarks, one JSON of results (issue: speed, GPU readiness).
#
#   bash bench/gpu.sh [OUT_DIR]      # on a Linux x86-64 machine with an NVIDIA GPU
#
# Makes its own venv (.venv-gpu), installs the pinned requirements plus the CUDA 12
# build of the same jax (jax[cuda12]==0.10.2) and the PyTorch / PyG peers, then runs
#   1. bench/attention.py: one block fwd+bwd, ours (sparse, dense) vs PyG and SDPA,
#      1k .. 1M nodes (the largest size one block fits is the last that runs);
#   2. bench/train.py --quick: train-step graphs/s vs the PyG block, same batches;
#   3. a short train.py run (200 steps) on the embedded default dataset;
# and writes OUT_DIR/gpu.json (default bench/out/gpu.json) with the logs beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/out}
mkdir -p "$OUT"
python3 -m venv .venv-gpu
. .venv-gpu/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -r requirements.txt -e . "jax[cuda12]==0.10.2" -r bench/requirements.txt
python - <<'PY' | tee "$OUT/devices.txt"
import jax, torch
print("jax", jax.__version__, jax.devices(), "| torch", torch.__version__, torch.cuda.is_available())
PY
export PYTHONUNBUFFERED=1
python bench/attention.py --sizes 1000 4000 16000 64000 262144 1048576 --dense-max-gb 60 \
    --timeout 900 --json "$OUT/attention.json" 2>&1 | tee "$OUT/attention.log"
python bench/train.py --quick 2>&1 | tee "$OUT/train_bench.log"
python train.py --set num_steps=200 --workdir "$OUT/run" 2>&1 | tail -n 40 > "$OUT/train_run.log"
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
last = lambda f: [l for l in (out / f).read_text().splitlines() if "=" in l][-1:]
result = {"devices": (out / "devices.txt").read_text().strip(),
          "attention": json.loads((out / "attention.json").read_text()),
          "train_bench": (out / "train_bench.log").read_text().splitlines()[-8:],
          "train_run": (out / "train_run.log").read_text().splitlines()[-10:],
          "speedups": last("attention.log") + last("train_bench.log")}
(out / "gpu.json").write_text(json.dumps(result, indent=1))
print("wrote", out / "gpu.json")
PY
