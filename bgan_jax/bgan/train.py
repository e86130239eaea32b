"""Training: config, optimizer, pure train/eval steps (jit or pmap), checkpoints, loop.

Losses are sums over labelled items divided by the labelled count of the whole
global batch (``lax.psum`` across devices), and gradients are summed across
devices, so a pmap step over D device batches equals one step over their union
(tests/test_training.py checks it with fake CPU devices).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

import flax.jax_utils
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax.training import train_state
from tqdm import tqdm

from bgan_jax.bgan import data as data_lib
from bgan_jax.bgan.baselines import create_mlp
from bgan_jax.bgan.config import BGANConfig
from bgan_jax.bgan.model import create_model
from graphs.batching import batch_and_pad
from graphs.cg import GraphBuilder
from graphs.schema import EdgeKind, NodeKind

MODELS = ("bgan", "mlp", "transformer")
CLASS_WEIGHTING = ("none", "balanced")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` in the workdir."""

    task: str = "firing_pattern"
    """One of bgan_jax.bgan.data.TASKS: firing_pattern, regime, stdp_dw."""
    model_name: str = "bgan"
    """bgan, mlp (node features only) or transformer (BGAN blocks, plain neighbourhood
    attention instead of the NSA/BMSA masks)."""
    model: BGANConfig = BGANConfig(hidden=64, num_blocks=3, reconstruct=False)
    """Model hyper-parameters; the output head is set from the task. 3 blocks: the
    drive of a spike source needs BMSA, BMSA, NSA hops to reach its neuron node."""
    batch_size: int = 8
    """Graphs per device per step."""
    num_steps: int = 600
    learning_rate: float = 1e-3
    """Peak learning rate (linear warmup, then cosine decay to 1% of it)."""
    warmup_steps: int = 50
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    normalize_features: bool = True
    """Standardise node features per column with the train split's statistics, stored
    in ``model.feature_shift`` / ``feature_scale`` (so in config.json) at the start."""
    class_weighting: str = "none"
    """'none' or 'balanced' (classification): each item's loss is weighted by the
    train split's n / (C * n_c) for its class, and the best checkpoint is chosen by
    balanced accuracy: for skewed labels (the regime task is 75% one class)."""
    seed: int = 0
    log_every: int = 10
    eval_every: int = 100
    checkpoint_every: int = 100
    keep_checkpoints: int = 3

    def __post_init__(self):
        data_lib.task_of(self.task)
        if self.model_name not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model_name!r}")
        if self.class_weighting not in CLASS_WEIGHTING:
            raise ValueError(f"class_weighting must be one of {CLASS_WEIGHTING}, got "
                             f"{self.class_weighting!r}")
        if self.class_weighting != "none" and data_lib.task_of(self.task).kind != "classification":
            raise ValueError(f"class_weighting={self.class_weighting!r} needs a classification "
                             f"task; {self.task!r} is a regression")
        for name in ("batch_size", "num_steps", "log_every", "eval_every", "checkpoint_every",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict) -> "TrainConfig":
        """Inverse of ``to_dict`` (JSON lists back to tuples); unknown keys are an error."""
        model = {k: tuple(v) if isinstance(v, list) else v for k, v in d.get("model", {}).items()}
        return cls(**{**d, "model": BGANConfig(**model)})


class TrainingDiverged(RuntimeError):
    """Loss or gradients became NaN/Inf; the last good checkpoint is kept."""


# -- model, optimizer, state ---------------------------------------------------

def model_config(config: TrainConfig) -> BGANConfig:
    task = data_lib.task_of(config.task)
    heads = dict(num_node_outputs=task.outputs if task.level == "node" else 0,
                 num_graph_outputs=task.outputs if task.level == "graph" else 0)
    if config.model_name == "transformer":
        heads.update(nsa=False, bmsa=True, plain_attention=True)
    return config.model.replace(**heads)


def with_feature_stats(config: TrainConfig, train: Sequence[data_lib.Example]) -> TrainConfig:
    """The config with the model's feature standardisation set from the train split
    (when ``normalize_features`` and not set already, e.g. by a resumed config)."""
    if not config.normalize_features or config.model.feature_shift:
        return config
    shift, scale = data_lib.feature_stats(train)
    model = config.model.replace(feature_shift=tuple(float(v) for v in shift),
                                 feature_scale=tuple(float(v) for v in scale))
    return dataclasses.replace(config, model=model)


