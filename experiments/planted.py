"""Does the read-out find planted truth? Build, train and analyse each planted case.

    python -m experiments.planted --out runs/planted            # all cases (RESULTS.md)
    python -m experiments.planted --out /tmp/p --cases input_rate --networks 60 --steps 150

Per case of ``bnnsim.planted.CASES``: a dataset of ``--networks`` networks, BGAN
trained on task ``planted`` with the default config for ``--steps`` steps (best
checkpoint by validation accuracy), then ``analysis.analyze_all`` on the test split.
Scores per case: test accuracy, the fraction of test models whose planted (node
kind, feature group) ranks first by attribution share, and the AUROC of the planted
components against all other nodes (by attribution and by attention received).
Writes ``planted.json`` and ``planted.md`` (the RESULTS.md table) under ``--out``,
and each case's analysis (``CASE/analysis/report.md`` and the rest) beside its run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

from bgan_jax.bgan import analysis as A
from bgan_jax.bgan import data as data_lib
from bgan_jax.bgan.report import write_all
from bgan_jax.bgan.train import TrainConfig, load_run, train_and_evaluate
from bgan_jax.runs.tables import markdown_table
from bnnsim.planted import CASES, build_planted

RANKED_FIRST_TARGET = 0.9
AUROC_TARGET = 0.9


def run_case(case: str, out: Path, networks: int, steps: int, seed: int = 0,
             progress: bool = False, config: Optional[TrainConfig] = None) -> Dict:
    """Dataset -> training -> analysis of one case; returns its scores."""
    data_dir, workdir = out / case / "data", out / case / "run"
    if not (data_dir / "report.json").is_file():
        build_planted(data_dir, case, n=networks, seed=seed, progress=progress)
    config = dataclasses.replace(config or TrainConfig(), task="planted", num_steps=steps,
                                 seed=seed, eval_every=max(steps // 6, 1),
                                 checkpoint_every=steps)
    if not (workdir / "eval.json").is_file():
        train_and_evaluate(config, data_dir, workdir, resume=workdir.exists(), progress=progress)
    table = json.loads((workdir / "eval.json").read_text())
    run = load_run(workdir)
    splits = data_lib.load_splits(data_dir, "planted", ("train", "test"))
    analyses, outcomes = A.analyze_all(run, [(e.name, e.cg) for e in splits["test"]],
                                       [e.cg for e in splits["train"]], progress=progress)
    summary = write_all(analyses, out / case / "analysis",
                        {"workdir": str(workdir), "task": "planted", "model": "bgan",
                         "step": run.step, "ig_steps": 32}, outcomes)
    scores = summary["planted"]
    kind, group = CASES[case].kind.name.lower(), CASES[case].group
    return {"case": case, "kind": kind, "group": group, "column": CASES[case].column,
            "networks": networks, "steps": steps, "seed": seed,
            "test_accuracy": table["splits"]["test"]["accuracy"],
            **{k: scores[k] for k in ("n", "ranked_first", "planted_share",
                                      "auroc_attribution", "auroc_attention")},
            "models": scores["models"]}


def passed(row: Dict) -> bool:
    return row["ranked_first"] >= RANKED_FIRST_TARGET and row["auroc_attribution"] >= AUROC_TARGET


def markdown(rows: Sequence[Dict]) -> str:
    return "\n".join(markdown_table(
        ["case", "planted (kind / group / column)", "test acc", "test models", "ranked first",
         "planted share", "AUROC attribution", "AUROC attention"],
        [[r["case"], f"{r['kind']} / {r['group']} / {r['column']}", f"{r['test_accuracy']:.3f}",
          r["n"], f"{r['ranked_first']:.2f}", f"{r['planted_share']:.2f}",
          f"{r['auroc_attribution']:.3f}", f"{r['auroc_attention']:.3f}"] for r in rows]))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory (datasets, runs, tables)")
    p.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    p.add_argument("--networks", type=int, default=160, help="networks per case (default 160)")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    rows = []
    for case in args.cases:
        rows.append(run_case(case, out, args.networks, args.steps, args.seed, progress=True))
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    (out / "planted.json").write_text(json.dumps(rows, indent=1))
    (out / "planted.md").write_text(markdown(rows) + "\n")
    print(markdown(rows))
    failed = [r["case"] for r in rows if not passed(r)]
    print(f"targets (ranked first >= {RANKED_FIRST_TARGET}, AUROC >= {AUROC_TARGET}): "
          + ("met in every case" if not failed else f"missed in {', '.join(failed)}"))
    return 0


if __name__ == "__main__":
    from bgan_jax.runtime.allocator import tune
    tune()  # glibc malloc for XLA on CPU (restarts once for huge pages)
    sys.exit(main())
