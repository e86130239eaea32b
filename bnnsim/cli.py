"""Command line: ``python -m bnnsim synth``: canonical networks, labelled by simulation.

Exit codes: 0 every network written, 1 some failed (the report is still
complete), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from bnnsim.generate import FAMILIES


def process_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bnnsim",
        description="Generate canonical NeuroML2 networks and label them by simulation.")
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth", help="generate canonical networks, labelled by simulation")
    synth.add_argument("--out", default="synth_out", help="output directory (default: synth_out)")
    synth.add_argument("--n", type=int, default=20, help="number of networks (default: 20)")
    synth.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    synth.add_argument("--family", action="append", choices=FAMILIES,
                       help="cell families to draw from (repeatable; default: all)")
    synth.add_argument("--neurons", type=int, nargs=2, default=(10, 60), metavar=("MIN", "MAX"),
                       help="neurons per network, drawn uniformly (default: 10 60)")
    synth.add_argument("--activity-features", action="store_true",
                       help="also write measured activity into the neuron nodes' activity "
                       "features (off by default: it would leak the labels)")
    synth.add_argument("--ood-family", default="adex",
                       help="family held out as the out-of-distribution split ('' for none)")
    return parser.parse_args(argv)


def synth_command(args) -> int:
    """Build, simulate, label and split a dataset (bnnsim.dataset.build_dataset)."""
    from bnnsim.dataset import build_dataset

    if args.n < 1 or not 1 <= args.neurons[0] <= args.neurons[1]:
        print("error: --n must be >= 1 and --neurons MIN MAX with 1 <= MIN <= MAX",
              file=sys.stderr)
        return 2
    report = build_dataset(args.out, args.n, args.seed, families=args.family or FAMILIES,
                           ood_family=args.ood_family or None,
                           neuron_range=tuple(args.neurons),
                           activity_features=args.activity_features)
    failed = [r for r in report["networks"] if r["status"] != "ok"]
    print(f"{args.n - len(failed)}/{args.n} networks written to {args.out} "
          f"(splits {report['splits']}); class balance in {args.out}/report.json")
    return 1 if failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = process_args(argv)
    return synth_command(args)
