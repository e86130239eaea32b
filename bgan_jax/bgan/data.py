"""Labelled CG datasets -> padded, bucketed ``jraph.GraphsTuple`` batches for training.

A dataset directory is what ``bnnsim.dataset.build_dataset`` (or
``python -m bnnsim synth``) writes: ``graphs/*.npz`` CGs with labels in
``meta["labels"]`` and ``report.json`` with every network's split. A task picks
one label and where it lives:

* ``firing_pattern``: node classification on neuron nodes;
* ``regime``: graph classification (read out at the CLS node);
* ``stdp_dw``: node regression on plastic synapse nodes (STDP weight change),
  standardised with the train split's mean and std;
* ``planted``: graph classification (low / high) of a planted-correlation dataset
  (``bnnsim.planted``), the ground truth of the analysis.

Real-cell datasets (``python -m bnnsim cells``; ``report.json`` lists ``cells``
and ``variants``, every variant in its source cell's split) have graph tasks:

* ``etype``: the firing class (``bnnsim.ephys.etype.ETYPES``);
* ``efeatures``: the e-features of ``bnnsim.ephys.targets`` in one head (one
  output per target, each standardised with the train split's mean and std; a
  target a cell does not define is masked);
* ``dendrite_type``: the Allen authors' spiny / aspiny (cells without it, and
  the two "sparsely spiny" ones, are unlabelled and left out).

Batches carry the targets as extra fields: ``nodes["y"]`` / ``nodes["y_mask"]``
and ``globals["y"]`` / ``globals["y_mask"]`` ([G, T]: T targets, 1 for a class
index; padding: mask False).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import jraph
import numpy as np

from bgan_jax.bgan import inputs
from bnnsim.ephys.etype import ETYPES
from bnnsim.ephys.targets import TARGET_NAMES, target_vector
from bnnsim.labels import FIRING_PATTERNS, REGIMES
from bnnsim.planted import LABELS as PLANTED_LABELS
from bgan_jax.runs.workdir import read_json
from graphs import load_cg
from graphs.errors import GraphFileError
from graphs.batching import batch_graphs, bucket_size, pad_to_bucket
from graphs.cg import CG
from graphs.schema import NODE_COLUMNS, SCHEMA_VERSION, NodeKind


def _neurons(cg: CG) -> np.ndarray:
    return cg.node_kind == NodeKind.NEURON


def _plastic_synapses(cg: CG) -> np.ndarray:
    return (cg.node_kind == NodeKind.SYNAPSE) & (cg.feature("syn_plastic") > 0)


def _efeatures(labels: dict) -> Tuple[np.ndarray, np.ndarray]:
    return target_vector(labels.get("efeatures") or {})


class Task(NamedTuple):
    """A learning task: what it predicts, where, and how it reads a CG's labels."""

    name: str  # the label it reads (``cg.meta["labels"][name]``)
    level: str  # "node" or "graph"
    kind: str  # "classification" or "regression"
    classes: Tuple[str, ...] = ()  # class names; () for regression
    targets: Tuple[str, ...] = ()  # names of a multi-output regression's targets
    read: Optional[Callable[[dict], Tuple[np.ndarray, np.ndarray]]] = None
    """A graph task's reader: labels -> ([T] values, [T] known); None: the label named
    like the task, a class index, class name or value."""
    carriers: Callable[[CG], np.ndarray] = _neurons
    """A node task's nodes on a CG without labels: [N] bool (default: the neurons)."""

    @property
    def outputs(self) -> int:
        return len(self.classes) or len(self.targets) or 1

    @property
    def width(self) -> int:
        """T: target values per labelled item (1 for a class index)."""
        return len(self.targets) or 1

    def graph_target(self, labels: dict) -> Tuple[np.ndarray, np.ndarray]:
        """([T] values, [T] known) of a graph task from a CG's labels."""
        if self.read is not None:
            return self.read(labels)
        raw = labels.get(self.name)
        if isinstance(raw, str):  # a class name (the authors' dendrite type)
            if raw not in self.classes:
                raise Unlabelled(f"{self.name} {raw!r} is none of {self.classes}")
            raw = self.classes.index(raw)
        if raw is None:
            raise Unlabelled(f"no {self.name!r} value")
        return np.array([raw], np.float32), np.ones(1, bool)

    def node_targets(self, raw: Sequence) -> Tuple[np.ndarray, np.ndarray]:
        """([N] values, [N] labelled) of a node task from its per-node label list: None
        (or a negative class index) marks a node without a label."""
        mask = np.array([v is not None and (self.kind != "classification" or v >= 0)
                         for v in raw], bool)
        y = np.array([v if v is not None else 0.0 for v in raw], np.float32)
        return np.where(mask, y, 0.0).astype(np.float32), mask

    def nodes(self, cg: CG) -> np.ndarray:
        """[N] bool: the nodes a node task predicts on ``cg``: its labelled ones if the CG
        has labels for it, else ``carriers``."""
        raw = (cg.meta.get("labels") or {}).get(self.name)
        return self.node_targets(raw)[1] if isinstance(raw, list) else self.carriers(cg)


