"""BGAN training: TrainConfig, optimizer, pure train/eval steps (jit or pmap), the run.

Losses are sums over labelled items divided by the labelled count of the whole
global batch (``lax.psum`` across devices), and gradients are summed across
devices, so a pmap step over D device batches equals one step over their union
(tests/bgan_jax/bgan/test_train.py checks it with fake CPU devices, and with two
processes through ``jax.distributed``). The loop, checkpoints and run files are
the shared ones of ``bgan_jax.runs``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional, Sequence, Tuple

import flax.jax_utils
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from bgan_jax.bgan import autopath
from bgan_jax.bgan import data as data_lib
from bgan_jax.bgan import losses
from bgan_jax.bgan.baselines import BGAN_MODELS, create_variant, variant_config
from bgan_jax.bgan.config import MECHANISMS, BGANConfig, DatasetStats
from bgan_jax.bgan.compaction import bounds_of, graph_counts
from bgan_jax.runs import distributed
from bgan_jax.runs.checkpoints import Checkpoints
from bgan_jax.runs.config import LoopConfig
from bgan_jax.runs.distributed import is_primary
from bgan_jax.runs.loop import TrainingDiverged, log_jsonl, open_run, train_loop
from bgan_jax.runs.config import ConfigError, from_dict
from bgan_jax.runs.workdir import CONFIG_FILE, RunDirError, read_config, read_data_path, read_json
from graphs.batching import batch_and_pad
from graphs.cg import GraphBuilder
from graphs.schema import EdgeKind, NodeKind

KIND = "bgan"
CLASS_WEIGHTING = ("none", "balanced")
STATS_FILE = "stats.json"  # the run's DatasetStats, beside config.json
LEGACY_STATS = ("feature_shift", "feature_scale", "pair_fractions", "pair_counts",
                "node_fractions", "node_counts", "shape_capacities")  # model fields until 2026-12
__all__ = ["TrainConfig", "TrainingDiverged", "train_and_evaluate", "load_run", "BGAN_MODELS"]


@dataclasses.dataclass(frozen=True)
class TrainConfig(LoopConfig):
    """Everything a BGAN run depends on; saved as ``config.json`` in the workdir. The
    budget and cadence fields (num_steps 600, seed, log/eval/checkpoint_every,
    keep_checkpoints) come from ``runs.LoopConfig``."""

    task: str = "firing_pattern"
    """One of bgan_jax.bgan.data.TASKS: firing_pattern, regime, stdp_dw, planted (generated
    networks); etype, efeatures, dendrite_type (real-cell datasets)."""
    model_name: str = "bgan"
    """bgan, mlp (node features only) or transformer (BGAN blocks, plain neighbourhood
    attention instead of the NSA/BMSA masks)."""
    model: BGANConfig = BGANConfig()
    """Model hyper-parameters (``config.PRESETS``); the output head is set from the task."""
    batch_size: int = 8
    """Graphs per device per step."""
    padding: str = "bucket"
    """How batches are padded (``data.PADDING``): 'bucket', one shape per power-of-two
    size class (fewest compilations); 'tight', less padding, more graphs/s, ~2.5x the
    compilations: for long runs."""
    learning_rate: float = 1e-3
    """Peak learning rate (linear warmup, then cosine decay to 1% of it)."""
    warmup_steps: int = 50
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    normalize_features: bool = True
    """Standardise node features per column with the train split's statistics
    (``DatasetStats``, measured at the start and saved as the run's stats.json)."""
    class_weighting: str = "none"
    """'none' or 'balanced' (classification): each item's loss is weighted by the
    train split's n / (C * n_c) for its class, and the best checkpoint is chosen by
    balanced accuracy: for skewed labels (the regime task is 75% one class)."""
    variant_pair_weight: float = 0.0
    """Weight of the within-family difference loss (``losses.family_pair_terms``, graph
    regression on a real-cell dataset with variants): > 0 also batches each cell with
    its variants, and adds weight * the squared error of (variant - cell) differences
    to the loss, so the model is asked what a density change does, not only where a cell
    sits among cells."""
    skip_damaged: bool = False
    """Train without the dataset's damaged graph files (each named on stderr and listed in
    eval.json) instead of refusing the dataset."""

    @staticmethod
    def upgrade(saved: Dict) -> Dict:
        """A config.json of an earlier version in today's fields: the measured fields
        leave the model (``read_stats`` reads them), the backend switches go to
        ``model.backend``, ``variant_pairs`` is ``variant_pair_weight``."""
        d = dict(saved)
        if "variant_pairs" in d:
            d["variant_pair_weight"] = d.pop("variant_pairs")
        if isinstance(d.get("model"), dict):
            model = {k: v for k, v in d["model"].items() if k not in LEGACY_STATS}
            backend = {k: model.pop(k) for k in ("pair_chunk", "cpu_kernel") if k in model}
            if backend:
                model["backend"] = {**model.get("backend", {}), **backend}
            d["model"] = model
        return d

    def __post_init__(self):
        super().__post_init__()
        data_lib.task_of(self.task)
        if self.model_name not in BGAN_MODELS:
            raise ValueError(f"model must be one of {BGAN_MODELS}, got {self.model_name!r}")
        if self.class_weighting not in CLASS_WEIGHTING:
            raise ValueError(f"class_weighting must be one of {CLASS_WEIGHTING}, got "
                             f"{self.class_weighting!r}")
        if self.class_weighting != "none" and data_lib.task_of(self.task).kind != "classification":
            raise ValueError(f"class_weighting={self.class_weighting!r} needs a classification "
                             f"task; {self.task!r} is a regression")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.variant_pair_weight < 0:
            raise ValueError(f"variant_pair_weight must be >= 0, got {self.variant_pair_weight}")
        if self.variant_pair_weight and not (data_lib.task_of(self.task).kind == "regression"
                                       and data_lib.task_of(self.task).level == "graph"):
            raise ValueError(f"variant_pair_weight needs a graph regression task; {self.task!r} "
                             "is not one")
        if self.padding not in data_lib.PADDING:
            raise ValueError(f"padding must be one of {sorted(data_lib.PADDING)}, got "
                             f"{self.padding!r}")


# -- model, optimizer, state ---------------------------------------------------

def model_config(config: TrainConfig) -> BGANConfig:
    """The model config with the output head the task needs."""
    task = data_lib.task_of(config.task)
    return config.model.replace(num_node_outputs=task.outputs if task.level == "node" else 0,
                                num_graph_outputs=task.outputs if task.level == "graph" else 0)


def measure_stats(config: TrainConfig, splits: Sequence[Sequence[data_lib.Example]],
                  devices: int = 1, chunk: int = 64) -> DatasetStats:
    """What the run measures on its data (``splits``: each list of examples it batches
    on its own, the training split first): the feature standardisation from the train
    split (with ``normalize_features``), and each mechanism's compaction bounds over
    every graph the run will see, with per-shape capacities for those splits' size
    buckets (``bucket_capacities``), so each mechanism runs on its own rows and nodes."""
    stats, train = DatasetStats(), splits[0] if splits else []
    if config.normalize_features and train:
        shift, scale = data_lib.feature_stats(train, log_densities=config.model.log_densities)
        stats = stats.replace(feature_shift=tuple(float(v) for v in shift),
                              feature_scale=tuple(float(v) for v in scale))
    examples = [e for split in splits for e in split]
    if not examples:
        return stats
    graphs = (batch_and_pad([e.cg for e in examples[i:i + chunk]])
              for i in range(0, len(examples), chunk))
    counts = graph_counts(graphs, variant_config(config.model_name, model_config(config)))
    shapes = bucket_capacities(splits, counts, config.batch_size, config.padding, devices)
    return stats.replace(compaction=bounds_of(counts, shapes))


def bucket_capacities(splits: Sequence[Sequence[data_lib.Example]], counts: Dict,
                      batch_size: int, padding: str, devices: int = 1
                      ) -> Dict[str, Tuple[Tuple[int, int, int, int], ...]]:
    """Per mechanism, ``MechanismBounds.shapes`` for the batches ``data.batches`` forms from each
    split (training on ``devices`` devices, evaluation on one onto the training split's
    shapes, ``run_shapes``): per padded shape, each mechanism's rows and nodes summed
    over the k largest of its bucket's graphs (k the graphs a batch of that shape
    holds), the largest over buckets sharing the shape. ``splits[0]`` is the training
    split; ``counts``: ``compaction.graph_counts`` of the splits' examples, in order."""
    rows, nodes = counts["edges"][0], counts["nodes"][0]  # [M, 4] each
    table: Dict[Tuple[int, int], np.ndarray] = {}
    ours = run_shapes(splits[0], batch_size, devices, padding) if splits else ()
    start = 0
    for split in splits:
        for d in sorted({1, devices}):
            for bucket in data_lib.size_buckets(split, batch_size, d, padding):
                members = start + bucket.members
                rest = len(bucket.members) % (batch_size * d)
                for shape, k in (((bucket.n_node, bucket.n_edge), batch_size),
                                 (bucket.last, min(rest, batch_size))):
                    if shape is None:
                        continue
                    shape = data_lib.reuse_shape(shape, ours, padding)  # training: itself
                    top = [np.sort(a[members], axis=0)[::-1][:k].sum(axis=0)
                           for a in (rows, nodes)]
                    caps = np.maximum(np.concatenate(top), 1).astype(int)
                    table[shape] = np.maximum(table.get(shape, caps), caps)
        start += len(split)
    k = len(MECHANISMS)  # caps: [rows of each mechanism..., nodes of each...]
    return {m: tuple((n, e, int(caps[i]), int(caps[k + i])) for (n, e), caps in sorted(table.items()))
            for i, m in enumerate(MECHANISMS)}


def run_shapes(train: Sequence[data_lib.Example], batch_size: int, devices: int,
               padding: str) -> Tuple[Tuple[int, int], ...]:
    """The padded shapes a run's training batches take; its evaluation batches take
    these too where ``data.reuse_shape`` finds one, so they compile no step of their own."""
    return tuple(sorted(data_lib.bucket_shapes(train, batch_size, devices, padding)))


def build_model(config: TrainConfig, stats: DatasetStats = DatasetStats()):
    """BGAN or the baseline ``model_name`` names (``baselines.create_variant``)."""
    return create_variant(config.model_name, model_config(config), stats)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, min(config.warmup_steps, config.num_steps - 1),
        config.num_steps, end_value=0.01 * config.learning_rate)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip),
                       optax.adamw(schedule, weight_decay=config.weight_decay))


