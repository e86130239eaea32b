"""Training: overrides, the pure step, pmap == single device, resume after SIGKILL, NaN stop."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from bgan_jax.bgan import data as data_lib
from bgan_jax.bgan.config import BGANConfig, preset
from bgan_jax.bgan.train import (TrainConfig, TrainingDiverged, create_train_state,
                               make_train_step, train_and_evaluate)
from graphs.schema import NODE_COLUMNS

from tests.conftest import REPO as ROOT
from tests.processes import damage_checkpoint, kill_at_first_checkpoint, latest_checkpoint
TINY = ["--set", "model.hidden=16", "--set", "model.num_blocks=1", "--set", "model.heads=2",
        "--set", "batch_size=4"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from bnnsim.dataset import build_dataset
    out = tmp_path_factory.mktemp("data")
    build_dataset(out, 12, seed=1, neuron_range=(10, 14), ood_family=None, progress=False)
    return out


def tiny_config(**changes) -> TrainConfig:
    return TrainConfig(model=preset("tiny"), batch_size=4, **changes)


def test_overrides_reach_nested_fields_and_bad_keys_are_clear():
    from bgan_jax.runs.config import apply_overrides
    cfg = apply_overrides(TrainConfig(), ["num_steps=7", "model.num_blocks=3",
                                          "learning_rate=1", "model.nsa=false"])
    assert (cfg.num_steps, cfg.model.num_blocks, cfg.model.nsa) == (7, 3, False)
    assert isinstance(cfg.learning_rate, float)
    with pytest.raises(ValueError, match="unknown config field 'model.nope'"):
        apply_overrides(cfg, ["model.nope=1"])
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        apply_overrides(cfg, ["num_steps=0"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(cfg, ["num_steps"])


def test_train_step_fits_one_batch(dataset):
    cfg = tiny_config(learning_rate=3e-3, warmup_steps=1, num_steps=60)
    train = data_lib.load_splits(dataset, cfg.task)["train"]
    batch = next(data_lib.batches(train, 4, shuffle=False))[0]
    state = create_train_state(cfg, batch)
    step = jax.jit(make_train_step(data_lib.task_of(cfg.task)))
    rng = jax.random.PRNGKey(0)
    losses = []
    for _ in range(60):
        state, s = step(state, batch, rng)
        losses.append(float(s["loss"] / s["count"]))
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses[::10]


PMAP_SCRIPT = """
import sys, jax, numpy as np, flax.jax_utils
from bgan_jax.bgan import data as data_lib
from bgan_jax.bgan.config import BGANConfig
from bgan_jax.bgan.train import TrainConfig, create_train_state, make_train_step
assert jax.local_device_count() == 4
for task in ("firing_pattern", "regime"):
    cfg = TrainConfig(task=task, model=BGANConfig(hidden=16, num_blocks=1, heads=2,
                                                  reconstruct=False), batch_size=2)
    train = data_lib.load_splits({data!r}, task)["train"][:7]  # 7 graphs: one device gets 1
    groups = [train[0:2], train[2:4], train[4:6], train[6:7]]
    n_node, n_edge = data_lib.batch_shapes(groups)
    per_device = [data_lib.make_batch(g, 3, n_node=n_node, n_edge=n_edge) for g in groups]
    union = data_lib.make_batch(train, len(train) + 1)
    state = create_train_state(cfg, union)
    t = data_lib.task_of(task)
    rng = jax.random.PRNGKey(3)
    w = data_lib.class_weights(train, t) if task == "regime" else None  # weighted loss too
    single, s1 = jax.jit(make_train_step(t, class_weights=w))(state, union, rng)
    step = jax.pmap(make_train_step(t, "d", class_weights=w), axis_name="d")
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *per_device)
    multi, s4 = step(flax.jax_utils.replicate(state), stacked, jax.random.split(rng, 4))
    multi = flax.jax_utils.unreplicate(multi)
    np.testing.assert_allclose(float(s1["loss"]), float(s4["loss"][0]), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(multi.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print("PMAP-OK")
"""


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **extra)
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


def test_pmap_step_equals_single_device_step(dataset):
    """4 fake CPU devices: the pmap step on 4 device batches == one step on their union."""
    script = PMAP_SCRIPT.format(root=str(ROOT), data=str(dataset))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"),
                         timeout=600)
    assert "PMAP-OK" in out.stdout, out.stderr[-3000:]


def _train_cmd(data, workdir, *extra):
    return [sys.executable, str(ROOT / "train.py"), "--data", str(data), "--workdir",
            str(workdir), "--no-progress", *TINY, "--set", "num_steps=12",
            "--set", "checkpoint_every=3", "--set", "eval_every=6", *extra]


def _final_params(workdir):
    tree, step = latest_checkpoint(workdir)
    return tree["params"], step


@pytest.mark.slow  # ~2.5 min (three train.py launches); checkpoints' resume logic is tested in tests/bgan_jax/runs
def test_resume_after_sigkill_ends_with_the_same_parameters(dataset, tmp_path, capsys):
    full = tmp_path / "full"
    out = subprocess.run(_train_cmd(dataset, full), capture_output=True, text=True,
                         env=_env(), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    killed = tmp_path / "killed"
    steps = kill_at_first_checkpoint(_train_cmd(dataset, killed), killed, _env())
    assert steps and max(steps) < 12, steps  # really interrupted mid-run
    again = subprocess.run(_train_cmd(dataset, killed, "--resume"), capture_output=True,
                           text=True, env=_env(), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    a, step_a = _final_params(full)
    b, step_b = _final_params(killed)
    assert step_a == step_b == 12
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    log = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    epochs = [e for e in log if "compilations" in e]
    assert epochs and epochs[0]["compilations"] == epochs[0]["buckets"]  # one per bucket
    assert all(e["compilations"] == 0 for e in epochs[1:])  # then none
    assert any(e.get("split") == "val" for e in log)

    # the newest checkpoint damaged: --resume says so in one line, goes on from the
    # newest intact one (step 9) and ends bit-identical to the uninterrupted run
    damage_checkpoint(killed / "checkpoints" / "12")
    again = subprocess.run(_train_cmd(dataset, killed, "--resume"), capture_output=True,
                           text=True, env=_env(), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    said = [line for line in again.stderr.splitlines() if "cannot be restored" in line]
    assert len(said) == 1 and "checkpoints/12" in said[0], again.stderr[-3000:]
    assert "Traceback" not in again.stderr
    b, step_b = _final_params(killed)
    assert step_b == 12
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()
             if "loss" in x and "split" not in x]
    assert steps == sorted(set(steps))  # the steps run again are logged once

    # every checkpoint damaged: one line, exit 1; analyze.py on a damaged best/: one line
    for step_dir in (killed / "checkpoints").iterdir():
        damage_checkpoint(step_dir)
    again = subprocess.run(_train_cmd(dataset, killed, "--resume"), capture_output=True,
                           text=True, env=_env(), timeout=600)
    assert again.returncode == 1 and "no checkpoint can be restored" in again.stderr
    assert again.stderr.strip().splitlines()[-1].startswith("train.py: ")
    assert "Traceback" not in again.stderr
    for step_dir in (killed / "best").iterdir():
        damage_checkpoint(step_dir)
    from analyze import main as analyze_main
    assert analyze_main(["--workdir", str(killed), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "killed/best" in err[0] and "cannot be" in err[0], err


def test_diverging_run_stops_naming_the_step_and_keeps_the_last_good_checkpoint(dataset,
                                                                                 tmp_path):
    cfg = tiny_config(learning_rate=1e38, grad_clip=1e38, warmup_steps=1, num_steps=50,
                      checkpoint_every=1, eval_every=50)
    with pytest.raises(TrainingDiverged, match=r"step (\d+): loss .* not finite") as err:
        train_and_evaluate(cfg, dataset, tmp_path, progress=False)
    bad = int(str(err.value).split("step ")[1].split(":")[0])
    kept = [int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
    assert kept and max(kept) == bad - 1


def test_feature_stats_are_masked_floored_and_saved_with_the_run(dataset, tmp_path):
    train = data_lib.load_splits(dataset, "firing_pattern")["train"]
    mean, std = data_lib.feature_stats(train)
    x = np.concatenate([e.cg.node_features for e in train])
    known = np.concatenate([e.cg.node_feature_mask for e in train]) > 0
    quantity = np.array([c.transform == "slog" for c in NODE_COLUMNS])
    partly = np.flatnonzero(quantity & (known.sum(0) > 1) & (known.sum(0) < len(x)))
    j = int(partly[np.argmax(x[:, partly].std(0))])  # a partly known, varying quantity
    col = x[known[:, j], j]  # unknown entries must not count
    np.testing.assert_allclose(mean[j], col.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std[j], max(col.std(), data_lib.MIN_FEATURE_STD), rtol=1e-4)
    assert np.all(std >= data_lib.MIN_FEATURE_STD)
    as_is = ~known.any(0) | ~quantity  # never known, or one-hot / index / count columns
    assert as_is.any() and np.all(mean[as_is] == 0) and np.all(std[as_is] == 1)
    with pytest.raises(data_lib.DatasetError, match="at least one example"):
        data_lib.feature_stats([])

    cfg = tiny_config(num_steps=2, checkpoint_every=1, eval_every=2)
    assert cfg.normalize_features
    train_and_evaluate(cfg, dataset, tmp_path, progress=False)
    from bgan_jax.bgan.train import STATS_FILE, load_run
    assert (tmp_path / STATS_FILE).is_file()
    run = load_run(tmp_path)
    np.testing.assert_allclose(run.stats.feature_shift, mean, rtol=1e-6)
    np.testing.assert_allclose(run.stats.feature_scale, std, rtol=1e-6)
    assert run.stats.compaction is not None and run.model.stats.compaction is None
    assert run.model.stats.feature_shift == run.stats.feature_shift


def test_existing_run_needs_resume(dataset, tmp_path):
    """(The run is made with ``attention='auto'``, which on XLA CPU is the sparse path
    with no trial, one metrics.jsonl line per batch shape saying so, and with
    ``padding='tight'``.)"""
    from bgan_jax.bgan import autopath
    cfg = tiny_config(num_steps=2, checkpoint_every=1, eval_every=2, padding="tight")
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(attention="auto"))
    table = train_and_evaluate(cfg, dataset, tmp_path, progress=False)
    assert table["final_step"] == 2 and (tmp_path / "eval.json").is_file()
    assert not autopath.measures_here()  # this suite runs on XLA CPU
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    chosen = [e for e in lines if "attention" in e]
    assert chosen and all(e["attention"] == "sparse" and "faster on this backend" in e["why"]
                          for e in chosen)
    assert len({tuple(e["bucket"]) for e in chosen}) == len(chosen)  # one line per bucket
    train = data_lib.load_splits(dataset, cfg.task)["train"]
    assert {tuple(e["bucket"]) for e in chosen} <= set(data_lib.bucket_shapes(train, 4,
                                                                              padding="tight"))
    with pytest.raises(FileExistsError, match="--resume"):
        train_and_evaluate(cfg, dataset, tmp_path, progress=False)


def test_epochs_are_deterministic_buckets_of_one_shape(dataset):
    train = data_lib.load_splits(dataset, "firing_pattern")["train"]
    a = [[b.nodes["features"].shape for b in s] for s in data_lib.batches(train, 3, 5, 2)]
    b = [[b.nodes["features"].shape for b in s] for s in data_lib.batches(train, 3, 5, 2)]
    assert a == b
    shapes = {(b.nodes["kind"].shape[0], b.senders.shape[0]) for s in data_lib.batches(
        train, 3, 5, 2) for b in s}
    assert shapes == set(data_lib.bucket_shapes(train, 3))  # one per bucket
    seen = sorted(i for _, groups in data_lib.epoch_plan(train, 3, 5, 2) for g in groups
                  for i in g)
    assert seen == list(range(len(train)))  # every example once per epoch


@pytest.mark.parametrize("devices", [1, 2])
def test_last_step_of_a_bucket_is_padded_to_its_own_graphs(dataset, devices):
    """padding='tight': a bucket's partial last step takes the shape of that many largest
    graphs; the same shapes every epoch, and every graph fits its step's shape."""
    train = data_lib.load_splits(dataset, "firing_pattern")["train"]
    for batch in (2, 3, 4, 5):  # one whose buckets leave a partial last step
        buckets = data_lib.size_buckets(train, batch, devices, "tight")
        if any(b.last is not None for b in buckets):
            break
    else:
        pytest.fail("the fixture has no bucket with a partial last step")
    for b in buckets:
        if b.last is not None:
            assert len(b.members) % (batch * devices)
            assert b.last[0] <= b.n_node and b.last[1] <= b.n_edge
            assert b.last != (b.n_node, b.n_edge)
    shapes = set()
    for epoch in range(3):
        for bucket, groups in data_lib.epoch_plan(train, batch, 0, epoch, devices=devices,
                                                  padding="tight"):
            assert all(sum(train[i].cg.n_nodes for i in g) + 1 <= bucket.n_node and
                       sum(train[i].cg.n_edges for i in g) <= bucket.n_edge for g in groups)
            shapes.add((bucket.n_node, bucket.n_edge))
    assert shapes == set(data_lib.bucket_shapes(train, batch, devices, "tight"))


def test_tight_padding_trades_compilations_for_padding(dataset):
    train = data_lib.load_splits(dataset, "firing_pattern")["train"]

    def fill(padding):
        plan = data_lib.epoch_plan(train, 4, padding=padding)
        used = sum(train[i].cg.n_nodes for _, groups in plan for g in groups for i in g)
        return used / sum(b.n_node for b, _ in plan)

    assert len(data_lib.bucket_shapes(train, 4, padding="tight")) > len(
        data_lib.bucket_shapes(train, 4))
    assert fill("tight") > fill("bucket")
    with pytest.raises(ValueError, match="padding"):
        data_lib.size_buckets(train, 4, padding="loose")
    with pytest.raises(ValueError, match="padding"):
        TrainConfig(padding="loose")


def test_evaluation_is_the_same_under_either_padding(dataset):
    """Same parameters, same examples: the metrics do not depend on how batches are padded."""
    from bgan_jax.bgan.train import evaluate, make_eval_step, measure_stats

    cfg = tiny_config()
    task = data_lib.task_of(cfg.task)
    train = data_lib.load_splits(dataset, cfg.task)["train"]
    stats = measure_stats(cfg, [train])
    state = create_train_state(cfg, next(data_lib.batches(train, 4))[0], stats)
    eval_step = jax.jit(make_eval_step(task))
    loose = evaluate(eval_step, state, train, cfg, task, (0.0, 1.0))
    tight = evaluate(eval_step, state, train, dataclasses.replace(cfg, padding="tight"), task,
                     (0.0, 1.0))
    assert loose.keys() == tight.keys() and loose["count"] > 0
    for k in loose:
        np.testing.assert_allclose(tight[k], loose[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_reuse_shape_takes_the_smallest_fitting_shape_within_one_size_class():
    shapes = [(64, 128), (96, 160), (128, 512), (256, 256)]
    assert data_lib.reuse_shape((60, 100), shapes) == (64, 128)
    assert data_lib.reuse_shape((64, 150), shapes) == (96, 160)  # (64, 128) too few edges
    assert data_lib.reuse_shape((70, 260), shapes) == (128, 512)  # 512 <= 2 * 260
    assert data_lib.reuse_shape((40, 100), shapes) == (64, 128)
    assert data_lib.reuse_shape((30, 100), shapes) == (30, 100)  # 64 > 2 * 30: its own
    assert data_lib.reuse_shape((300, 10), shapes) == (300, 10)  # nothing holds it
    assert data_lib.reuse_shape((60, 100), shapes, "tight") == (64, 128)  # within sqrt(2)
    assert data_lib.reuse_shape((40, 100), shapes, "tight") == (40, 100)  # 64 > 1.41 * 40


def test_evaluation_takes_the_training_shapes_with_the_same_numbers(dataset):
    """Evaluation batches padded onto the run's training shapes (``run_shapes``): fewer
    shapes to compile than the splits' own, and the same metrics."""
    from bgan_jax.bgan.train import evaluate, make_eval_step, measure_stats, run_shapes

    cfg = tiny_config()
    task = data_lib.task_of(cfg.task)
    splits = data_lib.load_splits(dataset, cfg.task)
    stats = measure_stats(cfg, list(splits.values()))
    ours = run_shapes(splits["train"], 4, 1, cfg.padding)
    own = {b.senders.shape for split in splits.values()
           for (b,) in data_lib.batches(split, 4, shuffle=False)}
    placed = {b.senders.shape for split in splits.values()
              for (b,) in data_lib.batches(split, 4, shuffle=False, shapes=ours)}
    assert len(placed) < len(own), (own, placed)
    state = create_train_state(cfg, next(data_lib.batches(splits["train"], 4))[0], stats)
    eval_step = jax.jit(make_eval_step(task))
    for split in filter(None, splits.values()):
        a = evaluate(eval_step, state, split, cfg, task, (0.0, 1.0))
        b = evaluate(eval_step, state, split, cfg, task, (0.0, 1.0), ours)
        assert a.keys() == b.keys() and a["count"] > 0
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_results_table_averages_over_seeds():
    from experiments.grid import markdown

    def row(v, s, a):
        split = {"accuracy": a, "balanced_accuracy": a / 2}
        return {"task": "regime", "variant": v, "seed": s, "metric": "balanced_accuracy",
                "steps": 10, "splits": {"train": split, "val": split, "test": split, "ood": {}}}

    rows = [row("bgan", 0, 0.5), row("bgan", 1, 0.7), row("mlp", 0, 0.4)]
    rows[0]["by_drive"] = {"test/pulse": {"balanced_accuracy": 0.9}}
    text = markdown(rows)
    assert "| bgan | - | - | 0.900 +- 0.000 | - | - | - |" in text  # test/pulse
    assert "| bgan | 0.600 +- 0.100 | 0.600 +- 0.100 | 0.600 +- 0.100 | - |" in text
    assert "| bgan | 0.300 +- 0.050 | 0.300 +- 0.050 | 0.300 +- 0.050 | - |" in text
    assert "| mlp | 0.400 +- 0.000" in text and "2 seeds" in text
    assert text.index("(balanced_accuracy") < text.index("(accuracy")


def test_balanced_class_weights_and_accuracy():
    """Weights n / (C n_c) make every class weigh the same in the loss; balanced accuracy
    is the mean per-class recall over the classes present."""
    from bgan_jax.bgan.train import summarize
    task = data_lib.task_of("regime")
    exs = [data_lib.Example(None, np.zeros(1), np.zeros(1, bool), np.array([y], np.float32),
                            np.ones(1, bool), str(i))
           for i, y in enumerate([1, 1, 1, 2])]
    w = data_lib.class_weights(exs, task)
    np.testing.assert_allclose(w, [1.0, 4 / 6, 4 / 2, 1.0])  # 2 classes present; absent: 1
    counts = np.bincount([1, 1, 1, 2], minlength=4)
    np.testing.assert_allclose((w * counts)[1:3], [2.0, 2.0])  # equal class totals, mean 1
    s = summarize({"loss": 0.0, "count": 4, "correct": 3, "class_count": counts,
                   "class_correct": np.array([0, 3, 0, 0])}, task)
    assert s["accuracy"] == 0.75 and s["balanced_accuracy"] == 0.5  # (1 + 0) / 2
    with pytest.raises(data_lib.DatasetError):
        data_lib.class_weights(exs, data_lib.task_of("stdp_dw"))
    with pytest.raises(ValueError, match="classification"):
        TrainConfig(task="stdp_dw", class_weighting="balanced")


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(cmd, port):
    """Run ``cmd`` as processes 0 and 1 of one jax.distributed job on localhost."""
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                                       JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i)))
             for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return outs


@pytest.mark.slow  # ~5 min (four train.py launches); test_pmap_step_equals_single_device_step stays default
def test_two_processes_equal_one_process_with_two_devices(dataset, tmp_path):
    """jax.distributed on 127.0.0.1: 2 processes x 1 CPU device, each building its half of
    every global batch, end where 1 process with 2 devices ends; files are written once,
    and --resume goes on the same way."""
    single, multi = tmp_path / "single", tmp_path / "multi"

    def cmd(workdir, steps, *extra):
        return [sys.executable, str(ROOT / "train.py"), "--data", str(dataset), "--workdir",
                str(workdir), "--no-progress", *TINY, "--set", f"num_steps={steps}",
                "--set", "checkpoint_every=2", "--set", "eval_every=2", "--set", "log_every=1",
                *extra]

    for steps, extra in ((4, ()), (6, ("--resume",))):
        out = subprocess.run(cmd(single, steps, *extra), capture_output=True, text=True,
                             timeout=600,
                             env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"))
        assert out.returncode == 0, out.stderr[-3000:]
        assert "devices 2 x cpu (1 process(es))" in out.stdout
        outs = _two_processes(cmd(multi, steps, *extra), _free_port())
        assert "devices 2 x cpu (2 process(es))" in outs[0][0]
        a, step_a = _final_params(single)
        b, step_b = _final_params(multi)
        assert step_a == step_b == steps
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    logs = [(d / "metrics.jsonl").read_text().splitlines() for d in (single, multi)]
    assert len(logs[0]) == len(logs[1])  # one writer, not two
    steps = [json.loads(x)["step"] for x in logs[1] if "loss" in x and "split" not in x]
    assert steps == [1, 2, 3, 4, 5, 6]
    evals = [json.loads((d / "eval.json").read_text())["splits"]["test"] for d in (single, multi)]
    np.testing.assert_allclose(evals[0]["loss"], evals[1]["loss"], rtol=1e-5)


def test_a_damaged_dataset_is_refused_up_front_naming_every_bad_file(dataset, tmp_path, capsys):
    import shutil
    import train
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    report = json.loads((data / "report.json").read_text())
    npzs = [data / "graphs" / Path(r["npz"]).name for r in report["networks"]
            if r["status"] == "ok" and r["split"] == "train"]
    npzs[0].write_bytes(npzs[0].read_bytes()[:200])  # truncated by a copy
    npzs[1].unlink()  # lost
    args = ["--data", str(data), "--workdir", str(tmp_path / "w"), "--no-progress", *TINY,
            "--set", "num_steps=2", "--set", "eval_every=2", "--set", "checkpoint_every=2"]
    assert train.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 damaged graph file(s)" in err[0], err
    assert npzs[0].name in err[0] and "truncated" in err[0]
    assert npzs[1].name in err[0] and "no such file" in err[0]
    assert not (tmp_path / "w" / "checkpoints").exists()  # refused before any training

    assert train.main(args + ["--set", "skip_damaged=true"]) == 0  # asked for explicitly
    err = capsys.readouterr().err
    assert "skipping 2 damaged graph file(s)" in err
    skipped = json.loads((tmp_path / "w" / "eval.json").read_text())["skipped"]
    assert sorted(Path(f).name for f in skipped) == sorted(p.name for p in npzs[:2])


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "report.json").write_text('{"networks": ['), "report.json is not JSON"),
    (lambda d: (d / "report.json").unlink(), "no report.json"),
    (lambda d: (d / "manifest.json").write_text("{}"), "graphs built with schema None"),
    (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
])
def test_damaged_dataset_files_are_one_line(dataset, tmp_path, capsys, damage, message):
    import shutil
    import train
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    damage(data)
    assert train.main(["--data", str(data), "--workdir", str(tmp_path / "w"),
                       "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_damaged_run_files_are_one_line(dataset, tmp_path, capsys):
    import analyze
    import train
    work = tmp_path / "w"
    args = ["--data", str(dataset), "--workdir", str(work), "--no-progress", *TINY,
            "--set", "num_steps=2", "--set", "eval_every=2", "--set", "checkpoint_every=2"]
    assert train.main(args) == 0
    capsys.readouterr()
    good = (work / "config.json").read_text()
    cases = [("config.json", good[:40], "not JSON"),
             ("config.json", good.replace('"batch_size": 4', '"batch_size": "4"'),
              "batch_size: expected an integer"),
             ("config.json", good.replace('"task":', '"colour": 1, "task":'),
              "unknown field(s) ['colour']"),
             ("data.json", json.dumps({"data": str(tmp_path / "moved")}), "moved")]
    for name, text, message in cases:
        (work / name).write_text(text)
        for main in (lambda: train.main(["--workdir", str(work), "--resume", "--no-progress"]),
                     lambda: analyze.main(["--workdir", str(work), "--no-progress"])):
            assert main() == 1, (name, message)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and message in err[0] and name in err[0], (name, err)
        (work / "config.json").write_text(good)
        (work / "data.json").write_text(json.dumps({"data": str(dataset)}))


@pytest.mark.parametrize("model_name", ["bgan", "transformer"])
def test_compaction_is_measured_for_the_model_built(model_name, tmp_path):
    """The transformer attends along every edge, BGAN along its masks: the capacities
    measured for one would overflow the other (NaN) on a batch of one-compartment cells
    next to a multi-neuron graph, as in the real-cell corpus."""
    import bgan_jax
    from bgan_jax.bgan.baselines import variant_config
    from bgan_jax.bgan.train import measure_stats, model_config
    from graphs import batch_and_pad, convert_file
    from tests.bnnsim.ephys.cells import write_cells
    from tests.graph_factory import random_cg

    cells = [convert_file(p) for p in write_cells(tmp_path).values()]
    cgs = cells + [random_cg(s, n_neurons=6) for s in range(3)]
    examples = [data_lib.Example(cg, np.zeros(cg.n_nodes, np.float32),
                                 np.zeros(cg.n_nodes, bool), np.zeros(1, np.float32),
                                 np.ones(1, bool), str(i)) for i, cg in enumerate(cgs)]
    cfg = tiny_config(model_name=model_name)
    bounds = measure_stats(cfg, [examples]).compaction
    built = variant_config(model_name, model_config(cfg))
    assert bounds is not None
    small = batch_and_pad([cells[0]] * 8, n_graph=9)  # only one-compartment cells
    assert bgan_jax.pair_overflow([small], built, bounds) == []


def test_auto_attention_keeps_the_faster_path_per_bucket_and_changes_no_numbers(dataset):
    """``attention='auto'`` with trials (as on an accelerator): each bucket's first batch
    times both paths and the faster is kept; here a fake clock makes dense the faster,
    and the step it takes equals the sparse step."""
    from bgan_jax.bgan import autopath
    from bgan_jax.bgan.baselines import create_variant
    from bgan_jax.bgan.masks import dense_block_size
    from bgan_jax.bgan.train import model_config

    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(attention="auto"))
    task = data_lib.task_of(cfg.task)
    train = data_lib.load_splits(dataset, cfg.task)["train"]
    blocks = data_lib.bucket_shapes(train, 4)
    epoch = [b[0] for b in data_lib.batches(train, 4, shuffle=False)]
    for b in epoch:  # every batch fits its bucket's dense block
        assert dense_block_size(b) <= blocks[autopath.batch_shape(b)]
    built = []

    def step_for(model):
        built.append(model.attention)
        return jax.jit(make_train_step(task, apply_fn=create_variant("bgan", model).apply))

    clock = iter([0.0, 10.0, 0.0, 1.0])  # sparse trial 10 s, dense trial 1 s
    log = []
    step = autopath.make_auto_step(step_for, model_config(cfg), blocks, measure=True,
                                   log=log.append, timer=lambda: next(clock))
    state = create_train_state(cfg, epoch[0])
    rng = jax.random.PRNGKey(0)
    auto_state, auto_stats = step(state, epoch[0], rng)
    assert built == ["sparse", "dense"]
    assert log == [{"bucket": list(autopath.batch_shape(epoch[0])), "attention": "dense",
                    "dense_block": blocks[autopath.batch_shape(epoch[0])],
                    "sparse_ms": 10000.0, "dense_ms": 1000.0}]
    sparse_state, sparse_stats = jax.jit(make_train_step(task))(state, epoch[0], rng)
    np.testing.assert_allclose(float(auto_stats["loss"]), float(sparse_stats["loss"]), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(auto_state.params), jax.tree.leaves(sparse_state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    step(auto_state, epoch[0], rng)  # the same bucket again: no new trial
    assert len(log) == 1 and built == ["sparse", "dense"]



@pytest.mark.parametrize("padding", ["bucket", "tight"])
def test_bucket_capacities_hold_every_batch_a_run_forms_and_change_no_numbers(dataset, padding):
    """``MechanismBounds.shapes`` bound each batch shape by its own bucket's largest graphs: no
    batch of any epoch (train on 1 or 2 devices, every split for evaluation) overflows,
    the bounds are tighter than the fractions' somewhere, and a training step with them
    equals one without."""
    import bgan_jax
    from bgan_jax.bgan.compaction import capacity, listed_capacity
    from bgan_jax.bgan.config import MECHANISMS
    from bgan_jax.bgan.train import model_config, measure_stats, run_shapes

    cfg = tiny_config(padding=padding)
    splits = data_lib.load_splits(dataset, cfg.task)
    stats = measure_stats(cfg, list(splits.values()), devices=2)
    bounds, model = stats.compaction, model_config(cfg)
    assert all(bounds[m].shapes for m in MECHANISMS)
    ours = run_shapes(splits["train"], 4, 2, padding)
    formed = [b for split in splits.values() for (b,) in data_lib.batches(
        split, 4, shuffle=False, padding=padding, shapes=ours)]  # evaluation
    for devices in (1, 2):
        for epoch in range(3):
            formed += [b for step in data_lib.batches(splits["train"], 4, seed=0, epoch=epoch,
                                                      devices=devices, padding=padding)
                       for b in step]
    assert bgan_jax.pair_overflow(formed, model, bounds) == []
    tighter = False
    for m in MECHANISMS:
        b = bounds[m]
        for n, e, rows, _ in b.shapes:
            assert listed_capacity(b, n, e)[0] == rows
            tighter |= rows < capacity(e, b.pair_fraction, b.pair_counts, 5)
        assert listed_capacity(b, 3, 5) == (5, 3)  # a shape not listed
    assert tighter

    batch = formed[0]
    plain = stats.replace(compaction=dataclasses.replace(bounds, **{
        m: dataclasses.replace(bounds[m], shapes=()) for m in MECHANISMS}))
    task = data_lib.task_of(cfg.task)
    rng = jax.random.PRNGKey(0)
    outs = []
    for st in (stats, plain):
        state = create_train_state(cfg, batch, st)
        outs.append(jax.jit(make_train_step(task))(state, batch, rng))
    for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)


def test_a_config_json_of_an_earlier_version_still_loads(tmp_path):
    """Before ``DatasetStats``, a run kept its measured numbers in ``model`` (positional
    per mechanism) and named the pair loss weight ``variant_pairs``: read_config and
    read_stats give today's config and stats, each mechanism's bounds by name."""
    import json

    from bgan_jax.bgan.config import MECHANISMS, MechanismBounds
    from bgan_jax.bgan.train import LEGACY_MECHANISMS, read_stats
    from bgan_jax.runs.workdir import read_config

    model = dict(dataclasses.asdict(preset("tiny")))
    model.pop("backend")
    model.update(feature_shift=[0.5, 1.0], feature_scale=[2.0, 4.0], pair_chunk=7,
                 cpu_kernel=False, pair_fractions=[0.1, 0.2, 0.3, 0.4],
                 pair_counts=[[5, 3], [4], [], [9]], node_fractions=[0.5, 0.6, 0.7, 0.8],
                 node_counts=[[2], [], [], []],
                 shape_capacities=[[64, 128, 11, 12, 13, 14, 21, 22, 23, 24]])
    (tmp_path / "config.json").write_text(json.dumps(
        {"kind": "bgan", "task": "efeatures", "variant_pairs": 0.5, "model": model}))
    config = read_config(tmp_path, TrainConfig)
    assert config.variant_pair_weight == 0.5
    assert config.model.backend.pair_chunk == 7 and not config.model.backend.cpu_kernel
    assert config.model.hidden == 16
    stats = read_stats(tmp_path)
    assert stats.feature_shift == (0.5, 1.0) and stats.feature_scale == (2.0, 4.0)
    for i, m in enumerate(LEGACY_MECHANISMS):  # the order those files kept
        b = stats.compaction[m]
        assert b.pair_fraction == model["pair_fractions"][i]
        assert b.node_fraction == model["node_fractions"][i]
        assert list(b.pair_counts) == model["pair_counts"][i]
        assert b.shapes == ((64, 128, 11 + i, 21 + i),)
    for m in set(MECHANISMS) - set(LEGACY_MECHANISMS):  # added since: no bound
        assert stats.compaction[m] == MechanismBounds()
    assert read_stats(tmp_path / "nothing") is None
