"""Checkpoints: latest + best, and a damaged newest checkpoint falls back to an older one."""

import numpy as np
import pytest

from bgan_jax.runs.checkpoints import CheckpointError, Checkpoints
from tests.processes import damage_checkpoint


def tree(v: float):
    return {"w": np.full((3, 2), v, np.float32), "step": np.int32(v)}


def test_best_keeps_the_best_value_and_the_later_step_on_ties(tmp_path):
    c = Checkpoints(tmp_path, keep=2, metric="accuracy")
    for step, value in ((1, 0.5), (2, 0.7), (3, 0.6), (4, 0.7)):
        c.save(step, tree(step))
        c.save_best(step, tree(step), value)
    assert c.latest_step() == 4 and sorted(c.latest.all_steps()) == [3, 4]
    assert c.best_step() == 4
    step, got = c.restore_best(tree(0))
    assert step == 4 and np.all(got["w"] == 4)


def test_restore_latest_falls_back_to_the_newest_intact_checkpoint(tmp_path):
    c = Checkpoints(tmp_path, keep=3)
    for step in (1, 2, 3):
        c.save(step, tree(step))
    damage_checkpoint(tmp_path / "checkpoints" / "3")
    said = []
    step, got = c.restore_latest(tree(0), warn=said.append, discard_damaged=True)
    assert step == 2 and np.all(got["w"] == 2)
    assert len(said) == 1 and "checkpoints/3" in said[0] and "next older" in said[0]
    assert sorted(c.latest.all_steps()) == [1, 2]  # the damaged one is gone, the rest kept
    for step in (1, 2):
        damage_checkpoint(tmp_path / "checkpoints" / str(step))
    with pytest.raises(CheckpointError, match="no checkpoint can be restored"):
        Checkpoints(tmp_path, keep=3).restore_latest(tree(0), warn=said.append)


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Checkpoints(tmp_path, keep=1).restore_best(tree(0))
