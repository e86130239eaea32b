"""The TAVRNN comparison of RESULTS.md: TAVRNN vs VGRNN vs VGAE over seeds.

    python -m experiments.tavrnn --out runs/tavrnn [--seeds 0 1 2] [--steps 400]

Seed s simulates its own recording (``bnnsim.population``, seed s: new network,
drives and regime schedule) and uses s for the model, the noise and the
held-out links; every variant gets the same recording, steps and settings.
Writes ``results.json`` and ``results.md`` (mean +- std over seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from bgan_jax.runs.tables import mean_std_table, seeds_of
from bgan_jax.tavrnn.model import VARIANTS
from bgan_jax.tavrnn.train import TemporalConfig, train_temporal

METRICS = ("link_auc", "ari", "nmi", "regime_accuracy")
TARGETS = {"link_auc": 0.9, "ari": 0.8, "nmi": 0.8, "regime_accuracy": 0.9}


def run(out, seeds: Sequence[int] = (0, 1, 2), steps: int = 400,
        variants: Sequence[str] = VARIANTS, population=None, progress: bool = False,
        config: TemporalConfig = TemporalConfig()) -> List[Dict]:
    """Train every variant on every seed's recording; returns one row per run."""
    from bnnsim.population import PopulationConfig, default_population

    out = Path(out)
    rows = []
    for seed in seeds:
        pop = (population or PopulationConfig())._replace(seed=seed)
        recording = default_population(out / "recordings", pop)
        for variant in variants:
            cfg = dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                        variant=variant),
                                      num_steps=steps, seed=seed)
            workdir = out / f"{variant}-seed{seed}"
            table = train_temporal(cfg, recording, workdir, resume=True, progress=progress)
            rows.append(dict(table, seed=seed))
            print(json.dumps(rows[-1]), flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    (out / "results.md").write_text(markdown(rows))
    return rows


def markdown(rows: Sequence[Dict]) -> str:
    """Mean +- std over seeds per model, and the targets."""
    lines = mean_std_table(rows, "variant", {m: (lambda r, m=m: r.get(m)) for m in METRICS},
                           label="model")
    return "\n".join(lines) + (f"\n\nmean +- std over {seeds_of(rows)} seeds; targets: "
                               + ", ".join(f"{m} > {t}" for m, t in TARGETS.items()) + "\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.tavrnn",
                                description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    rows = run(args.out, args.seeds, args.steps, args.variants, progress=args.progress)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    from bgan_jax.runtime.allocator import tune
    tune()  # glibc malloc for XLA on CPU (restarts once for huge pages)
    sys.exit(main())
