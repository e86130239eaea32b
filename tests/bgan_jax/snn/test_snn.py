"""Spiking networks: surrogate spikes, spike-timing gradient scaling, training, CLI."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import train
from tests.conftest import REPO
from tests.processes import kill_at_first_checkpoint, latest_checkpoint
from bgan_jax.snn import model as S
from bgan_jax.snn import train as snn_train


@pytest.mark.parametrize("surrogate", S.SURROGATES)
def test_spike_is_heaviside_with_the_documented_surrogate_gradient(surrogate):
    spike = S.make_spike(surrogate, 1.0)
    x = jnp.array([-1.0, -0.3, 0.0, 0.2, 0.7])
    np.testing.assert_array_equal(spike(x), [0, 0, 1, 1, 1])
    grad = jax.vmap(jax.grad(spike))(x)
    if surrogate == "rectangular":
        want = (np.abs(np.asarray(x)) < 0.5).astype(np.float32)
    else:
        s = 1 / (1 + np.exp(-4 * np.asarray(x)))
        want = 4 * s * (1 - s)
    np.testing.assert_allclose(grad, want, rtol=1e-6)


def train_of(times, steps=4):
    out = np.zeros((steps, 1, 1), np.float32)
    out[list(times), 0, 0] = 1
    return jnp.asarray(out)


@pytest.mark.parametrize("pre,post,factor", [
    ((0,), (1,), 1.5),  # pre before post: causal
    ((1,), (1,), 1.5),  # same step: the presynaptic input drove it
    ((2,), (0,), 0.5),  # post before pre: anti-causal
    ((), (1,), 1.0),  # no presynaptic activity: unscaled
])
def test_timing_scale_follows_causality(pre, post, factor):
    got = S.timing_scale(train_of(pre), train_of(post), alpha=0.5, lam=0.5)
    np.testing.assert_allclose(got, [[factor]])


def test_scaling_touches_only_dense_spiking_kernels():
    cfg = S.SNNConfig(hidden=(16, 8), conv=(4,))
    model = S.create_snn(cfg)
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(3, 8, 8)), jnp.float32)
    params = model.init(jax.random.key(0), x)
    logits, rec = model.apply(params, x)
    assert logits.shape == (3, 10)
    assert [p.shape for p in rec.pre] == [(cfg.steps, 3, 256), (cfg.steps, 3, 16)]
    scale = S.spike_scale_tree(params, rec, cfg)
    inner = scale["params"]["step"]
    assert inner["dense0"]["kernel"].shape == (256, 16)
    for name in ("conv0", "readout"):
        assert all(np.all(np.asarray(v) == 1) for v in jax.tree.leaves(inner[name]))
    assert np.all(np.asarray(inner["dense1"]["bias"]) == 1)
    opt = S.scale_by_spike_timing()
    grads = jax.tree.map(jnp.ones_like, params)
    same, _ = opt.update(grads, opt.init(params), params)
    assert all(np.all(np.asarray(g) == 1) for g in jax.tree.leaves(same))
    scaled, _ = opt.update(grads, opt.init(params), params, spike_scale=scale)
    np.testing.assert_allclose(scaled["params"]["step"]["dense0"]["kernel"], inner["dense0"]["kernel"])
    total = sum(np.asarray(o).sum() for o in rec.post + rec.conv)
    np.testing.assert_allclose(np.asarray(S.spike_counts(rec)).sum(), total)


def test_rate_encoding_needs_a_key_and_bad_configs_are_refused():
    model = S.create_snn(S.SNNConfig(encoding="rate"))
    x = jnp.full((2, 8, 8), 0.5)
    with pytest.raises(ValueError, match="pass a key"):
        model.init(jax.random.key(0), x)
    params = model.init(jax.random.key(0), x, jax.random.key(1))
    a, _ = model.apply(params, x, jax.random.key(2))
    assert np.isfinite(a).all()
    for bad in (dict(surrogate="box"), dict(encoding="latency"), dict(hidden=()),
                dict(decay=1.0)):
        with pytest.raises(ValueError):
            S.SNNConfig(**bad)


@pytest.mark.parametrize("scaling", [False, True])
def test_fast_snn_learns_the_digits(tmp_path, scaling):
    cfg = snn_train.SNNTrainConfig(spike_scaling=scaling, num_steps=6 * snn_train.STEPS_PER_EPOCH)
    table = snn_train.train_snn(cfg, tmp_path / "run", progress=False)
    assert table["test_accuracy"] > 0.85
    assert table["spikes_per_sample"] > 0
    log = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [e["step"] for e in log if e.get("split") == "val"]
    assert val == [snn_train.STEPS_PER_EPOCH * e for e in range(1, 7)]  # once an epoch


def test_train_py_snn(tmp_path, capsys):
    work = tmp_path / "w"
    args = ["--model", "snn", "--workdir", str(work), "--no-progress", "--set", "num_steps=20",
            "--set", "model.hidden=[32]"]
    assert train.main(args) == 0
    assert "spikes per sample" in capsys.readouterr().out
    assert json.loads((work / "config.json").read_text())["model"]["hidden"] == [32]
    assert train.main(args) == 1  # never overwrites a trained run without --resume
    assert train.main(args + ["--data", "x"]) == 2
    assert train.main(["--model", "snn", "--set", "scaling_alpha=2"]) == 2


@pytest.mark.slow
def test_snn_comparison_reaches_ninety_percent(tmp_path):
    """The RESULTS.md setup: dense and conv SNNs, scaling off/on, 3 seeds, 30 epochs."""
    from experiments.snn import compare

    rows = compare(tmp_path)
    assert len(rows) == 12
    assert all(r["test_accuracy"] >= 0.9 for r in rows)


def _snn_cmd(workdir, *extra):
    return [sys.executable, str(REPO / "train.py"), "--model", "snn", "--workdir", str(workdir),
            "--no-progress", "--set", "model.hidden=[32]", "--set", "num_steps=400",
            "--set", "checkpoint_every=10", "--set", "keep_checkpoints=50", *extra]


def test_snn_resume_after_sigkill_is_bit_identical(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    full, killed = tmp_path / "full", tmp_path / "killed"
    out = subprocess.run(_snn_cmd(full), capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    steps = kill_at_first_checkpoint(_snn_cmd(killed), killed, env)
    assert steps and max(steps) < 400, steps  # really interrupted mid-run
    again = subprocess.run(_snn_cmd(killed, "--resume"), capture_output=True, text=True,
                           env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    (a, step_a), (b, step_b) = latest_checkpoint(full), latest_checkpoint(killed)
    assert step_a == step_b == 400
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    evals = [json.loads((d / "eval.json").read_text()) for d in (full, killed)]
    assert evals[0] == evals[1]


def test_analyze_py_on_an_snn_run(tmp_path, capsys):
    import analyze
    work = tmp_path / "w"
    assert train.main(["--model", "snn", "--workdir", str(work), "--no-progress",
                       "--set", "num_steps=40", "--set", "model.hidden=[32]"]) == 0
    capsys.readouterr()
    assert analyze.main(["--workdir", str(work), "--out", str(tmp_path / "a")]) == 0
    assert "test accuracy" in capsys.readouterr().out
    summary = json.loads((tmp_path / "a" / "analysis.json").read_text())
    saved = json.loads((work / "eval.json").read_text())
    assert summary["step"] == saved["best_step"]
    assert abs(summary["splits"]["test"]["accuracy"] - saved["test_accuracy"]) < 1e-6
    assert (tmp_path / "a" / "figures" / "confusion.png").is_file()
    assert analyze.main(["--workdir", str(work), "--nml", "x.nml"]) == 2  # not for SNN runs
    assert "does not apply" in capsys.readouterr().err
