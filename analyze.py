"""Read a trained model out: attention and attribution tables, figures, GraphML, report.

    python analyze.py --workdir runs/X                     # the run's test split
    python analyze.py --workdir runs/X --data DIR --split val
    python analyze.py --workdir runs/X --nml a.net.nml b.cell.nml --out analysis_b
    python analyze.py --workdir runs/T [--data spikes.npz]  # a tavrnn/vgrnn/vgae run

Writes to ``--out`` (default ``WORKDIR/analysis``): ``report.md``, CSV tables,
``analysis.json``, ``figures/*.png`` and ``graphml/*.graphml``. A file that cannot
be read is reported and skipped; the rest is analysed. The attribution baseline is
the mean node of each kind in the training split of the run's dataset (for --nml
without that dataset at hand: in the given files). Method: bgan_jax/analysis.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple


def process_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="a train.py --workdir (config + checkpoint)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="dataset directory (default: the one the run trained on); "
                     "for a tavrnn/vgrnn/vgae run: a spike file")
    src.add_argument("--nml", nargs="+", metavar="FILE", help="NeuroML files to convert and "
                     "analyse instead of a dataset")
    p.add_argument("--split", default="test", help="dataset split to analyse (default: test)")
    p.add_argument("--out", help="output directory (default: WORKDIR/analysis)")
    p.add_argument("--max-models", type=int, default=0,
                   help="analyse at most this many models (default: all)")
    p.add_argument("--steps", type=int, default=32,
                   help="integrated-gradients path steps (default: 32)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def dataset_inputs(data_dir: Path, split: str, task: str):
    """(reference CGs for the baseline, [(name, CG)] to analyse) from a dataset split."""
    from bgan_jax.bgan import data as data_lib

    splits = data_lib.load_splits(data_dir, task, ("train", split))
    if not splits[split]:
        raise data_lib.DatasetError(f"{data_dir}: no labelled networks in split {split!r}")
    return [e.cg for e in splits["train"]], [(e.name, e.cg) for e in splits[split]]


def nml_inputs(files: Sequence[str]) -> Tuple[List, List[dict]]:
    """Convert each file; a bad one becomes an error outcome, never a stop."""
    from graphs import convert_file
    from graphs.errors import ConversionError

    inputs, outcomes = [], []
    for f in files:
        try:
            inputs.append((Path(f).name.split(".")[0], convert_file(f)))
        except (ConversionError, OSError, ValueError) as err:
            outcomes.append({"name": str(f), "status": "error", "error": str(err)})
    return inputs, outcomes


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = process_args(argv)
    from bgan_jax.tavrnn.train import is_temporal_run

    if is_temporal_run(args.workdir):
        return analyze_temporal_main(args)
    from bgan_jax.bgan import analysis as A
    from bgan_jax.bgan import data as data_lib
    from bgan_jax.bgan.report import write_all
    from bgan_jax.bgan.train import load_run

    try:
        run = load_run(args.workdir)
    except FileNotFoundError as err:
        print(f"analyze.py: {err}", file=sys.stderr)
        return 1
    task_name = run.config.task
    outcomes: List[dict] = []
    try:
        if args.nml:
            inputs, outcomes = nml_inputs(args.nml)
            trained_on = run.data_dir if run.data_dir and run.data_dir.is_dir() else None
            reference = ([e.cg for e in data_lib.load_splits(trained_on, task_name,
                                                             ("train",))["train"]]
                         if trained_on else [cg for _, cg in inputs])
        else:
            data_dir = Path(args.data) if args.data else run.data_dir
            if data_dir is None:
                print("analyze.py: the run does not record its dataset; pass --data DIR",
                      file=sys.stderr)
                return 1
            reference, inputs = dataset_inputs(data_dir, args.split, task_name)
    except data_lib.DatasetError as err:
        print(f"analyze.py: {err}", file=sys.stderr)
        return 1
    if args.max_models:
        inputs = inputs[:args.max_models]
    if not inputs:
        print("analyze.py: nothing to analyse (every input failed; see above)", file=sys.stderr)
        for o in outcomes:
            print(f"  {o['name']}: {o['error']}", file=sys.stderr)
        return 1
    analyses, done = A.analyze_all(run, inputs, reference, args.steps, not args.no_progress)
    outcomes += done
    if not analyses:
        print("analyze.py: no model could be analysed", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else Path(args.workdir) / "analysis"
    meta = {"workdir": str(args.workdir), "task": task_name, "model": run.config.model_name,
            "step": run.step, "ig_steps": args.steps}
    summary = write_all(analyses, out, meta, outcomes)
    failed = [o for o in outcomes if o["status"] != "ok"]
    for o in failed:
        print(f"skipped {o['name']}: {o['error']}", file=sys.stderr)
    print(f"analysed {summary['models']} model(s), skipped {len(failed)}; report {out / 'report.md'}")
    if summary["planted"]:
        p = summary["planted"]
        print(f"planted {p['case']}: ranked first {p['ranked_first']:.2f}, AUROC attribution "
              f"{p['auroc_attribution']:.3f}, attention {p['auroc_attention']:.3f}")
    return 0


def analyze_temporal_main(args: argparse.Namespace) -> int:
    from bgan_jax.tavrnn.report import analyze_temporal
    from bgan_jax.tavrnn.spikes import SpikeDataError

    if args.nml:
        print("analyze.py: --nml applies to BGAN runs; a TAVRNN run reads a spike file "
              "(--data)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.workdir) / "analysis"
    try:
        summary = analyze_temporal(args.workdir, out, args.data)
    except (FileNotFoundError, SpikeDataError) as err:
        print(f"analyze.py: {err}", file=sys.stderr)
        return 1
    print(f"{summary['variant']}: {summary['windows']} windows; " + ", ".join(
        f"{k} {v:.3f}" for k, v in summary["metrics"].items()) + f"; report {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
