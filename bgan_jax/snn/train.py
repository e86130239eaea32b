"""Training an SNN (``bgan_jax.snn.model``) on scikit-learn's bundled 8x8 digits.

No download: ``sklearn.datasets.load_digits`` ships with scikit-learn (1797
images). Split: 20% test, stratified, fixed by the seed; 10% of the rest is
validation (the epoch kept is the best on it, never on test). Metrics:
accuracy and spikes per sample (all spiking layers, all steps).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from tqdm import tqdm

from bgan_jax.snn.model import (SNNConfig, create_snn, scale_by_spike_timing, spike_counts,
                          spike_scale_tree)
from bgan_jax.bgan.train import TrainingDiverged, log_jsonl


@dataclasses.dataclass(frozen=True)
class SNNTrainConfig:
    """An SNN run; saved as ``config.json``."""

    model: SNNConfig = SNNConfig()
    spike_scaling: bool = False
    """Scale dense-layer weight gradients by pre/post spike timing (bgan_jax.snn.model)."""
    scaling_alpha: float = 0.5
    trace_decay: float = 0.5
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self}")
        if not 0.0 <= self.scaling_alpha < 1.0 or not 0.0 <= self.trace_decay < 1.0:
            raise ValueError(f"scaling_alpha and trace_decay must be in [0, 1), got {self}")

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)


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
                     spikes=jnp.mean(spike_counts(rec)), finite=jnp.isfinite(loss))
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


def train_snn(config: SNNTrainConfig, workdir, progress: bool = True) -> Dict:
    """Train, keep the best epoch on validation, evaluate it on test; returns eval.json."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = (workdir / "checkpoint").absolute()
    if ckpt_dir.exists():
        raise FileExistsError(f"{workdir} already holds a trained SNN; choose another --workdir")
    (workdir / "config.json").write_text(json.dumps({"model_name": "snn", **config.to_dict()},
                                                    indent=1))
    data = digits(config.seed)
    model = create_snn(config.model)
    key = jax.random.key(config.seed)
    params = model.init(key, data["train"].x[:2], key)
    optimizer = make_optimizer(config)
    opt_state = optimizer.init(params)
    step = make_train_step(model, optimizer, config)
    run = make_eval(model)
    rng = np.random.default_rng(config.seed)
    n = len(data["train"].y)
    best, best_params, t0 = None, params, time.perf_counter()
    for epoch in tqdm(range(config.epochs), desc="snn", disable=not progress, unit="epoch"):
        order = rng.permutation(n)
        for k, i in enumerate(range(0, n - config.batch_size + 1, config.batch_size)):
            idx = order[i:i + config.batch_size]
            params, opt_state, stats = step(params, opt_state, data["train"].x[idx],
                                            data["train"].y[idx],
                                            jax.random.fold_in(key, epoch * 100000 + k))
            if not bool(stats["finite"]):
                raise TrainingDiverged(f"non-finite loss in epoch {epoch + 1}, batch {k + 1}")
        val = evaluate(run, params, data["val"], jax.random.fold_in(key, 10 ** 9))
        log_jsonl(workdir / "metrics.jsonl", {"epoch": epoch + 1, "loss": float(stats["loss"]),
                                              "val_accuracy": val["accuracy"],
                                              "val_spikes": val["spikes_per_sample"],
                                              "seconds": time.perf_counter() - t0})
        if best is None or val["accuracy"] > best[1]["accuracy"]:
            best, best_params = (epoch + 1, val), params
    test = evaluate(run, best_params, data["test"], jax.random.fold_in(key, 10 ** 9 + 1))
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(ckpt_dir, best_params)
        checkpointer.wait_until_finished()
    table = {"best_epoch": best[0], "val_accuracy": best[1]["accuracy"],
             "test_accuracy": test["accuracy"], "spikes_per_sample": test["spikes_per_sample"],
             "spike_scaling": config.spike_scaling, "seed": config.seed}
    (workdir / "eval.json").write_text(json.dumps(table, indent=1))
    return table


ARCHITECTURES = {"dense": SNNConfig(), "conv": SNNConfig(conv=(8, 16), hidden=(128,))}


def compare(out, seeds=(0, 1, 2), architectures=("dense", "conv"), epochs: int = 30,
            progress: bool = False) -> list:
    """Every architecture x scaling off/on x seed with the same budget -> rows; writes
    results.json and results.md under ``out``."""
    out = Path(out)
    rows = []
    for arch in architectures:
        for scaling in (False, True):
            for seed in seeds:
                cfg = SNNTrainConfig(model=ARCHITECTURES[arch], spike_scaling=scaling,
                                     epochs=epochs, seed=seed)
                table = train_snn(cfg, out / f"{arch}-{'scaled' if scaling else 'plain'}-{seed}",
                                  progress=progress)
                rows.append(dict(table, architecture=arch))
                print(json.dumps(rows[-1]), flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    (out / "results.md").write_text(markdown(rows))
    return rows


def markdown(rows) -> str:
    lines = ["| architecture | gradient scaling | test accuracy | spikes per sample |",
             "|---|---|---|---|"]
    for arch in dict.fromkeys(r["architecture"] for r in rows):
        for scaling in (False, True):
            sel = [r for r in rows if r["architecture"] == arch and r["spike_scaling"] == scaling]
            if sel:
                acc = [r["test_accuracy"] for r in sel]
                spk = [r["spikes_per_sample"] for r in sel]
                lines.append(f"| {arch} | {'on' if scaling else 'off'} | {np.mean(acc):.3f} +- "
                             f"{np.std(acc):.3f} | {np.mean(spk):.1f} +- {np.std(spk):.1f} |")
    return "\n".join(lines) + f"\n\nmean +- std over {len({r['seed'] for r in rows})} seeds\n"


def main(argv: Optional[list] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m bgan_jax.snn.train",
                                description="SNN with and without spike-timing gradient "
                                            "scaling on the 8x8 digits (RESULTS.md)")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    args = p.parse_args(argv)
    print(markdown(compare(args.out, args.seeds, epochs=args.epochs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
