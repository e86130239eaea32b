"""Real cells II: BGAN and its baselines on real-cell tasks, and the read-out against the
simulator.

    python -m experiments.cells --data cells_out --readout-data gt_out \\
        --out runs/cells [--steps 400] [--seeds 0 1 2]

``--data`` is a real-cell dataset (``python -m bnnsim cells``); every variant sits
in its source cell's split, so test scores are on cells no model saw. Each task
(etype, efeatures, dendrite_type) is trained by every variant of
``grid.VARIANTS`` chosen plus ``gbm`` (scikit-learn gradient boosting on the
per-kind feature table, ``bgan_jax.bgan.tabular``), with the same budget,
best-validation checkpoint and seeds; classification with balanced class
weights, selected by balanced accuracy. ``--readout-data`` (a dataset with
many variants per cell) scores the seed-0 BGAN efeatures run's attribution
against the measured sensitivities (``bgan_jax.bgan.groundtruth``) and draws
one figure per scored cell. On a dataset with variants, every run is also
scored on the test split's parts, the held-out source cells and their variants
(``test_cells``, ``test_variants``), and those variants on the targets their source
cell defines (``test_variants_same_regime``). Output: ``OUT/results.json`` / ``results.md``,
``OUT/readout.json`` / ``readout.md``, ``OUT/figures/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from experiments.grid import (VARIANTS, add_set_argument, check_overrides, markdown,
                                       run_dir, run_grid, run_one, use_compilation_cache)

CELL_TASKS = ("etype", "efeatures", "dendrite_type")
CLASSIFICATION = ("etype", "dendrite_type")
DEFAULT_VARIANTS = ("bgan", "transformer", "mlp", "bgan-no-nsa", "bgan-no-bmsa", "gbm")


# The test split's source cells, their variants, and the variants scored only on the
# targets their source cell has too (a variant that stops firing at rest gains a
# rheobase and an input resistance its source lacks: a change of regime).
PARTS = ("test_cells", "test_variants", "test_variants_same_regime")


def held_out_parts(data_dir, splits: Dict[str, List]) -> Dict[str, List]:
    """The test split's examples in ``PARTS``: the held-out source cells, their
    variants (``report.json``'s ``variant_of``), and those variants with each target
    masked where their source cell does not define it (variants left with no target
    are dropped). Empty when the dataset has no variants."""
    from bgan_jax.runs.workdir import read_json

    rows = read_json(Path(data_dir) / "report.json", ValueError)
    source = {Path(r["npz"]).stem: r.get("variant_of") for r in rows.get("variants") or []
              if r.get("npz")}
    stem = {r.get("name"): Path(r["npz"]).stem for r in rows.get("cells") or [] if r.get("npz")}
    test = splits.get("test") or []
    if not any(e.name in source for e in test):
        return {}
    cells = [e for e in test if e.name not in source]
    variants = [e for e in test if e.name in source]
    masks = {e.name: e.graph_mask for e in cells}
    same = []
    for e in variants:
        mask = e.graph_mask & masks.get(stem.get(source[e.name]), np.zeros_like(e.graph_mask))
        if mask.any():
            same.append(dataclasses.replace(e, graph_mask=mask))
    return {"test_cells": cells, "test_variants": variants, "test_variants_same_regime": same}


def train_subset(data_dir, out_dir, fraction: float, seed: int = 0) -> Path:
    """A dataset directory whose train split keeps ``fraction`` of the train source
    cells, each with its variants (a learning curve: is the number of cells the limit?).
    The cells are the first of one seeded permutation, so a smaller fraction's cells are
    part of every larger one's; val, test and ood are unchanged. ``out_dir`` gets
    report.json (the other train rows' split becomes ``unused``), manifest.json and a
    ``graphs`` link to ``data_dir``'s graphs."""
    from bgan_jax.runs.workdir import read_json

    if not 0 < fraction <= 1:
        raise ValueError(f"--train-cells {fraction}: a fraction in (0, 1]")
    src, out = Path(data_dir).resolve(), Path(out_dir)
    report = read_json(src / "report.json", ValueError)
    cells = sorted(r["name"] for r in report.get("cells") or [] if r.get("split") == "train")
    order = np.random.default_rng(seed).permutation(len(cells))
    kept = {cells[i] for i in order[:max(1, round(fraction * len(cells)))]}
    for row in (report.get("cells") or []) + (report.get("variants") or []):
        if row.get("split") == "train" and (row.get("variant_of") or row["name"]) not in kept:
            row["split"] = "unused"
    report["train_subset"] = {"from": str(src), "fraction": fraction, "seed": seed,
                              "cells": len(kept), "of": len(cells)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "manifest.json").write_text((src / "manifest.json").read_text())
    link = out / "graphs"
    if link.is_symlink():  # from an earlier call, perhaps with another --data
        link.unlink()
    link.symlink_to(src / "graphs", target_is_directory=True)
    return out


def run_tabular(data_dir, task_name: str, seed: int) -> Dict:
    from bgan_jax.bgan import data as data_lib
    from bgan_jax.bgan import tabular

    t0 = time.time()
    task = data_lib.task_of(task_name)
    splits = data_lib.load_splits(data_dir, task_name)
    splits.update(held_out_parts(data_dir, splits))
    metric = "balanced_accuracy" if task.kind == "classification" else "r2"
    return {"task": task_name, "variant": "gbm", "seed": seed, "metric": metric, "steps": None,
            "seconds": time.time() - t0, "best_step": None,
            "splits": tabular.fit_predict(task, splits["train"], splits, seed)}


def score_parts(workdir: Path, parts: Dict[str, List], train: List, task_name: str) -> Dict:
    """A finished neural run's best checkpoint scored on ``held_out_parts`` (the same
    metric code and target scale, from ``train``, as its own evaluation)."""
    import optax
    from flax.training.train_state import TrainState

    from bgan_jax.bgan import data as data_lib
    from bgan_jax.bgan.train import evaluate, load_run, make_eval_step

    task = data_lib.task_of(task_name)
    run = load_run(workdir)
    state = TrainState.create(apply_fn=run.model.apply, params=run.params, tx=optax.identity())
    scale = data_lib.target_scale(train, task)
    step = make_eval_step(task)
    return {name: evaluate(step, state, exs, run.config, task, scale)
            for name, exs in parts.items()}


def with_parts(rows: List[Dict], out: Path, data_dir) -> List[Dict]:
    """Every finished neural row with its ``held_out_parts`` scores (computed once, kept
    in ``OUT/results.json``); a run that cannot be scored is named and left as it is."""
    from bgan_jax.bgan import data as data_lib

    todo = [r for r in rows if "error" not in r and r["variant"] != "gbm"
            and any(p not in r["splits"] for p in PARTS)]
    changed = False
    for task_name in sorted({r["task"] for r in todo}):
        splits = data_lib.load_splits(data_dir, task_name, ("train", "test"))
        parts = held_out_parts(data_dir, splits)
        for r in (r for r in todo if r["task"] == task_name and parts):
            workdir = run_dir(out, task_name, r["variant"], r["seed"])
            try:
                r["splits"].update(score_parts(workdir, parts, splits["train"], task_name))
                changed = True
            except Exception as e:  # noqa: BLE001 - this run's outcome; the others go on
                print(f"{workdir}: not scored on {', '.join(PARTS)}: {e}", file=sys.stderr)
    if changed:
        (out / "results.json").write_text(json.dumps(rows, indent=1))
    return rows


def per_target_table(rows: Sequence[Dict]) -> str:
    """efeatures: mean +- std over seeds of each target's R^2 on the test split, its
    ``PARTS`` (when the dataset has variants) and the ood split."""
    from bgan_jax.runs.tables import mean_std_table
    from bnnsim.ephys.targets import TARGET_NAMES

    rows = [r for r in rows if r["task"] == "efeatures" and "error" not in r]
    if not rows:
        return ""
    lines = []
    for split in ("test", *PARTS, "ood"):
        if not any(r["splits"].get(split, {}).get("count") for r in rows):
            continue
        lines += [f"### efeatures R^2 per target ({split} split)", ""]
        lines += mean_std_table(rows, "variant", {
            name: (lambda r, n=name, s=split: r["splits"].get(s, {}).get(f"r2/{n}"))
            for name in TARGET_NAMES})
        lines.append("")
    return "\n".join(lines)


def readout_markdown(rows: Sequence[Dict], skipped: Sequence[Dict] = ()) -> str:
    """readout.md: the summary per target, one line per scored (cell, target), then
    every cell that could not be scored and why."""
    from bgan_jax.bgan.groundtruth import summary

    nan = float("nan")
    lines = ["| target | cells scored | median Spearman: IG / doubling | top pair agrees: IG / "
             "doubling | IG vs doubling | within-cell r |", "|---|---|---|---|---|---|"]
    for t, s in summary(rows).items():
        lines.append(f"| {t} | {s['scored']}/{s['cells']} | {s['median_spearman']:.3f} / "
                     f"{s.get('perturbation_median_spearman', nan):.3f} | {s['top_match']:.2f} / "
                     f"{s.get('perturbation_top_match', nan):.2f} | "
                     f"{s.get('ig_vs_doubling_median_spearman', nan):.3f} | "
                     f"{s['within_cell_r']:.3f} |")
    lines += ["", "(IG: integrated gradients of each variant against its source cell; doubling: "
              "the model's change when one (segment group, species) density of the source "
              "cell is doubled; IG vs doubling: median Spearman of the two read-outs with each "
              "other; within-cell r: correlation over the variants of the model's output "
              "change from the source cell and the measured change of the target.)"]
    lines += ["", "| cell | target | Spearman: IG / doubling | top: IG / doubling / measured "
              "| pairs |", "|---|---|---|---|---|"]
    for r in rows:
        top_m = _top(r["pair_names"], r["model"])[0]
        top_s = _top(r["pair_names"], r["measured"])[0]
        top_d = _top(r["pair_names"], r["perturbation"])[0] if "perturbation" in r else "-"
        rho_d = r.get("perturbation_score", {}).get("spearman", nan)
        lines.append(f"| {r['cell']} | {r['target']} | {r['spearman']:.3f} / {rho_d:.3f} | "
                     f"{top_m} / {top_d} / {top_s} | {r['pairs']} |")
    if skipped:
        lines += ["", "Not scored:", ""] + [f"* {r['cell']} ({r['target']}): {r['skipped']}"
                                           for r in skipped]
    return "\n".join(lines) + "\n"


def _top(names, values):
    i = max(range(len(values)), key=values.__getitem__)
    return names[i], values[i] / max(sum(values), 1e-12)


def readout_report(rows: Sequence[Dict]) -> str:
    """report.md: per scored cell, in words, what the model attributes each target to and
    what the simulator measured, and where they disagree."""
    from bgan_jax.bgan.groundtruth import summary

    lines = ["# Read-out against the simulator", ""]
    for t, s in summary(rows).items():
        doubling = (f" (doubling read-out: {s['perturbation_median_spearman']:.2f}, top "
                    f"pair {100 * s['perturbation_top_match']:.0f} %)"
                    if "perturbation_median_spearman" in s else "")
        lines.append(f"* **{t}**: {s['scored']} of {s['cells']} cells scored, median "
                     f"Spearman {s['median_spearman']:.2f}, top pair agrees in "
                     f"{100 * s['top_match']:.0f} %{doubling}; the model's predicted change of a "
                     f"variant from its source cell correlates with the measured one at "
                     f"r = {s['within_cell_r']:.2f}.")
    lines.append("")
    for r in rows:
        m_name, m_share = _top(r["pair_names"], r["model"])
        s_name, s_share = _top(r["pair_names"], r["measured"])
        etype = (r.get("labels") or {}).get("etype_name") or "?"
        verdict = ("agree on the top pair" if r["top_match"] else
                   f"disagree: the model's top pair is the simulator's "
                   f"#{1 + sorted(r['measured'], reverse=True).index(r['measured'][r['pair_names'].index(m_name)])}")
        lines.append(
            f"* **{r['cell']}** ({etype}), {r['target']}: the model puts {100 * m_share:.0f} % "
            f"of its channel attribution on {m_name}; the simulator's largest effect is "
            f"{s_name} ({100 * s_share:.0f} % of the summed |slope|, "
            f"{max(r['measured']):.3f} per doubling). Spearman {r['spearman']:.2f} over "
            f"{r['pairs']} (segment group, species) pairs; they {verdict}. "
            + (f"Doubling each density of the source cell, the model moves most for "
               f"{_top(r['pair_names'], r['perturbation'])[0]} (Spearman "
               f"{r['perturbation_score']['spearman']:.2f} with the simulator). "
               if "perturbation" in r else "") +
            f"Figure: figures/{r['cell']}__{r['target']}.png")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.cells",
                                description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="real-cell dataset directory")
    p.add_argument("--readout-data", help="real-cell dataset with many variants per cell: "
                   "score the seed's BGAN efeatures run against its measured sensitivities")
    p.add_argument("--out", default="runs/cells")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--tasks", nargs="+", default=list(CELL_TASKS), choices=list(CELL_TASKS))
    p.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                   choices=list(VARIANTS) + ["gbm"])
    p.add_argument("--readout-steps", type=int, default=16, help="integrated-gradient steps")
    p.add_argument("--cache", help="persistent XLA compilation cache directory (seeds of one "
                   "variant share compilations)")
    p.add_argument("--train-cells", type=float, default=1.0, metavar="F",
                   help="train on this fraction of the train split's source cells, each with "
                   "its variants (OUT/data: see train_subset); val and test unchanged")
    add_set_argument(p)
    args = p.parse_args(argv)
    if set(args.variants) - {"gbm"}:  # gbm takes no TrainConfig
        check_overrides(args.tasks, args.set)
    use_compilation_cache(args.cache)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.train_cells < 1:
        args.data = str(train_subset(args.data, out / "data", args.train_cells))
    run = (lambda task, variant, seed: run_tabular(args.data, task, seed) if variant == "gbm"
           else run_one(args.data, out, task, variant, seed, args.steps,
                        balanced=task in CLASSIFICATION, overrides=args.set))
    rows = with_parts(run_grid(out, args.tasks, args.variants, args.seeds, run), out, args.data)
    (out / "results.md").write_text(markdown(rows) + "\n" + per_target_table(rows))
    print((out / "results.md").read_text())
    if args.readout_data:
        readout_run(run_dir(out, "efeatures", "bgan", args.seeds[0]), args.readout_data, out,
                    args.readout_steps)
    return 0


def readout_run(workdir: Path, data_dir, out: Path, steps: int) -> List[Dict]:
    from bgan_jax.bgan import groundtruth
    from bgan_jax.bgan.train import load_run
    from experiments.cell_figures import readout_figure

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    skipped: List[Dict] = []
    rows = groundtruth.readout(load_run(workdir), data_dir, steps=steps, skipped=skipped)
    (out / "readout.json").write_text(json.dumps(
        {"run": str(workdir), "data": str(data_dir), "seconds": time.time() - t0,
         "summary": groundtruth.summary(rows), "cells": rows, "skipped": skipped}, indent=1))
    (out / "readout.md").write_text(readout_markdown(rows, skipped))
    (out / "report.md").write_text(readout_report(rows))
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    for r in rows:
        readout_figure(r, Path(data_dir), figs / f"{r['cell']}__{r['target']}.png")
    print((out / "readout.md").read_text())
    return rows


if __name__ == "__main__":
    from bgan_jax.runtime.allocator import tune
    tune()  # glibc malloc for XLA on CPU (restarts once for huge pages)
    raise SystemExit(main())