TASKS: Dict[str, Task] = {t.name: t for t in (
    Task("firing_pattern", "node", "classification", FIRING_PATTERNS),
    Task("regime", "graph", "classification", REGIMES),
    Task("stdp_dw", "node", "regression", carriers=_plastic_synapses),
    Task("planted", "graph", "classification", PLANTED_LABELS),  # bnnsim.planted datasets
    Task("etype", "graph", "classification", ETYPES),  # real-cell datasets (bnnsim.ephys)
    Task("efeatures", "graph", "regression", targets=TARGET_NAMES, read=_efeatures),
    Task("dendrite_type", "graph", "classification", ("aspiny", "spiny")),
)}


class DatasetError(ValueError):
    """A dataset directory that cannot be used for training (missing files, no labels)."""


class DamagedDataset(DatasetError):
    """Graph files of a dataset that are missing, damaged or unlabelled: every one named."""

    def __init__(self, root, damaged: Sequence[Tuple[str, str]]):
        self.root, self.damaged = Path(root), list(damaged)
        shown = "; ".join(f"{name} ({problem})" for name, problem in self.damaged)
        super().__init__(f"{root}: {len(self.damaged)} damaged graph file(s): {shown}. Rebuild "
                         "them, or train without them with --set skip_damaged=true")


@dataclasses.dataclass(frozen=True)
class Example:
    cg: CG
    node_y: np.ndarray  # [N] f32 target (class index or value)
    node_mask: np.ndarray  # [N] bool, which nodes carry the target
    graph_y: np.ndarray  # [T] f32 graph target(s)
    graph_mask: np.ndarray  # [T] bool, which are known
    name: str
    family: str = ""  # the source cell of a real-cell variant (its own name for a cell)

    @property
    def family_key(self) -> str:
        """What family batches and the difference loss group by (the name if no family)."""
        return self.family or self.name


def task_of(name: str) -> Task:
    if name not in TASKS:
        raise DatasetError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name]


class Unlabelled(DatasetError):
    """A graph that carries no value for this task (e.g. a non-Allen cell for
    ``dendrite_type``): left out of the task, not a damaged file."""


def _example(cg: CG, task_name: str, name: str) -> Example:
    labels = cg.meta.get("labels")
    task = task_of(task_name)
    if labels is None or task_name not in labels:
        raise DatasetError(f"{name}: the CG has no {task_name!r} label")
    n = cg.n_nodes
    if task.level == "graph":
        y, known = task.graph_target(labels)
        if not known.any():
            raise Unlabelled(f"{name}: no {task_name!r} target is defined")
        return Example(cg, np.zeros(n, np.float32), np.zeros(n, bool), y, known, name)
    y, mask = task.node_targets(labels[task_name])
    return Example(cg, y, mask, np.zeros(task.width, np.float32), np.zeros(task.width, bool),
                   name)


