"""Training an SNN (``bgan_jax.snn.model``) on scikit-learn's bundled 8x8 digits.

No download: ``sklearn.datasets.load_digits`` ships with scikit-learn (1797
images). Split: 20% test, stratified, fixed by the seed; 10% of the rest is
validation (the epoch kept is the best on it, never on test). Metrics:
accuracy and spikes per sample (all spiking layers, all steps).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Dict, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bgan_jax.runs import distributed
from bgan_jax.runs.checkpoints import Checkpoints
from bgan_jax.runs.config import LoopConfig
from bgan_jax.runs.loop import open_run, train_loop
from bgan_jax.runs.workdir import read_config
from bgan_jax.snn.model import (SNNConfig, create_snn, scale_by_spike_timing, spike_counts,
                                spike_scale_tree)

KIND = "snn"
EVAL_KEYS = {"val": 10 ** 9, "test": 10 ** 9 + 1, "train": 10 ** 9 + 2}  # encoding noise
STEPS_PER_EPOCH = 20  # 1293 training digits // batch 64: the default cadence is one epoch


@dataclasses.dataclass(frozen=True)
class SNNTrainConfig(LoopConfig):
    """An SNN run; saved as ``config.json``. Budget in steps like every model: 600 steps
    of 64 digits = 30 epochs; validation (which picks the checkpoint kept) once an epoch."""

    model: SNNConfig = SNNConfig()
    spike_scaling: bool = False
    """Scale dense-layer weight gradients by pre/post spike timing (bgan_jax.snn.model)."""
    scaling_alpha: float = 0.5
    trace_decay: float = 0.5
    batch_size: int = 64
    learning_rate: float = 1e-3
    num_steps: int = 30 * STEPS_PER_EPOCH
    log_every: int = STEPS_PER_EPOCH
    eval_every: int = STEPS_PER_EPOCH

    def __post_init__(self):
        super().__post_init__()
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.scaling_alpha < 1.0 or not 0.0 <= self.trace_decay < 1.0:
            raise ValueError(f"scaling_alpha and trace_decay must be in [0, 1), got {self}")


class Split(NamedTuple):
    x: np.ndarray  # [M, 8, 8] float32 in [0, 1]
    y: np.ndarray  # [M] int32


def digits(seed: int = 0) -> Dict[str, Split]:
    """train / val / test splits of the bundled 8x8 digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int32)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y,
                                                      random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.1,
                                                      stratify=y_rest, random_state=seed)
    return {"train": Split(x_train, y_train), "val": Split(x_val, y_val),
            "test": Split(x_test, y_test)}


def make_optimizer(config: SNNTrainConfig) -> optax.GradientTransformationExtraArgs:
    return optax.chain(scale_by_spike_timing(), optax.adam(config.learning_rate))


def make_train_step(model, optimizer, config: SNNTrainConfig):
    """Pure jitted step: cross-entropy, optional spike-timing scaling, Adam."""

    @jax.jit
    def step(params, opt_state, x, y, key):
        def loss_fn(p):
            logits, rec = model.apply(p, x, key)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, (logits, rec)

        (loss, (logits, rec)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        scale = (spike_scale_tree(params, rec, model.config, config.scaling_alpha,
                                  config.trace_decay) if config.spike_scaling else None)
        updates, opt_state = optimizer.update(grads, opt_state, params, spike_scale=scale)
        stats = dict(loss=loss, accuracy=jnp.mean(jnp.argmax(logits, -1) == y),
                     spikes=jnp.mean(spike_counts(rec)),
                     finite=jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads)))
        return optax.apply_updates(params, updates), opt_state, stats

    return step


def make_eval(model):
    @jax.jit
    def run(params, x, y, key):
        logits, rec = model.apply(params, x, key)
        return jnp.sum(jnp.argmax(logits, -1) == y), jnp.sum(spike_counts(rec))

    return run


def evaluate(run, params, split: Split, key, batch: int = 256) -> Dict[str, float]:
    correct = spikes = 0.0
    for i in range(0, len(split.y), batch):
        c, s = run(params, split.x[i:i + batch], split.y[i:i + batch], jax.random.fold_in(key, i))
        correct, spikes = correct + float(c), spikes + float(s)
    return {"accuracy": correct / len(split.y), "spikes_per_sample": spikes / len(split.y)}


def _batches(train: Split, config: SNNTrainConfig, key, start: int) -> Iterator:
    """(x, y, key) of every step from ``start`` on: epoch after epoch, a fresh permutation
    each (drawn in sequence from the seed; a resumed run redraws the ones it skips)."""
    rng, n = np.random.default_rng(config.seed), len(train.y)
    per_epoch = n // config.batch_size
    if per_epoch < 1:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {n} training digits")
    for epoch in itertools.count():
        order = rng.permutation(n)
        for k in range(per_epoch):
            if epoch * per_epoch + k >= start:
                idx = order[k * config.batch_size:(k + 1) * config.batch_size]
                yield train.x[idx], train.y[idx], jax.random.fold_in(key, epoch * 100000 + k)


def train_snn(config: SNNTrainConfig, workdir, resume: bool = False,
              progress: bool = True) -> Dict:
    """Train, keep the best checkpoint on validation, evaluate it on test; returns
    eval.json. Writes config.json, metrics.jsonl, checkpoints/, best/."""
    distributed.require_single_process("The SNN")
    workdir = Path(workdir)
    data = digits(config.seed)
    model = create_snn(config.model)
    key = jax.random.key(config.seed)
    params = model.init(key, data["train"].x[:2], key)
    optimizer = make_optimizer(config)
    state = {"params": params, "opt_state": optimizer.init(params)}
    ckpts = Checkpoints(workdir, config.keep_checkpoints, "accuracy")
    start, state = open_run(workdir, KIND, config, None, ckpts, state, resume)
    jitted = make_train_step(model, optimizer, config)
    run = make_eval(model)

    def step_fn(state, batch):
        params, opt_state, stats = jitted(state["params"], state["opt_state"], *batch)
        return {"params": params, "opt_state": opt_state}, stats

    result = train_loop(
        state, step_fn, _batches(data["train"], config, key, start), config=config,
        start=start, checkpoints=ckpts, savable=lambda s: s,
        metrics_path=workdir / "metrics.jsonl",
        evaluate=lambda s: evaluate(run, s["params"], data["val"],
                                    jax.random.fold_in(key, EVAL_KEYS["val"])),
        select="accuracy", progress=progress, desc="snn")
    best_step, best = ckpts.restore_best(result.state)
    val, test = (evaluate(run, best["params"], data[s], jax.random.fold_in(key, EVAL_KEYS[s]))
                 for s in ("val", "test"))
    table = {"best_step": best_step, "val_accuracy": val["accuracy"],
             "test_accuracy": test["accuracy"], "spikes_per_sample": test["spikes_per_sample"],
             "spike_scaling": config.spike_scaling, "seed": config.seed}
    (workdir / "eval.json").write_text(json.dumps(table, indent=1))
    return table


def load_snn_run(workdir):
    """(config, model, best parameters, step) of an SNN workdir."""
    config = read_config(workdir, SNNTrainConfig)
    model = create_snn(config.model)
    key = jax.random.key(config.seed)
    params = model.init(key, np.zeros((2, 8, 8), np.float32), key)
    like = {"params": params, "opt_state": make_optimizer(config).init(params)}
    step, state = Checkpoints(workdir, config.keep_checkpoints, "accuracy").restore_best(like)
    return config, model, state["params"], int(step)
