"""The shared loop: metrics cadence, the finite flag, checkpoints, the results table."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from bgan_jax.runs.checkpoints import Checkpoints
from bgan_jax.runs.config import LoopConfig
from bgan_jax.runs.loop import TrainingDiverged, train_loop
from bgan_jax.runs.tables import mean_std, mean_std_table


def counting_step(bad_at=None):
    def step(state, batch):
        x = state["x"] + batch
        loss = jnp.where(x == bad_at, jnp.nan, x) if bad_at is not None else x
        return {"x": x}, {"loss": loss, "finite": jnp.isfinite(loss)}
    return step


def run(tmp_path, step_fn, **cfg):
    config = LoopConfig(**{"num_steps": 10, "log_every": 4, "eval_every": 5,
                           "checkpoint_every": 3, **cfg})
    ckpts = Checkpoints(tmp_path, config.keep_checkpoints, "score")
    result = train_loop({"x": jnp.float32(0)}, step_fn, iter(np.ones(100, np.float32)),
                        config=config, start=0, checkpoints=ckpts, savable=lambda s: s,
                        metrics_path=tmp_path / "metrics.jsonl",
                        evaluate=lambda s: {"score": -abs(float(s["x"]) - 5.0)},
                        select="score", progress=False)
    return result, ckpts


def test_cadence_of_logs_evals_and_checkpoints(tmp_path):
    result, ckpts = run(tmp_path, counting_step())
    assert result.step == 10 and float(result.state["x"]) == 10.0
    log = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [4, 8, 10]
    assert [e["step"] for e in log if e.get("split") == "val"] == [5, 10]
    assert result.best_step == 5 and sorted(ckpts.latest.all_steps()) == [6, 9, 10]


def test_a_non_finite_step_stops_the_run_naming_it_before_it_is_saved(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"step 7: loss or gradient norm is not finite"
                                               r".*Last good checkpoint: step 6"):
        run(tmp_path, counting_step(bad_at=7.0))


def test_table_writer():
    assert mean_std([0.5, 0.7, None, float("nan")]) == "0.600 +- 0.100"
    assert mean_std([]) == "-"
    rows = [{"m": "a", "v": 1.0}, {"m": "a", "v": 3.0}, {"m": "b", "v": None}]
    assert mean_std_table(rows, "m", {"v": lambda r: r["v"]}) == [
        "| m | v |", "|---|---|", "| a | 2.000 +- 1.000 |", "| b | - |"]
