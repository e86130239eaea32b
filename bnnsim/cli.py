"""Command line: ``python -m bnnsim synth``: canonical networks, labelled by simulation;
``python -m bnnsim cells PATH...``: real NeuroML cells characterised in NEURON.

Exit codes: 0 every network written, 1 some failed (the report is still
complete), 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from bnnsim.generate import FAMILIES
from graphs.cli import add_allow_path


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
    cells = sub.add_parser(
        "cells", help="characterise real NeuroML cells in NEURON (current-clamp protocol, "
        "eFEL features, e-type) and write them as a labelled dataset")
    cells.add_argument("paths", nargs="+", metavar="PATH",
                       help="NeuroML files or folders (searched for *.nml)")
    cells.add_argument("--out", required=True, help="dataset directory (resumes if it exists)")
    cells.add_argument("--variants", type=int, default=0, metavar="K",
                       help="variants per cell, channel densities scaled per (segment "
                       "group, channel) log-uniformly in 0.5-2 (default: 0)")
    cells.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="cells simulated in parallel, one process each (default: CPUs)")
    cells.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run the cells on the Dask cluster whose scheduler is at ADDRESS (e.g. "
                       "tcp://HOST:8786); the dataset is written here as by a "
                       "local build (default: --workers processes on this machine)")
    cells.add_argument("--cache", default=None,
                       help="cache of compiled mechanisms and results "
                       "(default: $BGAN_JAX_CACHE/ephys or ~/.cache/bgan-jax/ephys)")
    cells.add_argument("--ood-repository", default=None,
                       help="source repository held out as the 'ood' split "
                       "(default: OpenSourceBrain/BahlEtAl2012_ReducedL5PyrCell; '' for none)")
    cells.add_argument("--dt-check", type=int, default=3, metavar="N",
                       help="re-run N cells at half dt and report the change (default: 3)")
    cells.add_argument("--timeout", type=float, default=3600.0,
                       help="seconds one cell may take before it counts as failed")
    cells.add_argument("--fill-missing-ca-dynamics", action="store_true",
                       help="define a calcium concentration model a cell names but no file "
                       "defines with Hay et al. 2011's defaults (recorded per cell; see "
                       "bnnsim.ephys.repairs). Off: such a cell fails at export")
    cells.add_argument("--finished-only", action="store_true",
                       help="simulate nothing: write the dataset of the cells earlier "
                       "(interrupted) builds into --out finished; the rest are 'pending'")
    cells.add_argument("--granularity", choices=("section", "segment"), default="section",
                       help="compartments of the graphs written: one node per unbranched "
                       "section (default) or per NeuroML segment; measurements are cached "
                       "by cell, so a second build at the other granularity only converts")
    cells.add_argument("--figures", action="store_true",
                       help="also draw DIR/figures/NAME.png per characterised cell "
                       "(traces at rheobase, 1.5x, 3x and the F-I curve)")
    add_allow_path(cells)
    return parser.parse_args(argv)


def cells_command(args) -> int:
    """Characterise cells into a dataset (bnnsim.ephys.dataset.build_cells)."""
    from bnnsim.ephys.dataset import DEFAULT_OOD_REPOSITORY, build_cells

    if args.variants < 0 or args.workers < 1 or args.dt_check < 0:
        print("error: --variants and --dt-check must be >= 0, --workers >= 1", file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    ood = DEFAULT_OOD_REPOSITORY if args.ood_repository is None else (args.ood_repository or None)
    try:
        report = build_cells(args.paths, args.out, n_variants=args.variants,
                             workers=args.workers, cache_dir=args.cache, ood_repository=ood,
                             dt_check_cells=args.dt_check, timeout=args.timeout,
                             repair=args.fill_missing_ca_dynamics,
                             finished_only=args.finished_only, granularity=args.granularity,
                             scheduler=args.scheduler, allow=args.allow_path)
    except ValueError as e:  # a folder built at another granularity
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.figures:
        from bnnsim.ephys.figures import draw_dataset

        draw_dataset(args.out, report)
    ch = report["characterised"]
    print(f"{ch['cells']}/{ch['of']} cells characterised, {report['n_variants']} variants; "
          f"outcomes {report['outcomes']}; e-types {report['etypes']}; "
          f"report in {args.out}/report.json")
    for f in report["failures"]:
        print(f"  failed: {f['message']}", file=sys.stderr)
    return 1 if report["failures"] or report["unreadable"] else 0


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
    if args.command == "cells":
        return cells_command(args)
    return synth_command(args)
