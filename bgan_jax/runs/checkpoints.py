"""Orbax checkpoints of a run: ``checkpoints/`` keeps the latest N, ``best/`` the best one.

Every model saves a pytree of host numpy arrays (``jax.device_get`` of what it
needs to go on: parameters, optimiser state, step), so the same files serve one
device, pmap and several processes. Under ``jax.distributed`` every process calls
``save`` (orbax synchronises them and the primary process writes), so a step is
written once. ``restore_latest`` tries the newest checkpoint first and falls
back to older intact ones, saying in one line which one it could not read.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """No checkpoint of the run can be restored (each one tried is named)."""


@contextlib.contextmanager
def _quiet():
    """Orbax logs (absl) every file it cannot parse; a damaged checkpoint is reported
    here in one line instead."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _manager(directory: Path, keep: int, metric: Optional[str] = None
             ) -> ocp.CheckpointManager:
    best = ({} if metric is None else
            dict(best_fn=lambda m: m[metric], best_mode="max",
                 keep_checkpoints_without_metrics=False))
    try:
        with _quiet():
            return ocp.CheckpointManager(
                directory.absolute(),
                options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                     enable_async_checkpointing=False, **best))
    except Exception as err:  # a damaged metrics/metadata file of a saved step
        raise CheckpointError(f"{directory} cannot be read ({_reason(err)}); move it away "
                              "to go on without it") from None


def abstract_of(tree) -> Any:
    """The shape/dtype skeleton orbax restores into (jax arrays keep their sharding)."""
    def leaf(x):
        if isinstance(x, jax.Array):
            return ocp.utils.to_shape_dtype_struct(x)
        return jax.ShapeDtypeStruct(np.shape(x), np.result_type(x))

    return jax.tree.map(leaf, tree)


class Checkpoints:
    """The latest and best checkpoints of one workdir; ``metric`` (larger is better)
    ranks ``best/``, which keeps one checkpoint (on a tie, the later step)."""

    def __init__(self, workdir, keep: int, metric: Optional[str] = None):
        workdir = Path(workdir)
        self.latest_dir, self.best_dir = workdir / "checkpoints", workdir / "best"
        self.latest = _manager(self.latest_dir, keep)
        self.metric = metric
        self._best: Optional[ocp.CheckpointManager] = None

    @property
    def best(self) -> ocp.CheckpointManager:
        if self._best is None:  # created on first use: runs without validation have none
            self._best = _manager(self.best_dir, 1, self.metric or "value")
        return self._best

    def latest_step(self) -> Optional[int]:
        return self.latest.latest_step()

    def best_step(self) -> Optional[int]:
        if self._best is None and not self.best_dir.is_dir():
            return None
        return self.best.best_step()

    def save(self, step: int, tree) -> None:
        self.latest.save(step, args=ocp.args.StandardSave(jax.device_get(tree)))

    def save_best(self, step: int, tree, value: float) -> None:
        """Offer a checkpoint with its validation value; ``best/`` keeps the best one."""
        self.best.save(step, args=ocp.args.StandardSave(jax.device_get(tree)),
                       metrics={self.metric or "value": float(value)})

    def restore_latest(self, like, warn: Callable[[str], None] = None,
                       discard_damaged: bool = False) -> Tuple[int, Any]:
        """(step, tree) of the newest checkpoint that restores into ``like``'s structure;
        a damaged one is named (``warn``, default stderr) and the next older one tried.
        ``discard_damaged`` (resuming) deletes the damaged newer ones, which the resumed
        run will write again."""
        step, tree = _restore_newest(self.latest, self.latest_dir, like, warn)
        if discard_damaged:
            for newer in [s for s in self.latest.all_steps() if s > step]:
                self.latest.delete(newer)
        return step, tree

    def rewind(self, step: int) -> None:
        """Delete the checkpoints of steps after ``step`` (latest and best)."""
        for manager in (self.latest, self.best if self.best_step() is not None else None):
            for later in [s for s in (manager.all_steps() if manager else ()) if s > step]:
                manager.delete(later)

    def restore_best(self, like) -> Tuple[int, Any]:
        """(step, tree) of the best checkpoint, or of the latest where none is kept as best."""
        step = self.best_step()
        if step is not None:
            return _restore_one(self.best, self.best_dir, step, like)
        return self.restore_latest(like)


def _restore_one(manager, directory: Path, step: int, like):
    try:
        with _quiet():
            return step, manager.restore(step, args=ocp.args.StandardRestore(abstract_of(like)))
    except Exception as err:  # orbax/tensorstore raise many types for damaged files
        raise CheckpointError(f"{directory / str(step)} cannot be restored ({_reason(err)})"
                              ) from None


def _reason(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def _restore_newest(manager, directory: Path, like, warn):
    warn = warn or (lambda msg: print(msg, file=sys.stderr, flush=True))
    steps = sorted(manager.all_steps(), reverse=True)
    if not steps:
        raise CheckpointError(f"{directory}: no checkpoint")
    failed = []
    for step in steps:
        try:
            return _restore_one(manager, directory, step, like)
        except CheckpointError as err:
            failed.append(str(err))
            if step != steps[-1]:
                warn(f"{err}; trying the next older checkpoint")
    raise CheckpointError("no checkpoint can be restored: " + "; ".join(failed))
