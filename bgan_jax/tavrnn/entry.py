"""The ``tavrnn`` kind: TAVRNN, VGRNN and VGAE on one spike recording (registry entry)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional

from bgan_jax.runs.kind import Kind
from bgan_jax.tavrnn.model import VARIANTS


def _config_class():
    from bgan_jax.tavrnn.train import TemporalConfig

    return TemporalConfig


def _make_config(model: str, task: Optional[str]):
    from bgan_jax.tavrnn.model import TAVRNNConfig
    from bgan_jax.tavrnn.train import TemporalConfig

    return TemporalConfig(model=TAVRNNConfig(variant=model))


def _train(config, data: Optional[str], workdir: Path, resume: bool, progress: bool) -> List[str]:
    from bgan_jax.tavrnn.train import format_table, train_temporal

    if data:
        recording = Path(data)
    else:
        from bnnsim.population import default_population
        recording = default_population()
    print(f"data {recording}\nworkdir {workdir}\nmodel {config.model.variant}", flush=True)
    table = train_temporal(config, recording, workdir, resume=resume, progress=progress)
    return [f"{table['variant']}: {table['neurons']} neurons, {table['windows']} windows, "
            f"{table['steps']} steps", format_table(table), f"saved {workdir / 'eval.json'}"]


def _analyze(workdir: Path, args: argparse.Namespace) -> List[str]:
    from bgan_jax.tavrnn.report import analyze_temporal

    out = Path(args.out) if args.out else workdir / "analysis"
    s = analyze_temporal(workdir, out, args.data)
    return [f"{s['variant']}: {s['windows']} windows; " + ", ".join(
        f"{k} {v:.3f}" for k, v in s["metrics"].items()) + f"; report {out / 'report.md'}"]


def _errors():
    from bgan_jax.runs.checkpoints import CheckpointError
    from bgan_jax.runs.loop import TrainingDiverged
    from bgan_jax.tavrnn.spikes import SpikeDataError

    return (SpikeDataError, CheckpointError, TrainingDiverged, FileExistsError)


ENTRY = Kind(
    name="tavrnn", models=VARIANTS,
    description="TAVRNN / VGRNN / VGAE embedding the functional graphs of a spike recording",
    config_class=_config_class, make_config=_make_config, train=_train, analyze=_analyze,
    errors=_errors, accepts=frozenset({"data"}),
    data_help="a spike file (.csv time_ms,neuron; .npz; LEMS .spikes); default: the simulated "
              "community recording")
