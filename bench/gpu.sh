#!/usr/bin/env bash
# GPU run of the speed benchmarks, one JSON of results (issue: speed, GPU readiness).
#
#   bash bench/gpu.sh [OUT_DIR]      # on a Linux x86-64 machine with an NVIDIA GPU
#
# Environment (BGAN_GPU_ENV):
#   venv    (default) a venv (.venv-gpu) with the pinned requirements, the CUDA 12 build
#           of the same jax (jax[cuda12]==0.10.2) and the PyTorch / PyG peers;
#   system  python3 as it is, for a machine whose image already has a CUDA jax, flax,
#           optax, orbax, torch and torch_geometric and that cannot reach PyPI; the
#           wheels in $BGAN_GPU_WHEELS (if set) are installed into a scratch folder
#           first (jraph, libNeuroML, natsort: pure Python, `pip download` them
#           elsewhere). The packages of the repository are put on PYTHONPATH.
# The default dataset is read from $BGAN_JAX_CACHE (built there first if missing; a
# build needs pyNeuroML, so on an offline machine bring a built cache).
#
# Stages, each under its own time limit (seconds, overridable), each logged apart; a
# stage that fails or runs out of time is recorded and the next one runs:
#   attention  (T_ATTENTION=150) bench/attention.py, one block fwd+bwd, 1k..64k nodes:
#              ours sparse, PyG TransformerConv; ours dense and torch SDPA up to 4k;
#   train      (T_TRAIN=110)     bench/train.py: train-step graphs/s vs the PyG block on
#              the same batches (a whole epoch of the default dataset's train split);
#   run        (T_RUN=120)       train.py, 200 steps on the default dataset, evaluated, with
#              model.attention=auto (each bucket's sparse/dense trial in gpu.json);
#   large      (T_LARGE=90)      bench/attention.py at 262k and 1M nodes: ours sparse, PyG;
#   huge       (T_HUGE=50)       2M nodes, ours with pair_chunk (the largest size tried).
# Writes OUT_DIR/gpu.json (default bench/out/gpu.json) with the logs beside it.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/out}
mkdir -p "$OUT"
case "${BGAN_GPU_ENV:-venv}" in
  venv)
    python3 -m venv .venv-gpu && . .venv-gpu/bin/activate || exit 1
    python -m pip install -q --upgrade pip
    python -m pip install -q -r requirements.txt -e . "jax[cuda12]==0.10.2" \
        -r bench/requirements.txt || exit 1
    PY=python ;;
  system)
    if [ -n "${BGAN_GPU_WHEELS:-}" ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
          --upgrade --target /tmp/bgan-site "$BGAN_GPU_WHEELS"/*.whl || exit 1
      export PYTHONPATH=/tmp/bgan-site:${PYTHONPATH:-}
    fi
    export PYTHONPATH=$PWD:${PYTHONPATH:-}
    PY=python3 ;;
  *) echo "BGAN_GPU_ENV must be venv or system" >&2; exit 2 ;;
esac
export PYTHONUNBUFFERED=1
# one process at a time holds the GPU: let JAX take most of it (its default is 75 %)
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}

stage() {  # stage NAME LIMIT_S COMMAND...: run, log to OUT/NAME.log, record rc and time
  local name=$1 limit=$2 t0=$SECONDS
  shift 2
  echo "== $name (limit ${limit}s) $(date -u +%H:%M:%S)"
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - t0))s" | tee -a "$OUT/stages.txt"
  tail -n 25 "$OUT/$name.log"
}

$PY - <<'PY' 2>&1 | tee "$OUT/devices.txt"
import jax, torch, flax, optax, torch_geometric
print("jax", jax.__version__, jax.devices(), jax.devices()[0].device_kind, "| flax", flax.__version__,
      "| optax", optax.__version__, "| torch", torch.__version__, torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-",
      "| torch_geometric", torch_geometric.__version__)
PY
: >"$OUT/stages.txt"
stage attention "${T_ATTENTION:-150}" "$PY" bench/attention.py --sizes 1000 4000 16000 64000 \
    --impls bgan_sparse pyg bgan_dense sdpa --dense-max-gb 2 --timeout 60 \
    --json "$OUT/attention.json"
stage train "${T_TRAIN:-110}" "$PY" bench/train.py --devices 1
stage run "${T_RUN:-120}" "$PY" train.py --set num_steps=200 --set model.attention=auto \
    --workdir "$OUT/run" --no-progress
stage large "${T_LARGE:-90}" "$PY" bench/attention.py --sizes 262144 1048576 \
    --impls bgan_sparse pyg --timeout 60 --json "$OUT/large.json"
stage huge "${T_HUGE:-50}" "$PY" bench/attention.py --sizes 2097152 --impls bgan_chunked \
    --timeout 45 --json "$OUT/huge.json"

$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
text = lambda f: (out / f).read_text() if (out / f).is_file() else ""
rows = lambda f: json.loads(text(f)) if text(f) else []
last = lambda f: [l for l in text(f).splitlines() if l.startswith("speedup_vs_pyg=")][-1:]
result = {"devices": text("devices.txt").strip(), "stages": text("stages.txt").splitlines(),
          "attention": rows("attention.json") + rows("large.json") + rows("huge.json"),
          "train_bench": text("train.log").splitlines()[-6:],
          "train_run": text("run.log").splitlines()[-14:],
          "attention_choices": [json.loads(l) for l in text("run/metrics.jsonl").splitlines()
                                if '"attention"' in l],
          "speedups": {"attention": last("attention.log"), "train": last("train.log")}}
(out / "gpu.json").write_text(json.dumps(result, indent=1))
print("wrote", out / "gpu.json")
PY
