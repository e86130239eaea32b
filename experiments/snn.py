"""The SNN comparison of RESULTS.md: dense and conv SNNs, spike-timing gradient scaling
off and on, 3 seeds, the same budget (600 steps = 30 epochs).

    python -m experiments.snn --out runs/snn [--seeds 0 1 2] [--steps 600]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

from bgan_jax.runs.tables import mean_std_table, seeds_of
from bgan_jax.snn.model import SNNConfig
from bgan_jax.snn.train import SNNTrainConfig, train_snn

ARCHITECTURES = {"dense": SNNConfig(), "conv": SNNConfig(conv=(8, 16), hidden=(128,))}


def compare(out, seeds=(0, 1, 2), architectures=("dense", "conv"), steps: int = 600,
            progress: bool = False) -> list:
    """Every architecture x scaling off/on x seed -> rows; writes results.json and
    results.md under ``out``; a finished run (its eval.json) is not trained again."""
    out = Path(out)
    rows = []
    for arch in architectures:
        for scaling in (False, True):
            for seed in seeds:
                work = out / f"{arch}-{'scaled' if scaling else 'plain'}-{seed}"
                if (work / "eval.json").is_file():
                    table = json.loads((work / "eval.json").read_text())
                else:
                    cfg = SNNTrainConfig(model=ARCHITECTURES[arch], spike_scaling=scaling,
                                         num_steps=steps, seed=seed)
                    table = train_snn(cfg, work, progress=progress)
                rows.append(dict(table, architecture=arch))
                print(json.dumps(rows[-1]), flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    (out / "results.md").write_text(markdown(rows))
    return rows


def markdown(rows) -> str:
    for r in rows:
        r["setting"] = f"{r['architecture']}, scaling {'on' if r['spike_scaling'] else 'off'}"
    lines = mean_std_table(rows, "setting", {
        "test accuracy": lambda r: r["test_accuracy"],
        "spikes per sample": lambda r: r["spikes_per_sample"]}, label="architecture, gradient scaling")
    return "\n".join(lines) + f"\n\nmean +- std over {seeds_of(rows)} seeds\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.snn",
                                description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=600)
    args = p.parse_args(argv)
    print(markdown(compare(args.out, args.seeds, steps=args.steps)))
    return 0


if __name__ == "__main__":
    from bgan_jax.runtime.allocator import tune
    tune()  # glibc malloc for XLA on CPU (restarts once for huge pages)
    raise SystemExit(main())