def create_train_state(config: TrainConfig, example_batch,
                       stats: DatasetStats = DatasetStats()) -> train_state.TrainState:
    model = build_model(config, stats)
    # one compiled init instead of hundreds of eager ops (20 s -> 2 s on CPU)
    params = jax.jit(model.init)(jax.random.PRNGKey(config.seed), example_batch)["params"]
    return train_state.TrainState.create(apply_fn=model.apply, params=params,
                                         tx=make_optimizer(config))


# -- losses and steps (pure) ---------------------------------------------------

def batch_stats(params, apply_fn, batch, task: data_lib.Task, rng, train: bool,
                class_weights=None, pair_weight: float = 0.0) -> Dict:
    """Sums over the batch's labelled items: loss (weighted by ``class_weights`` [C] of
    each item's class when given; plus ``pair_weight`` times the within-family
    difference error, graph regression), count and the metric's parts (per-class counts
    [C] for balanced accuracy; per-target sums [T] for R^2)."""
    out = apply_fn({"params": params}, batch, train=train, rngs={"dropout": rng})
    if task.level == "node":
        pred, y, mask = out["node"], batch.nodes["y"][:, None], batch.nodes["y_mask"][:, None]
    else:
        pred, y, mask = out["graph"], batch.globals["y"], batch.globals["y_mask"]  # [G, C|T]
    w = mask.astype(jnp.float32)  # [items, T]
    if task.kind == "classification":
        y, mask, w = y[:, 0], mask[:, 0], w[:, 0]
        labels = jnp.where(mask, y, 0).astype(jnp.int32)
        hit = losses.correct_terms(pred, labels, mask)  # [items]
        onehot = jax.nn.one_hot(labels, task.outputs) * w[:, None]  # [items, C]
        return {"loss": jnp.sum(losses.classification_terms(pred, labels, mask, class_weights)),
                "count": jnp.sum(w), "correct": jnp.sum(hit), "class_count": onehot.sum(0),
                "class_correct": (onehot * hit[:, None]).sum(0)}
    err = jnp.where(mask, jnp.square(pred[:, :task.width] - y), 0.0)  # [items, T]
    out = {"loss": jnp.sum(err), "count": jnp.sum(w), "target_loss": err.sum(0),
           "target_count": w.sum(0), "y": jnp.sum(y * w, 0), "y2": jnp.sum(jnp.square(y) * w, 0)}
    if pair_weight:
        pair, pairs = losses.family_pair_terms(pred[:, :task.width], y, mask,
                                               batch.globals["family"], batch.globals["valid"])
        out = dict(out, loss=out["loss"] + pair_weight * pair, pair_loss=pair, pairs=pairs)
    return out