def _rows(root: Path) -> List[dict]:
    """report.json's network rows, after checking report.json and manifest.json."""
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset directory")
    report, manifest = root / "report.json", root / "manifest.json"
    if not report.is_file():
        raise DatasetError(f"{root}: no report.json; build a dataset with `python -m bnnsim "
                           "synth --out DIR` or omit --data to use the default one")
    rows = read_json(report, DatasetError)
    if isinstance(rows, dict) and "cells" in rows:  # a real-cell dataset (bnnsim.ephys)
        rows = [dict(r, status="ok" if r.get("characterised") else r.get("status"))
                for r in (rows.get("cells") or []) + (rows.get("variants") or [])]
    else:
        rows = rows.get("networks") if isinstance(rows, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"{report}: no list of networks; not a dataset report")
    if not manifest.is_file():
        raise DatasetError(f"{root}: no manifest.json (the schema the graphs were built "
                           "with); the dataset is incomplete")
    version = read_json(manifest, DatasetError)
    version = version.get("schema_version") if isinstance(version, dict) else None
    if version != SCHEMA_VERSION:
        raise DatasetError(f"{manifest}: graphs built with schema {version!r}, this library "
                           f"reads {SCHEMA_VERSION!r}; build the dataset again")
    return rows


def load_splits(data_dir, task_name: str, splits: Sequence[str] = ("train", "val", "test", "ood"),
                damaged: Optional[List[Tuple[str, str]]] = None) -> Dict[str, List[Example]]:
    """Every labelled network of the dataset, per split (from ``report.json``). Every
    graph file is checked before anything is returned: a missing, damaged or
    unlabelled one raises ``DamagedDataset`` naming all of them, or, when a ``damaged``
    list is given, is appended to it as (file, problem) and left out."""
    task_of(task_name)
    root = Path(data_dir)
    out: Dict[str, List[Example]] = {s: [] for s in splits}
    bad: List[Tuple[str, str]] = []
    for row in _rows(root):
        if row.get("status") != "ok" or row.get("split") not in out:
            continue
        if not isinstance(row.get("npz"), str):
            bad.append((str(row.get("file")), "its report row names no graph file"))
            continue
        npz = root / "graphs" / Path(row["npz"]).name  # the dataset may have moved
        try:
            ex = _example(load_cg(npz), task_name, npz.stem)
            family = row.get("variant_of") or row.get("name") or npz.stem
            out[row["split"]].append(dataclasses.replace(ex, family=str(family)))
        except Unlabelled:  # no value for this task: not part of it
            continue
        except GraphFileError as err:
            bad.append((str(npz), err.problem))
        except DatasetError as err:  # no label for this task
            bad.append((str(npz), str(err).split(": ", 1)[-1]))
    if bad and damaged is None:
        raise DamagedDataset(root, bad)
    if damaged is not None:
        damaged.extend(bad)
    if not out.get("train") and "train" in out:
        raise DatasetError(f"{root}: no labelled networks in the train split")
    return out


def target_scale(examples: Sequence[Example], task: Task) -> Tuple[np.ndarray, np.ndarray]:
    """(mean [T], std [T]) used to standardise regression targets from the known values;
    (0, 1) for classification and for a target with fewer than 2 known values."""
    mean, std = np.zeros(task.width, np.float32), np.ones(task.width, np.float32)
    if task.kind != "regression":
        return mean, std
    for t in range(task.width):
        if task.level == "node":
            values = np.concatenate([e.node_y[e.node_mask] for e in examples] or [np.zeros(0)])
        else:
            values = np.array([e.graph_y[t] for e in examples if e.graph_mask[t]])
        if values.size >= 2:
            mean[t], std[t] = values.mean(), values.std() or 1.0
    return mean, std


MIN_FEATURE_STD = 1e-3  # below this a column's spread is float noise of a constant


