"""Read a trained run out: tables, figures and a report, for every kind of run.

    python analyze.py --workdir runs/X                     # BGAN: the run's test split
    python analyze.py --workdir runs/X --data DIR --split val
    python analyze.py --workdir runs/X --nml a.net.nml b.cell.nml --out analysis_b
    python analyze.py --workdir runs/T [--data spikes.npz]  # a tavrnn/vgrnn/vgae run
    python analyze.py --workdir runs/S                     # an snn run

The kind of run is read from ``WORKDIR/config.json`` (``"kind"``), never guessed.
Writes to ``--out`` (default ``WORKDIR/analysis``): ``report.md``, CSV tables,
``analysis.json`` and ``figures/*.png`` (BGAN runs also ``graphml/*.graphml``). For
BGAN runs a file that cannot be read is reported and skipped; the rest is analysed.
The attribution baseline is the mean node of each kind in the training split of the
run's dataset (for --nml without that dataset at hand: in the given files). Method:
bgan_jax/bgan/analysis.py. Exit codes: 0 done, 1 the run or its inputs cannot be
used (one line on stderr), 2 an option that does not apply to the run's kind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from graphs.cli import add_allow_path

PROG = "analyze.py"


def process_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="a train.py --workdir (config + checkpoint)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="dataset directory (default: the one the run trained on); "
                     "for a tavrnn/vgrnn/vgae run: a spike file")
    src.add_argument("--nml", nargs="+", metavar="FILE", help="NeuroML files to convert and "
                     "analyse instead of a dataset (BGAN runs)")
    add_allow_path(p)  # with --nml
    p.add_argument("--split", help="dataset split to analyse (BGAN runs; default: test)")
    p.add_argument("--out", help="output directory (default: WORKDIR/analysis)")
    p.add_argument("--max-models", type=int, default=0,
                   help="analyse at most this many models (default: all)")
    p.add_argument("--steps", type=int, default=32,
                   help="integrated-gradients path steps (default: 32)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = process_args(argv)
    from bgan_jax.registry import kind_of_run
    from bgan_jax.runs.cli import fail, inapplicable
    from bgan_jax.runs.workdir import RunDirError

    workdir = Path(args.workdir)
    try:
        kind = kind_of_run(workdir)
    except RunDirError as err:
        return fail(PROG, str(err), 1)
    refused = inapplicable(kind, args, ("data", "nml", "split")) or (
        "--allow-path needs --nml" if args.allow_path and not args.nml else None)
    if refused:
        return fail(PROG, refused, 2)
    args.split = args.split or "test"
    try:
        lines = kind.analyze(workdir, args)
    except kind.errors() + (RunDirError,) as err:
        return fail(PROG, str(err), 1)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    from bgan_jax.runtime.allocator import tune
    tune()  # glibc malloc for XLA on CPU (restarts once for huge pages)
    sys.exit(main())
