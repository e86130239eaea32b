"""Train a model of bgan-jax: BGAN or a baseline on a labelled CG dataset, TAVRNN on a
spike recording, or an SNN on the bundled digits.

    python train.py                       # BGAN, default dataset (built on first run)
    python train.py --task regime --set num_steps=200 --set model.num_blocks=2
    python train.py --workdir runs/a --resume
    python train.py --model tavrnn        # TAVRNN on the default simulated recording
    python train.py --model vgrnn --data spikes.csv --set windows.threshold=0.3
    python train.py --model snn --set num_steps=100

Every model takes the same ``--set KEY=VALUE`` overrides of its config (one budget
field, ``num_steps``, for all); the kinds and their configs are listed in
``bgan_jax.registry``. Several processes: set JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES and JAX_PROCESS_ID and run the same command in each (BGAN runs;
see bgan_jax.runs.distributed). Exit codes: 0 done, 1 the run failed (bad data,
a damaged run, divergence; one line on stderr), 2 bad arguments or config.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

PROG = "train.py"


def process_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from bgan_jax.bgan.data import TASKS
    from bgan_jax.registry import KINDS, MODELS

    p = argparse.ArgumentParser(prog="python train.py", description=__doc__.split("\n")[0])
    p.add_argument("--workdir", help="run directory (default: runs/<timestamp>)")
    p.add_argument("--model", choices=list(MODELS), help="; ".join(
        f"{'/'.join(k.models)}: {k.description}" for k in KINDS.values()) + " (default: bgan; with --resume: the run's)")
    p.add_argument("--data", help="; ".join(f"{k.name}: {k.data_help}" for k in KINDS.values()
                                            if k.data_help))
    p.add_argument("--task", choices=sorted(TASKS), help="bgan/mlp/transformer task "
                   "(default: firing_pattern)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. num_steps=200 or model.num_blocks=2")
    p.add_argument("--resume", action="store_true", help="continue the workdir's run (its "
                   "config.json, --set on top) from its latest intact checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def run_config(args: argparse.Namespace, workdir: Path):
    """(kind, config, data): a new run from --model, --task and --set; a resumed one from
    the workdir's config.json (and data.json), with --set applied on top."""
    from bgan_jax.registry import kind_of_model, kind_of_run
    from bgan_jax.runs.config import apply_overrides
    from bgan_jax.runs.workdir import read_config, read_data_path

    if not (args.resume and (workdir / "config.json").is_file()):
        kind = kind_of_model(args.model or "bgan")
        return kind, apply_overrides(kind.make_config(args.model or "bgan", args.task),
                                     args.set), args.data
    kind = kind_of_run(workdir)
    if args.model and kind_of_model(args.model) is not kind:
        raise ValueError(f"{workdir} holds a {kind.name} run; --model {args.model} is not one")
    config = apply_overrides(read_config(workdir, kind.config_class()), args.set)
    if args.task and args.task != getattr(config, "task", None):
        raise ValueError(f"{workdir} trains task {getattr(config, 'task', None)!r}; a resumed "
                         "run keeps its task")
    data = args.data or read_data_path(workdir)
    return kind, config, None if data is None else str(data)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = process_args(argv)
    from bgan_jax.runs import distributed
    from bgan_jax.runs.cli import fail, inapplicable
    from bgan_jax.runs.workdir import RunDirError

    workdir = Path(args.workdir or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    try:
        kind, config, data = run_config(args, workdir)
    except RunDirError as err:
        return fail(PROG, str(err), 1)
    except (ValueError, TypeError) as err:
        return fail(PROG, f"bad config: {err}", 2)
    refused = inapplicable(kind, argparse.Namespace(task=args.task, data=data),
                           ("task", "data"))
    if refused:
        return fail(PROG, refused, 2)
    try:
        distributed.initialize()
    except distributed.DistributedSetupError as err:
        return fail(PROG, str(err), 2)
    try:
        lines = kind.train(config, data, workdir, args.resume, not args.no_progress)
    except kind.errors() + (RunDirError, distributed.SingleProcessOnly) as err:
        return fail(PROG, str(err), 1)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    from bgan_jax.runtime.allocator import tune
    tune()  # glibc malloc for XLA on CPU (restarts once for huge pages)
    sys.exit(main())