def build_model(config: TrainConfig):
    mc = model_config(config)
    return create_mlp(mc) if config.model_name == "mlp" else create_model(mc)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, min(config.warmup_steps, config.num_steps - 1),
        config.num_steps, end_value=0.01 * config.learning_rate)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip),
                       optax.adamw(schedule, weight_decay=config.weight_decay))


def create_train_state(config: TrainConfig, example_batch) -> train_state.TrainState:
    model = build_model(config)
    params = model.init(jax.random.PRNGKey(config.seed), example_batch)["params"]
    return train_state.TrainState.create(apply_fn=model.apply, params=params,
                                         tx=make_optimizer(config))


# -- losses and steps (pure) ---------------------------------------------------

def batch_stats(params, apply_fn, batch, task: data_lib.Task, rng, train: bool,
                class_weights=None) -> Dict:
    """Sums over the batch's labelled items: loss (weighted by ``class_weights`` [C] of
    each item's class when given), count and the metric's parts (per-class counts
    [C] for balanced accuracy)."""
    out = apply_fn({"params": params}, batch, train=train, rngs={"dropout": rng})
    if task.level == "node":
        pred, y, mask = out["node"], batch.nodes["y"], batch.nodes["y_mask"]  # [N, C], [N]
    else:
        pred, y, mask = out["graph"], batch.globals["y"], batch.globals["y_mask"]  # [G, C]
    w = mask.astype(jnp.float32)
    if task.kind == "classification":
        labels = jnp.where(mask, y, 0).astype(jnp.int32)
        loss = optax.softmax_cross_entropy_with_integer_labels(pred, labels)
        if class_weights is not None:
            loss = loss * jnp.asarray(class_weights)[labels]
        correct = (jnp.argmax(pred, -1) == labels).astype(jnp.float32)
        onehot = jax.nn.one_hot(labels, task.outputs) * w[:, None]  # [items, C]
        return {"loss": jnp.sum(loss * w), "count": jnp.sum(w), "correct": jnp.sum(correct * w),
                "class_count": onehot.sum(0), "class_correct": (onehot * correct[:, None]).sum(0)}
    err = jnp.square(pred[:, 0] - y)
    return {"loss": jnp.sum(err * w), "count": jnp.sum(w), "y": jnp.sum(y * w),
            "y2": jnp.sum(jnp.square(y) * w)}


class TraceCounter:
    """Counts how often a step function is traced (= compiled for a new shape)."""

    def __init__(self):
        self.count = 0


def make_train_step(task: data_lib.Task, axis_name: Optional[str] = None,
                    counter: Optional[TraceCounter] = None, class_weights=None) -> Callable:
    """(state, batch, rng) -> (state, stats). With ``axis_name`` it runs under pmap."""

    def step(state, batch, rng):
        if counter is not None:
            counter.count += 1  # runs only while tracing
        rng = jax.random.fold_in(rng, state.step)
        if axis_name is not None:
            rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))

        def loss_fn(params):
            s = batch_stats(params, state.apply_fn, batch, task, rng, True, class_weights)
            total = s["count"] if axis_name is None else jax.lax.psum(s["count"], axis_name)
            return s["loss"] / jnp.maximum(total, 1.0), s

        grads, s = jax.grad(loss_fn, has_aux=True)(state.params)
        if axis_name is not None:
            grads = jax.lax.psum(grads, axis_name)
            s = jax.lax.psum(s, axis_name)
        s = dict(s, grad_norm=optax.tree.norm(grads))
        return state.apply_gradients(grads=grads), s

    return step


def make_eval_step(task: data_lib.Task) -> Callable:
    return jax.jit(lambda state, batch: batch_stats(state.params, state.apply_fn, batch, task,
                                                    jax.random.PRNGKey(0), False))


def summarize(stats: Dict[str, float], task: data_lib.Task) -> Dict[str, float]:
    """Sums -> mean loss and the task metric (accuracy, or R^2 for regression)."""
    n = max(float(stats["count"]), 1.0)
    out = {"loss": float(stats["loss"]) / n, "count": int(stats["count"])}
    if task.kind == "classification":
        out["accuracy"] = float(stats["correct"]) / n
        seen = np.asarray(stats["class_count"]) > 0  # classes present in this split
        recall = np.asarray(stats["class_correct"])[seen] / np.asarray(stats["class_count"])[seen]
        out["balanced_accuracy"] = float(recall.mean()) if seen.any() else float("nan")
    else:
        var = float(stats["y2"]) - float(stats["y"]) ** 2 / n
        out["r2"] = 1.0 - float(stats["loss"]) / var if var > 0 else float("nan")
    return out


def metric_name(task: data_lib.Task) -> str:
    return "accuracy" if task.kind == "classification" else "r2"


