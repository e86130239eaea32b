"""The comparison behind RESULTS.md: BGAN vs baselines and ablations, several seeds.

    python -m experiments.grid --out runs/results [--steps 300] [--seeds 0 1 2]

Every run uses the same budget (steps, batch, optimizer) and is scored on its
best-validation checkpoint; the test split is never used for any choice.
Results go to ``OUT/results.json`` (one row per run) and ``OUT/results.md``
(mean +- std over seeds per task, variant and split).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from bgan_jax.runs.tables import markdown_table, mean_std_table, seeds_of


# variant -> (model name, model config overrides[, TrainConfig overrides])
VARIANTS: Dict[str, tuple] = {
    "bgan": ("bgan", {}),
    "mlp": ("mlp", {}),
    "transformer": ("transformer", {}),
    "bgan-no-nsa": ("bgan", {"nsa": False}),
    "bgan-no-bmsa": ("bgan", {"bmsa": False}),
    "bgan-no-maskA": ("bgan", {"mask_a": False}),
    "bgan-no-maskB": ("bgan", {"mask_b": False}),
    "bgan-totals": ("bgan", {"graph_totals": 16}),  # + the sum read-out (graph tasks)
    "bgan-logdens": ("bgan", {"log_densities": True}),  # channel densities as log10 (real cells)
    # + the within-family difference loss (real cells with variants; TrainConfig.variant_pair_weight)
    "bgan-pairs": ("bgan", {}, {"variant_pair_weight": 1.0}),
    "transformer-pairs": ("transformer", {}, {"variant_pair_weight": 1.0}),
}
ABLATIONS = ("bgan-no-nsa", "bgan-no-bmsa", "bgan-no-maskA", "bgan-no-maskB")


def by_drive(workdir: Path, data_dir) -> Dict[str, Dict]:
    """Every split's metrics over pulse- and Poisson-driven networks separately, from the
    run's best checkpoint: Poisson-driven labels are partly draw noise to a CG model
    (``bnnsim.stability``), pulse-driven ones are not."""
    from bgan_jax.bgan import data as data_lib
    from bgan_jax.bgan import train as training

    run = training.load_run(workdir)  # its saved config holds the feature statistics
    config = run.config
    task = data_lib.task_of(config.task)
    splits = data_lib.load_splits(data_dir, config.task)
    scale = data_lib.target_scale(splits["train"], task)
    first = next(data_lib.batches(splits["train"][:1], config.batch_size, scale=scale))[0]
    state = training.create_train_state(config, first).replace(params=run.params)
    step = training.make_eval_step(task)
    out = {}
    for split, examples in splits.items():
        for drive in ("pulse", "poisson"):
            sub = [e for e in examples if e.cg.meta.get("generator", {}).get("drive") == drive]
            if sub:
                out[f"{split}/{drive}"] = training.evaluate(step, state, sub, config, task, scale)
    return out


def run_dir(out: Path, task: str, variant: str, seed: int) -> Path:
    """Where a grid run's workdir lives (``train.py --workdir``)."""
    return out / f"{task}-{variant}-s{seed}"


def run_one(data_dir, out: Path, task: str, variant: str, seed: int, steps: int,
            balanced: bool = False, drives: bool = False, overrides: Sequence[str] = ()
            ) -> Dict:
    """One grid run; ``overrides`` (``--set key=value``, as train.py takes them) are
    applied to its TrainConfig after the variant's own settings."""
    from bgan_jax.bgan.train import TrainConfig, selection_metric, train_and_evaluate
    from bgan_jax.runs.config import apply_overrides

    model_name, changes, *train_changes = VARIANTS[variant]
    base = TrainConfig()
    config = dataclasses.replace(base, task=task, model_name=model_name, seed=seed,
                                 num_steps=steps, eval_every=max(steps // 3, 1),
                                 checkpoint_every=steps, model=base.model.replace(**changes),
                                 class_weighting="balanced" if balanced else "none",
                                 **(train_changes[0] if train_changes else {}))
    config = apply_overrides(config, overrides)
    workdir = run_dir(out, task, variant, seed)
    if workdir.exists():  # an interrupted run (finished ones are skipped): start it again
        shutil.rmtree(workdir)
    t0 = time.time()
    table = train_and_evaluate(config, data_dir, workdir, progress=False)
    row = {"task": task, "variant": variant, "seed": seed, "metric": selection_metric(config),
           "steps": steps, "seconds": time.time() - t0, "best_step": table["best_step"],
           "splits": table["splits"]}
    return dict(row, by_drive=by_drive(workdir, data_dir)) if drives else row


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="TrainConfig override for every neural run (train.py's --set), "
                        "after the variant's own settings; use another --out per setting")


def check_overrides(tasks: Sequence[str], overrides: Sequence[str]) -> None:
    """Raise ``ConfigError`` for a ``--set`` that no run of these tasks could take, before
    any run starts."""
    from bgan_jax.bgan.train import TrainConfig
    from bgan_jax.runs.config import apply_overrides

    for task in tasks:
        apply_overrides(TrainConfig(task=task), overrides)


def use_compilation_cache(path: Optional[str]) -> None:
    """Keep every XLA compilation in ``path`` (None: no cache): the seeds of one variant,
    and reruns, then compile each step once."""
    if path:
        import jax
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _reported(metric: str) -> List[str]:
    """The metrics a table shows: the selection metric, plus plain accuracy when the
    checkpoint was chosen by balanced accuracy."""
    return [metric, "accuracy"] if metric == "balanced_accuracy" else [metric]