def feature_stats(examples: Sequence[Example], min_std: float = MIN_FEATURE_STD,
                  log_densities: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Per-column (mean, std) of the known node features of ``examples`` ([F] each),
    for ``DatasetStats.feature_shift`` / ``feature_scale``.

    Only physical quantities (schema transform ``slog``) are standardised: their
    encoded spread can be tiny (Izhikevich ``a``: 0.01). One-hots, [0, 1] indices and
    log-counts are O(1) already and keep (0, 1): scaling them up would make a model
    sensitive to near-constant structure columns. The std is floored at ``min_std``;
    a column never known gets (0, 1). ``log_densities``: of the inputs the model sees
    with ``BGANConfig.log_densities``."""
    if not examples:
        raise DatasetError("feature statistics need at least one example")
    x = np.concatenate([e.cg.node_features for e in examples]).astype(np.float64)  # [N, F]
    if log_densities:
        x = inputs.log_densities(x)
    known = np.concatenate([e.cg.node_feature_mask for e in examples]) > 0  # [N, F]
    count = known.sum(0)
    mean = np.where(known, x, 0.0).sum(0) / np.maximum(count, 1)
    var = np.where(known, (x - mean) ** 2, 0.0).sum(0) / np.maximum(count, 1)
    quantity = np.array([c.transform == "slog" for c in NODE_COLUMNS]) & (count > 0)
    std = np.where(quantity, np.maximum(np.sqrt(var), min_std), 1.0)
    return np.where(quantity, mean, 0.0).astype(np.float32), std.astype(np.float32)


def class_weights(examples: Sequence[Example], task: Task) -> np.ndarray:
    """Balanced class weights n / (K * n_c) from the labelled items of ``examples`` [C]
    (K: classes present, as scikit-learn's "balanced"): every present class then
    weighs the same in the loss and the mean item weight is 1. An absent class gets 1."""
    if task.kind != "classification":
        raise DatasetError(f"class weights need a classification task, not {task.kind}")
    if task.level == "node":
        y = np.concatenate([e.node_y[e.node_mask] for e in examples] or [np.zeros(0)])
    else:
        y = np.array([e.graph_y[0] for e in examples if e.graph_mask[0]])
    counts = np.bincount(y.astype(int), minlength=task.outputs).astype(np.float64)
    present = max(int(np.sum(counts > 0)), 1)
    w = np.where(counts > 0, y.size / (present * np.maximum(counts, 1)), 1.0)
    return w.astype(np.float32)


def make_batch(examples: Sequence[Example], n_graph: int, scale=(0.0, 1.0),
               n_node: Optional[int] = None, n_edge: Optional[int] = None) -> jraph.GraphsTuple:
    """Batch and pad examples (n_graph includes jraph's padding graph), targets attached."""
    g = batch_graphs([e.cg for e in examples])
    mean, std = (np.asarray(v, np.float32).reshape(-1) for v in scale)  # [T] each
    # node targets are scalar (T = 1); unlabelled items are unscored
    y = np.concatenate([(e.node_y - mean[0]) / std[0] for e in examples])
    nodes = dict(g.nodes, y=y.astype(np.float32),
                 y_mask=np.concatenate([e.node_mask for e in examples]))
    gy = np.stack([np.where(e.graph_mask, (e.graph_y - mean) / std, 0.0) for e in examples])
    ids = {f: i for i, f in enumerate(dict.fromkeys(e.family_key for e in examples))}
    glob = dict(g.globals, y=gy.astype(np.float32),  # [G, T]
                y_mask=np.stack([e.graph_mask for e in examples]).astype(bool),
                family=np.array([ids[e.family_key] for e in examples], np.int32))  # [G]
    return pad_to_bucket(g._replace(nodes=nodes, globals=glob), n_graph=n_graph,
                         n_node=n_node, n_edge=n_edge)


def batch_shapes(batches: Sequence[Sequence[Example]]) -> Tuple[int, int]:
    """Common (n_node, n_edge) bucket that holds every one of these example groups."""
    nodes = max(sum(e.cg.n_nodes for e in b) for b in batches) + 1
    edges = max(sum(e.cg.n_edges for e in b) for b in batches)
    return bucket_size(nodes), bucket_size(edges)


class Bucket(NamedTuple):
    members: np.ndarray  # indices of the examples in this size class
    n_node: int  # padded shape of a full batch drawn from it
    n_edge: int
    # (n_node, n_edge) of the epoch's last, partial step of this bucket (fewer graphs, so
    # a smaller shape; padding='tight' only); None: that step takes the full shape
    last: Optional[Tuple[int, int]] = None


def _shape(nodes: np.ndarray, edges: np.ndarray, k: int) -> Tuple[int, int]:
    """Padded (n_node, n_edge) that holds any k of these graphs: the k largest of each."""
    return (bucket_size(int(np.sort(nodes)[::-1][:k].sum()) + 1),
            bucket_size(int(np.sort(edges)[::-1][:k].sum())))


PADDING = {"bucket": (2.0, False), "tight": (2 ** 0.5, True)}
"""Batch padding schemes: (size-class growth, last partial step in its own shape).
'bucket': one shape per power-of-two size class, the fewest compilations (short runs).
'tight': classes a factor sqrt(2) apart and a bucket's partial last step padded to its
own graphs: less padding, so more graphs/s, for ~2.5x the compilations (long runs;
docs/performance.md)."""


def size_buckets(examples: Sequence[Example], batch_size: int, devices: int = 1,
                 padding: str = "bucket") -> List[Bucket]:
    """Group examples by size class (graph node count rounded up to a power of the
    ``padding`` scheme's growth); every full batch of a bucket is padded to one shape
    that holds its ``batch_size`` largest graphs and, under 'tight', the epoch's last step
    of a bucket (the same number of graphs every epoch) to the shape of that many
    largest. So a run compiles at most one or two steps per bucket, whatever the shuffle."""
    if padding not in PADDING:
        raise ValueError(f"padding must be one of {sorted(PADDING)}, got {padding!r}")
    growth, own_last = PADDING[padding]
    size = np.array([e.cg.n_nodes for e in examples])
    n_edges = np.array([e.cg.n_edges for e in examples])
    cls = np.ceil(np.log(np.maximum(size, 2)) / np.log(growth) - 1e-9).astype(int)
    out = []
    for c in np.unique(cls):
        members = np.flatnonzero(cls == c)
        full = _shape(size[members], n_edges[members], batch_size)
        rest = len(members) % (batch_size * devices)  # graphs in the last step
        last = (_shape(size[members], n_edges[members], min(rest, batch_size))
                if rest and own_last else None)
        out.append(Bucket(members, *full, last if last != full else None))
    return out


def bucket_shapes(examples: Sequence[Example], batch_size: int, devices: int = 1,
                  padding: str = "bucket") -> Dict[Tuple[int, int], int]:
    """Every padded (n_node, n_edge) the batches of these examples take -> the node count
    of the largest graph a batch of that shape holds."""
    out: Dict[Tuple[int, int], int] = {}
    for bucket in size_buckets(examples, batch_size, devices, padding):
        largest = max(examples[i].cg.n_nodes for i in bucket.members)
        for shape in filter(None, ((bucket.n_node, bucket.n_edge), bucket.last)):
            out[shape] = max(out.get(shape, 0), largest)
    return out


def reuse_shape(shape: Tuple[int, int], shapes: Sequence[Tuple[int, int]],
                padding: str = "bucket") -> Tuple[int, int]:
    """The smallest of ``shapes`` (padded (n_node, n_edge)) that holds ``shape`` and is
    at most one size class (the ``padding`` scheme's growth) larger in nodes and in edges,
    else ``shape``. Evaluation batches take the shapes training compiled this way, so a
    run compiles fewer evaluation steps (default dataset: 9 shapes instead of 19)."""
    growth = PADDING[padding][0]
    fits = [s for s in shapes if shape[0] <= s[0] <= growth * shape[0]
            and shape[1] <= s[1] <= growth * shape[1]]
    return tuple(min(fits)) if fits else tuple(shape)


def family_order(members: np.ndarray, families: Sequence[str], rng) -> np.ndarray:
    """``members`` shuffled family by family: each family's examples (a cell and its
    variants) stay next to each other, so most land in one batch."""
    groups: Dict[str, List[int]] = {}
    for i in members:
        groups.setdefault(families[i], []).append(int(i))
    keys = list(groups)
    return np.array([i for j in rng.permutation(len(keys)) for i in groups[keys[j]]], int)


def epoch_plan(examples: Sequence[Example], batch_size: int, seed: int = 0, epoch: int = 0,
               shuffle: bool = True, devices: int = 1, padding: str = "bucket",
               families: bool = False, shapes: Sequence[Tuple[int, int]] = ()
               ) -> List[Tuple[Bucket, List[np.ndarray]]]:
    """The steps of one epoch: (bucket with this step's shape, per-device index groups).
    A pure function of (seed, epoch), so a resumed run sees exactly the batches the
    interrupted one would have; the number of steps is the same every epoch. With
    ``families``, a bucket is shuffled by family (``family_order``); with ``shapes``,
    each step takes the one of them ``reuse_shape`` picks (evaluation: the run's)."""
    rng = np.random.default_rng([seed, epoch])
    names = [e.family_key for e in examples] if families else None
    steps = []
    for bucket in size_buckets(examples, batch_size, devices, padding):
        idx = bucket.members
        if shuffle:
            idx = family_order(idx, names, rng) if families else rng.permutation(idx)
        per_step = batch_size * devices
        for start in range(0, len(idx), per_step):
            chunk = idx[start:start + per_step]
            shaped = (bucket._replace(n_node=bucket.last[0], n_edge=bucket.last[1])
                      if bucket.last is not None and len(chunk) < per_step else bucket)
            if shapes:
                n_node, n_edge = reuse_shape((shaped.n_node, shaped.n_edge), shapes, padding)
                shaped = shaped._replace(n_node=n_node, n_edge=n_edge)
            steps.append((shaped, [chunk[d * batch_size:(d + 1) * batch_size]
                                   for d in range(devices)]))
    if shuffle:
        steps = [steps[i] for i in rng.permutation(len(steps))]
    return steps


def batches(examples: Sequence[Example], batch_size: int, seed: int = 0, epoch: int = 0,
            shuffle: bool = True, devices: int = 1, scale=(0.0, 1.0), skip: int = 0,
            slots: Optional[Sequence[int]] = None, padding: str = "bucket",
            families: bool = False, shapes: Sequence[Tuple[int, int]] = ()
            ) -> Iterator[List[jraph.GraphsTuple]]:
    """One epoch: per step, ``devices`` padded batches of up to ``batch_size`` graphs of
    one size bucket, all of the step's shape (``epoch_plan``). A device with no graphs in a
    step's last chunk gets an all-padding batch, which contributes nothing. ``skip`` leaves out the
    epoch's first steps without building them (a resumed run); ``slots`` builds only
    those device positions of each step (this process's share of a global batch);
    ``shapes``: see ``epoch_plan``."""
    for bucket, groups in epoch_plan(examples, batch_size, seed, epoch, shuffle, devices,
                                     padding, families, shapes)[skip:]:
        out = []
        for g in (groups if slots is None else [groups[d] for d in slots]):
            exs = [examples[i] for i in (g if len(g) else groups[0][:1])]
            b = make_batch(exs, batch_size + 1, scale, bucket.n_node, bucket.n_edge)
            out.append(b if len(g) else _all_padding(b))
        yield out


def _all_padding(batch: jraph.GraphsTuple) -> jraph.GraphsTuple:
    """The same shapes with nothing valid: contributes zero to every loss and metric."""
    nodes = dict(batch.nodes, valid=np.zeros_like(batch.nodes["valid"]),
                 y_mask=np.zeros_like(batch.nodes["y_mask"]),
                 kind=np.full_like(batch.nodes["kind"], -1),
                 neuron_id=np.full_like(batch.nodes["neuron_id"], -1))
    edges = dict(batch.edges, valid=np.zeros_like(batch.edges["valid"]),
                 kind=np.full_like(batch.edges["kind"], -1))
    glob = dict(batch.globals, valid=np.zeros_like(batch.globals["valid"]),
                y_mask=np.zeros_like(batch.globals["y_mask"]))
    return batch._replace(nodes=nodes, edges=edges, globals=glob)
