"""Train BGAN (or a baseline) on a labelled CG dataset.

    python train.py                       # default dataset (built on first run), default config
    python train.py --task regime --set num_steps=200 --set model.num_blocks=2
    python train.py --workdir runs/a --resume
    python train.py --model tavrnn        # TAVRNN on the default simulated recording
    python train.py --model vgrnn --data spikes.csv --set num_steps=300

Multi-host: set JAX's usual variables (JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES, JAX_PROCESS_ID) and run the same command on every host;
``jax.distributed.initialize()`` is called when they are present.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence


def parse_value(text: str):
    """'true' / 'none' / JSON numbers and lists, else the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(value) if isinstance(value, list) else value


def apply_overrides(config, overrides: Sequence[str]):
    """``key=value`` overrides of any (nested, dot-separated) config field."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        config = _set(config, key.strip().split("."), parse_value(text), key)
    return config


def _set(obj, path: List[str], value, full_key: str):
    names = {f.name for f in dataclasses.fields(obj)}
    if path[0] not in names:
        raise ValueError(f"unknown config field {full_key!r}; fields here: {sorted(names)}")
    current = getattr(obj, path[0])
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"{full_key!r}: {path[0]} has no sub-fields")
        value = _set(current, path[1:], value, full_key)
    elif isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return dataclasses.replace(obj, **{path[0]: value})


def _config(make, overrides: Sequence[str]):
    """``make()`` with the ``--set`` overrides, or None after saying what is wrong."""
    try:
        return apply_overrides(make(), overrides)
    except (ValueError, TypeError) as err:
        print(f"train.py: bad config: {err}", file=sys.stderr)
        return None


def _workdir(args: argparse.Namespace) -> Path:
    return Path(args.workdir or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))


def _guarded(run, errors: tuple):
    """``run()``'s table, or None after printing the expected error (named file, step)."""
    try:
        return run()
    except errors as err:
        print(f"train.py: {err}", file=sys.stderr)
        return None


def process_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from bgan_jax.bgan.data import TASKS
    from bgan_jax.tavrnn.model import VARIANTS
    from bgan_jax.bgan.train import MODELS

    p = argparse.ArgumentParser(prog="python train.py", description=__doc__.split("\n")[0])
    p.add_argument("--workdir", help="run directory (default: runs/<timestamp>)")
    p.add_argument("--data", help="dataset directory (default: the embedded default dataset, "
                   "built on first use); for tavrnn/vgrnn/vgae a spike file (.csv time_ms,neuron; "
                   ".npz; LEMS .spikes), default: the simulated community recording")
    p.add_argument("--task", choices=sorted(TASKS), help="default: firing_pattern")
    p.add_argument("--model", choices=MODELS + VARIANTS + ("snn",), help="default: bgan; "
                   "tavrnn, vgrnn and vgae learn from spike trains; snn: a spiking network "
                   "(STBP) on the bundled 8x8 digits")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. num_steps=200 or model.num_blocks=2")
    p.add_argument("--resume", action="store_true", help="continue from the workdir's latest "
                   "checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = process_args(argv)
    import jax

    if "JAX_COORDINATOR_ADDRESS" in os.environ:
        jax.distributed.initialize()
    from bgan_jax.tavrnn.model import VARIANTS

    if args.model in VARIANTS:
        return train_temporal_main(args)
    if args.model == "snn":
        return train_snn_main(args)
    from bgan_jax.bgan import data as data_lib
    from bgan_jax.bgan.train import TrainConfig, TrainingDiverged, format_table, train_and_evaluate

    config = _config(lambda: TrainConfig(
        **{k: v for k, v in (("task", args.task), ("model_name", args.model)) if v}), args.set)
    if config is None:
        return 2
    workdir = _workdir(args)
    if args.data:
        data_dir = Path(args.data)
    else:
        from bnnsim.dataset import default_dataset
        data_dir = default_dataset(progress=not args.no_progress)
    print(f"data {data_dir}\nworkdir {workdir}\ndevices {jax.local_device_count()} x "
          f"{jax.devices()[0].platform}", flush=True)
    table = _guarded(lambda: train_and_evaluate(config, data_dir, workdir, resume=args.resume,
                                                progress=not args.no_progress),
                     (data_lib.DatasetError, FileExistsError, TrainingDiverged))
    if table is None:
        return 1
    print(f"task {config.task}, model {config.model_name}, best step {table['best_step']}, "
          f"{table['compilations']} compilations")
    print(format_table(table, data_lib.task_of(config.task)))
    print(f"saved {workdir / 'eval.json'}")
    return 0


def train_snn_main(args: argparse.Namespace) -> int:
    """A spiking network on the bundled digits, with or without spike-timing scaling."""
    from bgan_jax.snn.train import SNNTrainConfig, TrainingDiverged, train_snn

    if args.task or args.data or args.resume:
        print("train.py: --model snn trains on the bundled 8x8 digits; --task, --data and "
              "--resume do not apply", file=sys.stderr)
        return 2
    config = _config(SNNTrainConfig, args.set)
    if config is None:
        return 2
    workdir = _workdir(args)
    print(f"workdir {workdir}\nmodel snn, spike scaling {'on' if config.spike_scaling else 'off'}",
          flush=True)
    table = _guarded(lambda: train_snn(config, workdir, progress=not args.no_progress),
                     (FileExistsError, TrainingDiverged))
    if table is None:
        return 1
    print(f"best epoch {table['best_epoch']} (val accuracy {table['val_accuracy']:.3f})\n"
          f"test accuracy     {table['test_accuracy']:.3f}\n"
          f"spikes per sample {table['spikes_per_sample']:.1f}")
    print(f"saved {workdir / 'eval.json'}")
    return 0


def train_temporal_main(args: argparse.Namespace) -> int:
    """TAVRNN / VGRNN / VGAE on one spike recording."""
    from bgan_jax.tavrnn.model import TAVRNNConfig
    from bgan_jax.tavrnn.train import TemporalConfig, TrainingDiverged, format_table, train_temporal
    from bgan_jax.tavrnn.spikes import SpikeDataError

    if args.task:
        print("train.py: --task applies to bgan/mlp/transformer; TAVRNN learns links, "
              "communities and regimes of a recording", file=sys.stderr)
        return 2
    config = _config(lambda: TemporalConfig(model=TAVRNNConfig(variant=args.model)), args.set)
    if config is None:
        return 2
    workdir = _workdir(args)
    if args.data:
        data = Path(args.data)
    else:
        from bnnsim.population import default_population
        data = default_population()
    print(f"data {data}\nworkdir {workdir}\nmodel {config.model.variant}", flush=True)
    table = _guarded(lambda: train_temporal(config, data, workdir, resume=args.resume,
                                            progress=not args.no_progress),
                     (SpikeDataError, FileExistsError, TrainingDiverged))
    if table is None:
        return 1
    print(f"{table['variant']}: {table['neurons']} neurons, {table['windows']} windows, "
          f"{table['steps']} steps")
    print(format_table(table))
    print(f"saved {workdir / 'eval.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