def selection_metric(config: TrainConfig) -> str:
    """The validation metric that picks the best checkpoint."""
    if config.class_weighting == "balanced":
        return "balanced_accuracy"
    return metric_name(data_lib.task_of(config.task))


def evaluate(eval_step, state, examples: Sequence[data_lib.Example], config: TrainConfig,
             task: data_lib.Task, scale) -> Dict[str, float]:
    totals: Dict[str, float] = {}
    for (batch,) in data_lib.batches(examples, config.batch_size, shuffle=False, scale=scale):
        for k, v in eval_step(state, batch).items():
            totals[k] = totals.get(k, 0.0) + np.asarray(v, np.float64)
    return summarize(totals, task) if totals else {"count": 0}


# -- checkpoints ---------------------------------------------------------------

def checkpoint_managers(workdir: Path, config: TrainConfig, metric: str):
    """(latest: keeps the last N, best: keeps the best by validation ``metric``)."""
    sync = dict(enable_async_checkpointing=False, create=True)
    latest = ocp.CheckpointManager(
        (workdir / "checkpoints").absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, **sync))
    best = ocp.CheckpointManager(
        (workdir / "best").absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, best_fn=lambda m: m[metric],
                                             best_mode="max",
                                             keep_checkpoints_without_metrics=False, **sync))
    return latest, best


def _saved(state) -> Dict:
    return {"params": state.params, "opt_state": state.opt_state, "step": state.step}


def restore(manager, state, step: Optional[int] = None):
    step = manager.latest_step() if step is None else step
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _saved(state))
    got = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    return state.replace(params=got["params"], opt_state=got["opt_state"], step=got["step"])


def _shape_batch():
    """A two-node CG: parameter shapes do not depend on the graph, so any batch will do."""
    b = GraphBuilder()
    cls, neuron = b.add_node(NodeKind.CLS, -1, "CLS"), b.add_node(NodeKind.NEURON, 1, "n")
    b.add_edge_pair(neuron, cls, EdgeKind.CLS, True)
    return batch_and_pad([b.finish({})])


class Run(NamedTuple):
    """A trained run loaded back: its config, model, parameters and data directory."""

    config: TrainConfig
    model: Any  # the Flax module (BGAN or a baseline)
    params: Any
    step: int
    data_dir: Optional[Path]  # where it was trained (None for runs older than data.json)


def load_run(workdir) -> Run:
    """The best checkpoint of a ``train.py`` workdir (the latest if none was kept as
    best); raises ``FileNotFoundError`` naming what is missing."""
    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{workdir}: no config.json; is it a train.py --workdir?")
    config = TrainConfig.from_dict(json.loads(config_path.read_text()))
    latest, best = checkpoint_managers(workdir, config, selection_metric(config))
    manager = best if best.latest_step() is not None else latest
    if manager.latest_step() is None:
        raise FileNotFoundError(f"{workdir}: no checkpoint in best/ or checkpoints/")
    model = build_model(config)
    state = create_train_state(config, _shape_batch())  # the structure to restore into
    state = restore(manager, state, manager.latest_step())
    data = workdir / "data.json"
    data_dir = Path(json.loads(data.read_text())["data"]) if data.is_file() else None
    return Run(config, model, state.params, int(state.step), data_dir)


# -- the loop ------------------------------------------------------------------

def log_jsonl(path: Path, entry: Dict) -> None:
    """Append one JSON line (metrics.jsonl)."""
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")


