"""The ``bgan`` kind: BGAN and its baselines on labelled CG datasets (registry entry)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from bgan_jax.runs.kind import Kind

from bgan_jax.bgan.baselines import BGAN_MODELS


def _config_class():
    from bgan_jax.bgan.train import TrainConfig

    return TrainConfig


def _make_config(model: str, task: Optional[str]):
    from bgan_jax.bgan.train import TrainConfig

    return TrainConfig(model_name=model, **({"task": task} if task else {}))


def _train(config, data: Optional[str], workdir: Path, resume: bool, progress: bool) -> List[str]:
    import jax

    from bgan_jax.bgan import data as data_lib
    from bgan_jax.bgan.train import format_table, train_and_evaluate

    if data:
        data_dir = Path(data)
    else:
        from bnnsim.dataset import default_dataset
        data_dir = default_dataset(progress=progress)
    print(f"data {data_dir}\nworkdir {workdir}\ndevices {jax.device_count()} x "
          f"{jax.devices()[0].platform} ({jax.process_count()} process(es))", flush=True)
    table = train_and_evaluate(config, data_dir, workdir, resume=resume, progress=progress)
    return [f"task {config.task}, model {config.model_name}, best step {table['best_step']}, "
            f"{table['compilations']} compilations",
            format_table(table, data_lib.task_of(config.task)), f"saved {workdir / 'eval.json'}"]


def _errors():
    from bgan_jax.bgan.data import DatasetError
    from bgan_jax.runs.checkpoints import CheckpointError
    from bgan_jax.runs.loop import TrainingDiverged

    return (DatasetError, CheckpointError, TrainingDiverged, FileExistsError)


def dataset_inputs(data_dir: Path, split: str, task: str):
    """(reference CGs for the baseline, [(name, CG)] to analyse, outcomes of the damaged
    graph files, which are left out) from a dataset split."""
    from bgan_jax.bgan import data as data_lib

    damaged: list = []
    splits = data_lib.load_splits(data_dir, task, ("train", split), damaged=damaged)
    if not splits[split]:
        raise data_lib.DatasetError(f"{data_dir}: no labelled networks in split {split!r}")
    outcomes = [{"name": f, "status": "error", "error": why} for f, why in damaged]
    return ([e.cg for e in splits["train"]], [(e.name, e.cg) for e in splits[split]], outcomes)


def nml_inputs(files: Sequence[str], allow: Sequence[str] = ()) -> Tuple[List, List[dict]]:
    """Convert each file (its includes read inside its tree and ``allow``,
    ``graphs.policy``); a bad one becomes an error outcome, never a stop."""
    from graphs import convert_file
    from graphs.errors import ConversionError

    inputs, outcomes = [], []
    for f in files:
        try:
            inputs.append((Path(f).name.split(".")[0], convert_file(f, allow=allow)))
        except (ConversionError, OSError, ValueError) as err:
            outcomes.append({"name": str(f), "status": "error", "error": str(err)})
    return inputs, outcomes


def _analyze(workdir: Path, args: argparse.Namespace) -> List[str]:
    """Attention and attribution tables, figures, GraphML and report.md of a BGAN run."""
    from bgan_jax.bgan import analysis as A
    from bgan_jax.bgan import data as data_lib
    from bgan_jax.bgan.report import write_all
    from bgan_jax.bgan.train import load_run
    from bgan_jax.runs.workdir import RunDirError

    run = load_run(workdir)
    task_name = run.config.task
    outcomes: List[dict] = []
    if args.nml:
        inputs, outcomes = nml_inputs(args.nml, getattr(args, "allow_path", ()))
        trained_on = run.data_dir if run.data_dir and run.data_dir.is_dir() else None
        reference = ([e.cg for e in data_lib.load_splits(trained_on, task_name,
                                                         ("train",))["train"]]
                     if trained_on else [cg for _, cg in inputs])
    else:
        data_dir = Path(args.data) if args.data else run.data_dir
        if data_dir is None:
            raise RunDirError(f"{workdir}: the run does not record its dataset; pass --data DIR")
        if not data_dir.exists():
            raise RunDirError(f"{workdir / 'data.json'}: the run's dataset {data_dir} is not "
                              "there (moved?); pass --data DIR")
        reference, inputs, outcomes = dataset_inputs(data_dir, args.split, task_name)
    if args.max_models:
        inputs = inputs[:args.max_models]
    if not inputs:
        raise data_lib.DatasetError("nothing to analyse (every input failed): " + "; ".join(
            f"{o['name']}: {o['error']}" for o in outcomes))
    analyses, done = A.analyze_all(run, inputs, reference, args.steps, not args.no_progress)
    outcomes += done
    if not analyses:
        raise data_lib.DatasetError("no model could be analysed: " + "; ".join(
            f"{o['name']}: {o['error']}" for o in outcomes if o["status"] != "ok"))
    out = Path(args.out) if args.out else workdir / "analysis"
    meta = {"workdir": str(workdir), "task": task_name, "model": run.config.model_name,
            "step": run.step, "ig_steps": args.steps}
    summary = write_all(analyses, out, meta, outcomes)
    failed = [o for o in outcomes if o["status"] != "ok"]
    for o in failed:
        print(f"skipped {o['name']}: {o['error']}", file=sys.stderr)
    lines = [f"analysed {summary['models']} model(s), skipped {len(failed)}; "
             f"report {out / 'report.md'}"]
    if summary["planted"]:
        p = summary["planted"]
        lines.append(f"planted {p['case']}: ranked first {p['ranked_first']:.2f}, AUROC "
                     f"attribution {p['auroc_attribution']:.3f}, attention "
                     f"{p['auroc_attention']:.3f}")
    return lines


ENTRY = Kind(
    name="bgan", models=BGAN_MODELS,
    description="BGAN (or the mlp / transformer baseline) on a labelled CG dataset",
    config_class=_config_class, make_config=_make_config, train=_train, analyze=_analyze,
    errors=_errors, accepts=frozenset({"task", "data", "nml", "split"}),
    data_help="a dataset directory (default: the embedded default dataset, built on first use)")