class TraceCounter:
    """Counts how often a step function is traced (= compiled for a new shape)."""

    def __init__(self):
        self.count = 0


def make_train_step(task: data_lib.Task, axis_name: Optional[str] = None,
                    counter: Optional[TraceCounter] = None, class_weights=None,
                    apply_fn: Optional[Callable] = None, pair_weight: float = 0.0) -> Callable:
    """(state, batch, rng) -> (state, stats). With ``axis_name`` it runs under pmap;
    ``apply_fn`` (same parameters) replaces ``state.apply_fn``: another attention path;
    ``pair_weight``: ``TrainConfig.variant_pair_weight``."""

    def step(state, batch, rng):
        if counter is not None:
            counter.count += 1  # runs only while tracing
        rng = jax.random.fold_in(rng, state.step)
        if axis_name is not None:
            rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))

        def loss_fn(params):
            s = batch_stats(params, apply_fn or state.apply_fn, batch, task, rng, True,
                            class_weights, pair_weight)
            total = s["count"] if axis_name is None else jax.lax.psum(s["count"], axis_name)
            return s["loss"] / jnp.maximum(total, 1.0), s

        grads, s = jax.grad(loss_fn, has_aux=True)(state.params)
        if axis_name is not None:
            grads = jax.lax.psum(grads, axis_name)
            s = jax.lax.psum(s, axis_name)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(s["loss"]) & jnp.isfinite(grad_norm)
        return state.apply_gradients(grads=grads), dict(s, grad_norm=grad_norm, finite=finite)

    return step