def train_and_evaluate(config: TrainConfig, data_dir, workdir, resume: bool = False,
                       progress: bool = True) -> Dict:
    """Train on the train split, keep the best checkpoint by validation metric, and
    evaluate it on val / test / ood. Returns the final table (also eval.json)."""
    workdir = Path(workdir)
    task = data_lib.task_of(config.task)
    splits = data_lib.load_splits(data_dir, config.task)
    train = splits["train"]
    config = with_feature_stats(config, train)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(config.to_dict(), indent=1, default=str))
    (workdir / "data.json").write_text(json.dumps({"data": str(Path(data_dir).absolute())}))
    scale = data_lib.target_scale(train, task)
    devices = jax.local_device_count()
    steps_per_epoch = len(data_lib.epoch_plan(train, config.batch_size, devices=devices))
    n_buckets = len(data_lib.size_buckets(train, config.batch_size))

    first = next(data_lib.batches(train[:1], config.batch_size, scale=scale))[0]
    state = create_train_state(config, first)
    metric = selection_metric(config)
    latest, best = checkpoint_managers(workdir, config, metric)
    weights = (data_lib.class_weights(train, task) if config.class_weighting == "balanced"
               else None)
    if resume and latest.latest_step() is not None:
        state = restore(latest, state)
    elif not resume and latest.latest_step() is not None:
        raise FileExistsError(f"{workdir} already holds checkpoints; pass --resume to go on "
                              "or choose another --workdir")
    start = int(state.step)

    counter = TraceCounter()
    rng = jax.random.PRNGKey(config.seed + 1)
    if devices > 1:
        step_fn = jax.pmap(make_train_step(task, "devices", counter, weights), axis_name="devices",
                           donate_argnums=(0,))
        state = flax.jax_utils.replicate(state)
        rngs = jax.random.split(rng, devices)
    else:
        step_fn = jax.jit(make_train_step(task, None, counter, weights), donate_argnums=(0,))
    eval_step = make_eval_step(task)
    metrics_path = workdir / "metrics.jsonl"

    def host_state():
        return flax.jax_utils.unreplicate(state) if devices > 1 else state

    bar = tqdm(total=config.num_steps, initial=start, desc="train", disable=not progress,
               unit="step")
    step, t0, graphs_seen, last_good = start, time.time(), 0, latest.latest_step()
    epoch_traces: List[int] = []
    while step < config.num_steps:
        epoch = step // steps_per_epoch
        traces_before = counter.count
        for device_batches in data_lib.batches(  # resumed mid-epoch: skip what was trained
                train, config.batch_size, config.seed, epoch, devices=devices, scale=scale,
                skip=step - epoch * steps_per_epoch):
            if devices > 1:
                batch = jax.tree.map(lambda *xs: np.stack(xs), *device_batches)
                state, s = step_fn(state, batch, rngs)
                s = jax.tree.map(lambda x: x[0], s)
            else:
                state, s = step_fn(state, device_batches[0], rng)
            step += 1
            graphs_seen += sum(int(np.sum(b.globals["valid"])) for b in device_batches)
            loss = float(s["loss"]) / max(float(s["count"]), 1.0)
            if not (np.isfinite(loss) and np.isfinite(float(s["grad_norm"]))):
                bar.close()
                raise TrainingDiverged(
                    f"step {step}: loss {loss} / gradient norm {float(s['grad_norm'])} is not "
                    f"finite; stopped. Last good checkpoint: step {last_good} in "
                    f"{workdir / 'checkpoints'}")
            bar.update(1)
            if step % config.log_every == 0 or step == config.num_steps:
                rate = graphs_seen / max(time.time() - t0, 1e-9)
                bar.set_postfix(loss=f"{loss:.4f}", graphs_per_s=f"{rate:.1f}")
                log_jsonl(metrics_path, {"step": step, "loss": loss,
                                         "grad_norm": float(s["grad_norm"]), "graphs_per_s": rate})
            if step % config.eval_every == 0 or step == config.num_steps:
                val = evaluate(eval_step, host_state(), splits["val"], config, task, scale)
                log_jsonl(metrics_path, {"step": step, "split": "val", **val})
                if metric in val:
                    best.save(step, args=ocp.args.StandardSave(_saved(host_state())),
                              metrics={metric: val[metric]})
            if step % config.checkpoint_every == 0 or step == config.num_steps:
                latest.save(step, args=ocp.args.StandardSave(_saved(host_state())))
                last_good = step
            if step >= config.num_steps:
                break
        epoch_traces.append(counter.count - traces_before)
        log_jsonl(metrics_path, {"epoch": epoch, "compilations": epoch_traces[-1],
                                 "buckets": n_buckets})
    bar.close()
    final = host_state()
    if best.best_step() is not None:
        final = restore(best, final, best.best_step())
    table = {"best_step": best.best_step(), "final_step": step, "task": config.task,
             "model": config.model_name, "compilations": counter.count,
             "splits": {name: evaluate(eval_step, final, exs, config, task, scale)
                        for name, exs in splits.items()}}
    (workdir / "eval.json").write_text(json.dumps(table, indent=1))
    return table


def format_table(table: Dict, task: data_lib.Task) -> str:
    metrics = ["accuracy", "balanced_accuracy"] if task.kind == "classification" else ["r2"]
    lines = [f"{'split':<8}{'labelled':>10}{'loss':>10}" + "".join(f"{m:>19}" for m in metrics)]
    for name, row in table["splits"].items():
        if row.get("count"):
            lines.append(f"{name:<8}{row['count']:>10}{row['loss']:>10.4f}"
                         + "".join(f"{row[m]:>19.4f}" for m in metrics))
    return "\n".join(lines)

