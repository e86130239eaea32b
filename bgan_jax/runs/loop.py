"""The one training loop every model runs: steps, finite check, metrics, eval, checkpoints.

A model hands it a pure ``step_fn(state, batch) -> (state, stats)`` whose
``stats["finite"]`` says whether the step's loss and gradients were finite, an
iterator of batches from the start step on, and what to save. The flag stays
on the device and is read only at log, eval and checkpoint points (no host
sync per step); a non-finite step stops the run naming it, before anything
from it is evaluated or saved, so the last checkpoint is the last good one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from bgan_jax.runs.checkpoints import Checkpoints
from bgan_jax.runs.config import LoopConfig
from bgan_jax.runs.distributed import is_primary
from bgan_jax.runs.workdir import refuse_overwrite, write_run_files


class TrainingDiverged(RuntimeError):
    """Loss or gradients became NaN/Inf; the last good checkpoint is kept."""


def log_jsonl(path: Path, entry: Dict) -> None:
    """Append one JSON line (metrics.jsonl), on process 0 only."""
    if is_primary():
        with Path(path).open("a") as f:
            f.write(json.dumps(entry) + "\n")


def rewind_metrics(path: Path, step: int) -> None:
    """Drop the metrics.jsonl lines of steps after ``step`` (they will be run again)."""
    path = Path(path)
    if not is_primary() or not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


def open_run(workdir, kind: str, config, data, checkpoints: Checkpoints, state,
             resume: bool):
    """(start step, state) of a run: refuses to overwrite a run without ``resume``,
    writes config.json / data.json, and on resume goes on from the newest intact
    checkpoint (a damaged newer one is named and dropped, and so are the best
    checkpoints and metrics lines of steps after it, which the run computes again)."""
    refuse_overwrite(workdir, checkpoints.latest_step() is not None, resume)
    write_run_files(workdir, kind, config, data)
    if not resume or checkpoints.latest_step() is None:
        return 0, state
    step, state = checkpoints.restore_latest(state, discard_damaged=True)
    checkpoints.rewind(step)
    rewind_metrics(Path(workdir) / "metrics.jsonl", step)
    return step, state


class LoopResult(NamedTuple):
    state: Any
    step: int  # the last step run
    best_step: Optional[int]  # of the best checkpoint by validation (None: no validation)


def _floats(stats: Dict) -> Dict[str, float]:
    return {k: float(v) for k, v in stats.items() if k != "finite"}


def train_loop(state, step_fn: Callable, batches: Iterable, *, config: LoopConfig, start: int,
               checkpoints: Checkpoints, savable: Callable[[Any], Any], metrics_path: Path,
               evaluate: Optional[Callable[[Any], Dict[str, float]]] = None,
               select: Optional[str] = None,
               describe: Callable[[Dict], Dict[str, float]] = _floats,
               items: Optional[Callable[[Any], int]] = None, rate_name: str = "items_per_s",
               progress: bool = True, desc: str = "train") -> LoopResult:
    """Run steps ``start + 1 .. config.num_steps``. Every ``log_every`` steps: one metrics
    line (``describe(stats)``, throughput); every ``eval_every``: ``evaluate(state)`` into
    metrics.jsonl and, when it has ``select``, ``best/`` keeps the best (ties: the later
    step); every ``checkpoint_every`` and at the end: ``checkpoints/``."""
    bar = tqdm(total=config.num_steps, initial=start, desc=desc, unit="step",
               disable=not (progress and is_primary()))
    step, t0, seen = start, time.perf_counter(), 0
    flags: List[jax.Array] = []  # per step since the last check, still on the device

    def check():
        if not flags:
            return
        ok = np.asarray(jnp.stack(flags))
        if not ok.all():
            bad = step - len(flags) + 1 + int(np.argmin(ok))
            bar.close()
            last = checkpoints.latest_step()
            kept = (f"Last good checkpoint: step {last} in {checkpoints.latest_dir}"
                    if last is not None else "No checkpoint was written yet.")
            raise TrainingDiverged(f"step {bad}: loss or gradient norm is not finite; "
                                   f"stopped. {kept}")
        flags.clear()

    for batch in (batches if step < config.num_steps else ()):
        state, stats = step_fn(state, batch)
        step += 1
        flags.append(stats["finite"])
        if items is not None:
            seen += items(batch)
        bar.update(1)
        last = step == config.num_steps
        if step % config.log_every == 0 or last:
            check()
            entry = describe(stats)
            seconds = time.perf_counter() - t0
            if items is not None:
                entry[rate_name] = seen / max(seconds, 1e-9)
            bar.set_postfix({k: f"{v:.4g}" for k, v in entry.items()})
            log_jsonl(metrics_path, {"step": step, **entry, "seconds": seconds})
        if evaluate is not None and (step % config.eval_every == 0 or last):
            check()
            val = evaluate(state)
            log_jsonl(metrics_path, {"step": step, "split": "val", **val})
            if select is not None and select in val:
                checkpoints.save_best(step, savable(state), val[select])
        if step % config.checkpoint_every == 0 or last:
            check()
            checkpoints.save(step, savable(state))
        if last:
            break
    check()
    bar.close()
    return LoopResult(state, step, checkpoints.best_step() if select else None)
