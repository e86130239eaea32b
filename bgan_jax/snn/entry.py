"""The ``snn`` kind: a spiking network (STBP) on the bundled 8x8 digits (registry entry)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional

from bgan_jax.runs.kind import Kind


def _config_class():
    from bgan_jax.snn.train import SNNTrainConfig

    return SNNTrainConfig


def _make_config(model: str, task: Optional[str]):
    from bgan_jax.snn.train import SNNTrainConfig

    return SNNTrainConfig()


def _train(config, data: Optional[str], workdir: Path, resume: bool, progress: bool) -> List[str]:
    from bgan_jax.snn.train import train_snn

    print(f"workdir {workdir}\nmodel snn, spike scaling "
          f"{'on' if config.spike_scaling else 'off'}", flush=True)
    t = train_snn(config, workdir, resume=resume, progress=progress)
    return [f"best step {t['best_step']} (val accuracy {t['val_accuracy']:.3f})",
            f"test accuracy     {t['test_accuracy']:.3f}",
            f"spikes per sample {t['spikes_per_sample']:.1f}", f"saved {workdir / 'eval.json'}"]


def _analyze(workdir: Path, args: argparse.Namespace) -> List[str]:
    """Accuracy and spikes per sample of the best checkpoint on each split, per layer."""
    from bgan_jax.snn.report import analyze_snn

    out = Path(args.out) if args.out else workdir / "analysis"
    s = analyze_snn(workdir, out)
    return [f"snn (step {s['step']}): " + ", ".join(
        f"{split} accuracy {m['accuracy']:.3f}" for split, m in s["splits"].items())
        + f"; report {out / 'report.md'}"]


def _errors():
    from bgan_jax.runs.checkpoints import CheckpointError
    from bgan_jax.runs.loop import TrainingDiverged

    return (CheckpointError, TrainingDiverged, FileExistsError)


ENTRY = Kind(
    name="snn", models=("snn",),
    description="a spiking network (STBP, optional spike-timing gradient scaling) on the "
                "bundled 8x8 digits",
    config_class=_config_class, make_config=_make_config, train=_train, analyze=_analyze,
    errors=_errors, accepts=frozenset())