def markdown(rows: Sequence[Dict]) -> str:
    """Mean +- std over seeds, one table per task and reported metric, then every run
    that failed and why (left out of the tables)."""
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    lines: List[str] = []
    for task in dict.fromkeys(r["task"] for r in rows):
        sub = [r for r in rows if r["task"] == task]
        for metric in _reported(sub[0]["metric"]):
            lines += [f"### {task} ({metric}, best-validation checkpoint, "
                      f"{seeds_of(sub)} seeds, {_steps(sub)} steps)", ""]
            lines += mean_std_table(sub, "variant", {
                split: (lambda r, s=split: r["splits"].get(s, {}).get(metric))
                for split in ("train", "val", "test", "ood")})
            lines.append("")
        lines += _drive_table(sub)
    seconds = _seconds(rows)
    if seconds:
        lines += ["### Run time (wall seconds per run, median over seeds)", ""]
        lines += markdown_table(["task", "variant", "runs", "seconds"], [
            [t, v, len(sec), f"{np.median(sec):.0f}"] for (t, v), sec in seconds.items()])
        lines.append("")
    if failed:
        lines += ["### Failed runs (not in the tables)", ""]
        lines += [f"* {r['task']} {r['variant']} seed {r['seed']}: {r['error']}" for r in failed]
        lines.append("")
    return "\n".join(lines)


def _steps(rows: Sequence[Dict]):
    """The trained runs' step budget (a non-neural baseline has none)."""
    return next((r["steps"] for r in rows if r.get("steps")), "-")


def _seconds(rows: Sequence[Dict]) -> Dict[tuple, List[float]]:
    out: Dict[tuple, List[float]] = {}
    for r in rows:
        if r.get("seconds") is not None:
            out.setdefault((r["task"], r["variant"]), []).append(float(r["seconds"]))
    return out


def _drive_table(rows: Sequence[Dict]) -> List[str]:
    """Mean +- std of the selection metric per split and drive, for rows scored by drive."""
    rows = [r for r in rows if r.get("by_drive")]
    if not rows:
        return []
    metric = rows[0]["metric"]
    keys = [f"{s}/{d}" for s in ("val", "test", "ood") for d in ("pulse", "poisson")]
    return ([f"#### {rows[0]['task']} by drive ({metric})", ""]
            + mean_std_table(rows, "variant", {
                k: (lambda r, k=k: r["by_drive"].get(k, {}).get(metric)) for k in keys})
            + [""])


def run_grid(out: Path, tasks: Sequence[str], variants: Sequence[str], seeds: Sequence[int],
             run: Callable[[str, str, int], Dict]) -> List[Dict]:
    """Every (task, variant, seed) row, resumable: ``OUT/results.json`` keeps each finished
    run and a second invocation runs only the missing ones; ``results.md`` follows."""
    results = out / "results.json"
    rows = json.loads(results.read_text()) if results.is_file() else []
    rows = [r for r in rows if "error" not in r]  # a failed run is tried again
    done = {(r["task"], r["variant"], r["seed"]) for r in rows}
    for task in tasks:
        for variant in variants:
            for seed in seeds:
                if (task, variant, seed) in done:
                    continue
                print(f"{task} {variant} seed {seed}", flush=True)
                t0 = time.time()
                try:
                    row = run(task, variant, seed)
                except Exception as e:  # noqa: BLE001 - this run's outcome; the grid goes on
                    row = {"task": task, "variant": variant, "seed": seed, "splits": {},
                           "seconds": time.time() - t0, "error": f"{type(e).__name__}: {e}"}
                    print(f"  failed: {row['error']}", file=sys.stderr, flush=True)
                rows.append(row)
                results.write_text(json.dumps(rows, indent=1))
                (out / "results.md").write_text(markdown(rows))
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.grid", description=__doc__)
    p.add_argument("--out", default="runs/results")
    p.add_argument("--data", help="dataset (default: the embedded default dataset)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--tasks", nargs="+", default=["firing_pattern", "regime", "stdp_dw"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--balanced", nargs="*", default=["regime"], metavar="TASK",
                   help="classification tasks trained with balanced class weights and "
                   "selected by balanced accuracy (default: regime, 75%% one class)")
    p.add_argument("--by-drive", action="store_true",
                   help="also score each run on pulse- and Poisson-driven networks apart")
    p.add_argument("--cache", help="persistent XLA compilation cache directory (seeds of one "
                   "variant share compilations)")
    add_set_argument(p)
    args = p.parse_args(argv)
    check_overrides(args.tasks, args.set)
    use_compilation_cache(args.cache)
    if args.data:
        data_dir = Path(args.data)
    else:
        from bnnsim.dataset import default_dataset
        data_dir = default_dataset()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = (lambda task, variant, seed: run_one(data_dir, out, task, variant, seed, args.steps,
                                               balanced=task in args.balanced,
                                               drives=args.by_drive, overrides=args.set))
    rows = run_grid(out, args.tasks, args.variants, args.seeds, run)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    from bgan_jax.runtime.allocator import tune
    tune()  # glibc malloc for XLA on CPU (restarts once for huge pages)
    raise SystemExit(main())