def make_eval_step(task: data_lib.Task) -> Callable:
    return jax.jit(lambda state, batch: batch_stats(state.params, state.apply_fn, batch, task,
                                                    jax.random.PRNGKey(0), False))


def summarize(stats: Dict[str, float], task: data_lib.Task) -> Dict[str, float]:
    """Sums -> mean loss and the task metric (accuracy, or R^2 for regression: the mean
    over targets of each one's R^2, also given per target as ``r2/<name>``)."""
    n = max(float(stats["count"]), 1.0)
    out = {"loss": float(stats["loss"]) / n, "count": int(stats["count"])}
    if task.kind == "classification":
        out["accuracy"] = float(stats["correct"]) / n
        seen = np.asarray(stats["class_count"]) > 0  # classes present in this split
        recall = np.asarray(stats["class_correct"])[seen] / np.asarray(stats["class_count"])[seen]
        out["balanced_accuracy"] = float(recall.mean()) if seen.any() else float("nan")
        return out
    counts = np.asarray(stats["target_count"], np.float64).reshape(-1)  # [T]
    var = (np.asarray(stats["y2"], np.float64).reshape(-1)
           - np.asarray(stats["y"], np.float64).reshape(-1) ** 2 / np.maximum(counts, 1.0))
    sse = np.asarray(stats["target_loss"], np.float64).reshape(-1)
    r2 = np.where(var > 0, 1.0 - sse / np.where(var > 0, var, 1.0), np.nan)  # [T]
    out["r2"] = float(np.nanmean(r2)) if np.isfinite(r2).any() else float("nan")
    if task.targets:
        out.update({f"r2/{name}": float(v) for name, v in zip(task.targets, r2)})
    return out


