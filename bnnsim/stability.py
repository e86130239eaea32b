"""How far a CG can determine its labels: re-simulate with the Poisson trains redrawn.

A Poisson-driven network's NeuroML file holds explicit spike trains, while its CG
keeps only each source's rate and start (the input node's ``io`` columns). Two
draws of the trains at the same rates give the same CG but can give different
labels (an ``irregular`` neuron is one whose ISI CV exceeds 0.5 under the input
it actually got). So no CG model can be right on a label more often than that
label's most frequent value over draws: this module measures it.

For every Poisson-driven network of the chosen splits, the network is rebuilt
from its generator seed, its trains are redrawn ``draws`` times at the same rate,
and each copy is simulated and labelled like the dataset. Reported:

* ``agreement``: fraction of neurons whose firing pattern in a redraw equals the
  dataset's label (mean over redraws);
* ``majority``: mean over neurons of the most frequent label's share among the
  dataset's draw and the redraws: an estimate of the best accuracy any CG model
  can reach on these neurons (biased upwards for few draws);
* ``ceiling``: the same over all labelled neurons of the splits, pulse-driven
  ones counting 1 (their simulation has no randomness);
* ``regime_agreement``: the same as ``agreement`` for the network regime.

    python -m bnnsim.stability [--data DIR] [--draws 3] [--splits train val]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from bnnsim.dataset import neuron_stats, network_labels, simulate_spec
from bnnsim.generate import FAMILIES, NetworkSpec, poisson_train, random_network


class StabilityError(ValueError):
    """A dataset whose networks cannot be rebuilt from their generator seeds."""


def redraw_sources(spec: NetworkSpec, seed: int) -> NetworkSpec:
    """The same network with every Poisson train drawn again at the same rate."""
    rng = np.random.default_rng(seed)
    rate, duration = spec.meta["drive_rate_hz"], spec.meta["duration_ms"]
    return spec._replace(sources=[poisson_train(rng, rate, duration) for _ in spec.sources])


def rebuild(row: Dict, generator_args: Dict) -> NetworkSpec:
    """A report row's network, regenerated from its seed with the dataset's arguments."""
    meta = row["generator"]
    spec = random_network(meta["seed"], **generator_args)
    if spec.meta != meta:
        raise StabilityError(f"{row.get('file')}: regenerating seed {meta['seed']} gives "
                             f"another network ({spec.meta} != {meta}); was the dataset built "
                             "with other generator arguments?")
    return spec


def network_stability(spec: NetworkSpec, labels: Dict, draws: int, seed: int) -> Dict:
    """Per-neuron firing patterns and the regime of the dataset's draw and ``draws`` redraws."""
    patterns, regimes = [list(labels["firing_pattern"])], [labels["regime"]]
    for k in range(draws):
        copy = redraw_sources(spec, seed + k)
        result = simulate_spec(copy)
        got = network_labels(copy, result, neuron_stats(copy, result))
        patterns.append(got["firing_pattern"])
        regimes.append(got["regime"])
    p = np.asarray(patterns)  # [draws + 1, neurons]
    return {"agreement": (p[1:] == p[0]).mean(0).tolist(),
            "majority": [Counter(col).most_common(1)[0][1] / p.shape[0] for col in p.T],
            "regime_agreement": float(np.mean(np.asarray(regimes[1:]) == regimes[0]))}


def label_stability(data_dir, draws: int = 3, splits: Sequence[str] = ("train", "val"),
                    seed: int = 10_000, progress: bool = True) -> Dict:
    """The summary described in the module docstring, plus one row per network."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    report_path = Path(data_dir) / "report.json"
    if not report_path.is_file():
        raise StabilityError(f"{data_dir}: no report.json (not a bnnsim dataset)")
    report = json.loads(report_path.read_text())
    args = report.get("generator_args", {"families": list(FAMILIES), "neuron_range": [10, 60]})
    args = {"families": tuple(args["families"]), "neuron_range": tuple(args["neuron_range"])}
    rows = [r for r in report["networks"] if r.get("status") == "ok" and r.get("split") in splits]
    poisson = [r for r in rows if r["generator"]["drive"] == "poisson"]
    n_pulse = sum(len(r["labels"]["firing_pattern"]) for r in rows
                  if r["generator"]["drive"] != "poisson")
    per_network: List[Dict] = []
    for r in tqdm(poisson, desc="redraws", disable=not progress):
        out = network_stability(rebuild(r, args), r["labels"], draws, seed)
        per_network.append({"file": r["file"], **out})
    agreement = [a for n in per_network for a in n["agreement"]]
    majority = [m for n in per_network for m in n["majority"]]
    total = n_pulse + len(majority)
    nan = float("nan")
    return {
        "splits": list(splits), "draws": draws, "networks": len(rows),
        "poisson_networks": len(poisson), "poisson_neurons": len(majority),
        "pulse_neurons": n_pulse,
        "agreement": float(np.mean(agreement)) if agreement else nan,
        "majority": float(np.mean(majority)) if majority else nan,
        "ceiling": (n_pulse + float(np.sum(majority))) / total if total else nan,
        "regime_agreement": (float(np.mean([n["regime_agreement"] for n in per_network]))
                             if per_network else nan),
        "per_network": per_network,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bnnsim.stability", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="dataset directory (default: the embedded default dataset)")
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--splits", nargs="+", default=["train", "val"])
    p.add_argument("--out", help="write the full result (with per-network rows) as JSON here")
    args = p.parse_args(argv)
    if args.data:
        data_dir = Path(args.data)
    else:
        from bnnsim.dataset import default_dataset
        data_dir = default_dataset()
    try:
        result = label_stability(data_dir, args.draws, args.splits)
    except (StabilityError, ValueError) as err:
        print(f"error: {err}")
        return 2
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "per_network"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