def metric_name(task: data_lib.Task) -> str:
    return "accuracy" if task.kind == "classification" else "r2"


def selection_metric(config: TrainConfig) -> str:
    """The validation metric that picks the best checkpoint."""
    if config.class_weighting == "balanced":
        return "balanced_accuracy"
    return metric_name(data_lib.task_of(config.task))


def evaluate(eval_step, state, examples: Sequence[data_lib.Example], config: TrainConfig,
             task: data_lib.Task, scale, shapes: Sequence[Tuple[int, int]] = ()
             ) -> Dict[str, float]:
    """Metrics over ``examples``; batches take ``shapes`` (``run_shapes``) where they fit."""
    totals: Dict[str, float] = {}
    for (batch,) in data_lib.batches(examples, config.batch_size, shuffle=False, scale=scale,
                                     padding=config.padding, shapes=shapes):
        for k, v in eval_step(state, batch).items():
            totals[k] = totals.get(k, 0.0) + np.asarray(v, np.float64)
    return summarize(totals, task) if totals else {"count": 0}


# -- the run -------------------------------------------------------------------

def _saved(state) -> Dict:
    """What a checkpoint holds: enough to go on bit-exactly."""
    return {"params": state.params, "opt_state": state.opt_state, "step": state.step}


def _restored(state, tree):
    return state.replace(params=tree["params"], opt_state=tree["opt_state"], step=tree["step"])


def _shape_batch():
    """A two-node CG: parameter shapes do not depend on the graph, so any batch will do."""
    b = GraphBuilder()
    cls, neuron = b.add_node(NodeKind.CLS, -1, "CLS"), b.add_node(NodeKind.NEURON, 1, "n")
    b.add_edge_pair(neuron, cls, EdgeKind.CLS, True)
    return batch_and_pad([b.finish({})])


class Run(NamedTuple):
    """A trained run loaded back: its config, measured stats, model, parameters and data."""

    config: TrainConfig
    stats: DatasetStats  # what the run measured on its data (stats.json)
    model: Any  # the Flax module (BGAN or a baseline)
    params: Any
    step: int
    data_dir: Optional[Path]  # where it was trained (None when data.json is missing)


def write_stats(workdir, stats: DatasetStats) -> None:
    """The run's ``DatasetStats`` as stats.json (process 0)."""
    if is_primary():
        (Path(workdir) / STATS_FILE).write_text(json.dumps(dataclasses.asdict(stats), indent=1))


def read_stats(workdir) -> Optional[DatasetStats]:
    """The ``DatasetStats`` a run saved (stats.json, or the model fields of an earlier
    version's config.json), None when it has none; a damaged file is a ``RunDirError``."""
    workdir = Path(workdir)
    if (workdir / STATS_FILE).is_file():
        try:
            return from_dict(DatasetStats, read_json(workdir / STATS_FILE), "stats")
        except ConfigError as err:
            raise RunDirError(f"{workdir / STATS_FILE}: {err}") from None
    saved = read_json(workdir / CONFIG_FILE) if (workdir / CONFIG_FILE).is_file() else {}
    model = saved.get("model") if isinstance(saved, dict) else None
    if not isinstance(model, dict) or not model.get("feature_shift") and not model.get(
            "pair_fractions"):
        return None
    return legacy_stats(model)


LEGACY_MECHANISMS = ("ganlow", "ganup", "mask_a", "mask_b")
"""The mechanisms, in order, of a config.json that held the measured fields (a later
mechanism gets the default bounds)."""


def legacy_stats(model: Dict) -> DatasetStats:
    """``DatasetStats`` from an earlier version's model fields (positional per mechanism,
    in ``LEGACY_MECHANISMS`` order; shape capacities as (n_node, n_edge, rows..., nodes...))."""
    k, fields = len(LEGACY_MECHANISMS), {}
    if model.get("pair_fractions"):
        caps = model.get("shape_capacities") or []
        fields["compaction"] = {m: {
            "pair_fraction": model["pair_fractions"][i],
            "pair_counts": (model.get("pair_counts") or [[]] * k)[i],
            "node_fraction": (model.get("node_fractions") or [1.0] * k)[i],
            "node_counts": (model.get("node_counts") or [[]] * k)[i],
            "shapes": [[c[0], c[1], c[2 + i], c[2 + k + i]] for c in caps]}
            for i, m in enumerate(LEGACY_MECHANISMS)}
    return from_dict(DatasetStats, dict(fields, feature_shift=model.get("feature_shift") or [],
                                        feature_scale=model.get("feature_scale") or []),
                     "stats")


def load_run(workdir) -> Run:
    """The best checkpoint of a ``train.py`` workdir (the latest if none was kept as
    best); raises ``RunDirError`` / ``CheckpointError`` naming what is missing or damaged."""
    config = read_config(workdir, TrainConfig)
    stats = read_stats(workdir) or DatasetStats()
    state = create_train_state(config, _shape_batch(), stats)  # the structure to restore into
    ckpts = Checkpoints(workdir, config.keep_checkpoints, selection_metric(config))
    _, tree = ckpts.restore_best(_saved(state))
    state = _restored(state, tree)
    # The read-out model runs over all edge rows and nodes: it may be given graphs the
    # run never saw, which its measured bounds need not hold (same numbers).
    return Run(config, stats, build_model(config, stats.replace(compaction=None)),
               state.params, int(state.step), read_data_path(workdir, must_exist=False))


def _epochs(train, config: TrainConfig, start: int, steps_per_epoch: int, scale,
            counter: "TraceCounter", n_buckets: int, metrics_path: Path) -> Iterator:
    """Every step's device batches from ``start`` on, epoch after epoch (a pure function
    of seed and epoch: a resumed run sees the batches the interrupted one would have).
    The plan is made for all ``jax.device_count()`` devices; this process builds its own
    ``distributed.local_slots()``. After each epoch: its compile count in metrics.jsonl."""
    for epoch in itertools.count(start // steps_per_epoch):
        traces = counter.count
        skip = start - epoch * steps_per_epoch if epoch == start // steps_per_epoch else 0
        try:
            yield from data_lib.batches(train, config.batch_size, config.seed, epoch,
                                        devices=jax.device_count(), scale=scale, skip=skip,
                                        slots=distributed.local_slots(),
                                        padding=config.padding,
                                        families=config.variant_pair_weight > 0)
        finally:  # also when the run stops inside the epoch (the generator is closed)
            log_jsonl(metrics_path, {"epoch": epoch, "compilations": counter.count - traces,
                                     "buckets": n_buckets})


class Stepper(NamedTuple):
    """How a run takes its training steps."""

    state: Any  # the train state placed for ``step`` (replicated under pmap)
    step: Callable  # (state, one step's device batches) -> (state, stats)
    host: Callable  # state -> the train state on the host, one copy


def make_stepper(config: TrainConfig, stats: DatasetStats, task: data_lib.Task, state, train,
                 counter, weights, rng, workdir: Path) -> Stepper:
    """The step of a run: ``jax.pmap`` over all devices when there are several; else one
    jitted step, or with ``attention='auto'`` the faster path per bucket (``autopath``)."""
    devices = jax.device_count()
    if devices > 1:
        pmapped = jax.pmap(make_train_step(task, "devices", counter, weights,
                                           pair_weight=config.variant_pair_weight),
                           axis_name="devices", donate_argnums=(0,))
        rngs = jax.random.split(rng, devices)[np.asarray(distributed.local_slots())]

        def pmap_step(state, device_batches):
            batch = jax.tree.map(lambda *xs: np.stack(xs), *device_batches)
            state, s = pmapped(state, batch, rngs)
            return state, jax.tree.map(lambda x: x[0], s)

        return Stepper(flax.jax_utils.replicate(state), pmap_step, flax.jax_utils.unreplicate)

    def step_for(model: Optional[BGANConfig] = None):
        apply_fn = (None if model is None
                    else create_variant(config.model_name, model, stats).apply)
        return jax.jit(make_train_step(task, None, counter, weights, apply_fn,
                                       config.variant_pair_weight), donate_argnums=(0,))

    if config.model.attention == "auto" and config.model_name != "mlp":
        jitted = autopath.make_auto_step(
            step_for, model_config(config),
            data_lib.bucket_shapes(train, config.batch_size, 1, config.padding),
            autopath.measures_here(), log=lambda e: log_jsonl(workdir / "metrics.jsonl", e))
    else:
        jitted = step_for()
    return Stepper(state, lambda state, device_batches: jitted(state, device_batches[0], rng),
                   lambda state: state)


def describe_step(s: Dict) -> Dict[str, float]:
    """The per-step numbers the progress bar and metrics.jsonl show."""
    out = {"loss": float(s["loss"]) / max(float(s["count"]), 1.0),
           "grad_norm": float(s["grad_norm"])}
    if "pairs" in s:  # variant_pair_weight: the difference error per (pair, target), apart
        out["pair_loss"] = float(s["pair_loss"]) / max(float(s["pairs"]), 1.0)
    return out


def train_and_evaluate(config: TrainConfig, data_dir, workdir, resume: bool = False,
                       progress: bool = True) -> Dict:
    """Train on the train split, keep the best checkpoint by validation metric, and
    evaluate it on val / test / ood. Returns the final table (also eval.json)."""
    workdir = Path(workdir)
    task = data_lib.task_of(config.task)
    damaged = [] if config.skip_damaged else None  # None: a damaged dataset is refused
    splits = data_lib.load_splits(data_dir, config.task, damaged=damaged)
    if damaged and is_primary():
        print(f"skipping {len(damaged)} damaged graph file(s): " + "; ".join(
            f"{f} ({why})" for f, why in damaged), file=sys.stderr, flush=True)
    train = splits["train"]
    saved = read_stats(workdir) if resume else None  # a resumed run reads as it did
    stats = saved or measure_stats(config, list(splits.values()), jax.device_count())
    scale = data_lib.target_scale(train, task)
    devices = jax.device_count()  # all processes' devices: the global batch
    steps_per_epoch = len(data_lib.epoch_plan(train, config.batch_size, devices=devices,
                                              padding=config.padding))
    shapes = run_shapes(train, config.batch_size, devices, config.padding)
    n_buckets = len(shapes)

    first = next(data_lib.batches(train[:1], config.batch_size, scale=scale))[0]
    state = create_train_state(config, first, stats)
    metric = selection_metric(config)
    ckpts = Checkpoints(workdir, config.keep_checkpoints, metric)
    _, restored = open_run(workdir, KIND, config, data_dir, ckpts, _saved(state), resume)
    write_stats(workdir, stats)
    state = _restored(state, restored)
    weights = (data_lib.class_weights(train, task) if config.class_weighting == "balanced"
               else None)
    start = int(state.step)

    counter = TraceCounter()
    state, step_fn, host_state = make_stepper(config, stats, task, state, train, counter,
                                              weights, jax.random.PRNGKey(config.seed + 1),
                                              workdir)
    eval_step = make_eval_step(task)

    metrics_path = workdir / "metrics.jsonl"
    batches = _epochs(train, config, start, steps_per_epoch, scale, counter, n_buckets,
                      metrics_path)
    try:
        result = train_loop(
            state, step_fn, batches, config=config, start=start, checkpoints=ckpts,
            savable=lambda s: _saved(host_state(s)), metrics_path=metrics_path,
            evaluate=lambda s: evaluate(eval_step, host_state(s), splits["val"], config, task,
                                        scale, shapes),
            select=metric, describe=describe_step, rate_name="graphs_per_s",
            items=lambda bs: sum(int(np.sum(b.globals["valid"])) for b in bs),
            progress=progress, desc="train")
    finally:
        batches.close()
    final = host_state(result.state)
    if result.best_step is not None:
        final = _restored(final, ckpts.restore_best(_saved(final))[1])
    table = {"best_step": result.best_step, "final_step": result.step, "task": config.task,
             "model": config.model_name, "compilations": counter.count,
             "skipped": [f for f, _ in damaged or []],
             "splits": {name: evaluate(eval_step, final, exs, config, task, scale, shapes)
                        for name, exs in splits.items()}}
    if is_primary():
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

