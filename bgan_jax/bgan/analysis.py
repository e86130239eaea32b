"""Read a trained model out: which components and features of a BNN go with its output.

Two measures per analysed model (one CG, run alone as a batch of one):

* **Attention.** ``apply(..., return_attention=True)`` gives, per block,
  mechanism (GANlow, GANup, MaskA, MaskB) and head, the weight of every pair the
  mechanism attended over; ``masks.mechanism_pairs`` (the model's own masks) says
  which nodes each row joins. Every weight becomes one row of an attention table
  with its sender kind, receiver kind and edge kind (``self`` for a node
  attending to itself). The *share* of a (sender kind -> receiver kind) cell is the
  fraction of the receivers' attention that goes to senders of that kind (each
  receiver's weights sum to 1 per head).
* **Attribution.** Attention says where information flows, not which *feature*
  matters, so each model also gets integrated gradients (Sundararajan et al.,
  2017) of its output with respect to the node features: the path from a
  baseline to the real features in ``steps`` midpoint steps, attribution =
  (x - baseline) * mean gradient. The baseline of a node is the mean feature
  vector of its node kind over a reference set (the training split), so a
  feature that is constant within a kind (e.g. the kind one-hot) gets none, and
  a feature earns attribution only by differing from what is typical for its
  kind *and* moving the output. The output is the predicted class's logit minus
  the mean logit (classification; log-probabilities saturate when the model is
  confident, leaving nothing to attribute) or the prediction (regression), summed
  over the labelled nodes for node tasks. |attribution| summed over a feature group's
  columns and a node kind's nodes, divided by the total, is that (kind, group)'s
  *share*; summed over a node's columns it is the node's score.

Everything here returns numpy tables (dicts of columns); ``bgan_jax.bgan.report``
writes them as CSV, JSON, figures, GraphML and a report.
"""

from __future__ import annotations

from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from bgan_jax.bgan import data as data_lib
from bgan_jax.bgan.config import BGANConfig
from bgan_jax.bgan.masks import mechanism_pairs
from bgan_jax.runs.metrics import auroc
from graphs.batching import batch_and_pad, bucket_size
from graphs.cg import CG
from graphs.schema import FEATURE_GROUPS, NODE_COLUMNS, NODE_GROUPS, EdgeKind, NodeKind

KIND_NAMES = tuple(k.name.lower() for k in NodeKind)
SENDER_KIND_NAMES = KIND_NAMES + ("self",)  # attention tables: a node attending to itself
EDGE_KINDS = tuple(k.name.lower() for k in EdgeKind) + ("self",)
Columns = Dict[str, np.ndarray]  # a table: column name -> [rows] array


class ModelAnalysis(NamedTuple):
    """What one model's analysis found (host numpy arrays)."""

    name: str
    cg: CG
    prediction: np.ndarray  # graph task: [C] probabilities; node task: [N, C] (or [N, 1])
    attention: Columns  # one row per (block, mechanism, head, pair); see attention_rows
    attribution: np.ndarray  # [N, F] integrated gradients w.r.t. node features
    completeness_gap: float  # |sum(attr) - (F(x) - F(b))| / |F(x) - F(b)|: IG's own check
    change: float  # F(x) - F(b): the explained output's change from the baseline


def kind_baseline(cgs: Sequence[CG]) -> np.ndarray:
    """[num_kinds, F] mean feature vector of each node kind (present values only)."""
    total = np.zeros((len(KIND_NAMES), len(NODE_COLUMNS)))
    count = np.zeros_like(total)
    for cg in cgs:
        np.add.at(total, cg.node_kind, cg.node_features * cg.node_feature_mask)
        np.add.at(count, cg.node_kind, cg.node_feature_mask)
    return (total / np.maximum(count, 1)).astype(np.float32)


def _margin(logits: jnp.ndarray, classes: jnp.ndarray) -> jnp.ndarray:
    """[R] logit of each row's class minus the row's mean logit. Unlike log p it does not
    saturate, so a confident model still has gradients to attribute."""
    chosen = jnp.take_along_axis(logits, classes[:, None], 1)[:, 0]
    return chosen - logits.mean(-1)


def output_target(task: data_lib.Task, out: Dict, graph, classes: Optional[jnp.ndarray],
                  output: int = 0):
    """The scalar IG explains: the predicted class's centred logit, or the regression
    output (number ``output`` of a multi-target head), summed over the target nodes
    (``graph.nodes["target"]``) for node tasks."""
    if task.level == "graph":
        logits = out["graph"][:1]  # [1, C]: the single analysed graph
        return (_margin(logits, classes[:1]) if task.kind == "classification"
                else logits[:, output])[0]
    logits, mask = out["node"], graph.nodes["target"]  # [N, C], [N]
    value = _margin(logits, classes) if task.kind == "classification" else logits[:, 0]
    return jnp.sum(jnp.where(mask, value, 0.0))


def target_nodes(cg: CG, task_name: str) -> np.ndarray:
    """[N] bool nodes a node task predicts (``data.Task.nodes``)."""
    return data_lib.task_of(task_name).nodes(cg)


def make_analyzer(apply_fn: Callable, task: data_lib.Task, steps: int = 32,
                  config: Optional[BGANConfig] = None, output: int = 0):
    """A jitted (params, graph, baseline [N, F]) -> (outputs, attention, attribution,
    F(x), F(baseline), pairs) function (one compilation per padded shape); ``pairs``
    are the model's own mechanism pairs (``masks.mechanism_pairs``; None without a
    BGAN config), computed inside the same jit. ``output``: which regression output
    of a multi-target head is explained."""

    def forward(params, graph, features):
        g = graph._replace(nodes=dict(graph.nodes, features=features))
        return apply_fn({"params": params}, g, return_attention=True)

    def run(params, graph, baseline):
        x = graph.nodes["features"]  # [N, F]
        out, attention = forward(params, graph, x)
        if task.kind == "classification":
            logits = out["graph"] if task.level == "graph" else out["node"]
            classes = jnp.argmax(logits, -1)
        else:
            classes = None

        def f(features):
            return output_target(task, forward(params, graph, features)[0], graph, classes,
                                 output)

        alphas = (jnp.arange(steps, dtype=x.dtype) + 0.5) / steps  # midpoint rule
        grads = jax.lax.map(lambda a: jax.grad(f)(baseline + a * (x - baseline)), alphas,
                            batch_size=min(steps, 8))  # [S, N, F]
        attribution = (x - baseline) * grads.mean(0)
        pairs = mechanism_pairs(graph, config) if config is not None else None
        return out, attention, attribution, f(x), f(baseline), pairs

    return jax.jit(run)


def _size_class(n: int) -> int:
    return bucket_size(2 ** int(np.ceil(np.log2(max(n, 2)))))


def _graph_of(cg: CG, task_name: str, pad_factor: int = 1):
    """A batch of one, padded to its power-of-two size class (times ``pad_factor``):
    few shapes, few compiles."""
    graph = batch_and_pad([cg], n_node=pad_factor * _size_class(cg.n_nodes + 1),
                          n_edge=pad_factor * _size_class(cg.n_edges))
    n = graph.nodes["kind"].shape[0]
    target = np.zeros(n, bool)
    target[:cg.n_nodes] = target_nodes(cg, task_name)
    return graph._replace(nodes=dict(graph.nodes, target=target))


def analyze_model(analyzer, params, cg: CG, name: str, task_name: str,
                  baseline: np.ndarray, pad_factor: int = 1,
                  node_baseline: Optional[np.ndarray] = None) -> ModelAnalysis:
    """Attention rows and attributions of one CG (``pad_factor`` > 1 pads it more:
    the tests check that nothing changes). ``baseline`` [kinds, F] is per node kind;
    ``node_baseline`` [N, F], when given, replaces it node by node (e.g. the source
    cell of a variant, so attribution explains what the variant changed)."""
    task = data_lib.task_of(task_name)
    graph = _graph_of(cg, task_name, pad_factor)
    n_pad = graph.nodes["kind"].shape[0]
    base = np.zeros((n_pad, len(NODE_COLUMNS)), np.float32)
    base[:cg.n_nodes] = baseline[cg.node_kind] if node_baseline is None else node_baseline
    out, attention, attribution, fx, fb, pairs = analyzer(params, graph, base)
    n = cg.n_nodes
    attribution = np.asarray(attribution)[:n]
    change = float(fx) - float(fb)
    gap = abs(float(attribution.sum()) - change) / max(abs(change), 1e-6)
    if task.level == "graph":
        logits = np.asarray(out["graph"])[0]
    else:
        logits = np.asarray(out["node"])[:n]
    prediction = np.asarray(jax.nn.softmax(logits, -1)) if task.kind == "classification" \
        else logits
    rows = attention_rows(graph, attention, pairs, n) if attention else empty_attention()
    return ModelAnalysis(name, cg, prediction, rows, attribution, gap, change)


def analyze_all(run, inputs: Sequence, reference: Sequence[CG], steps: int = 32,
                progress: bool = True) -> Tuple[List[ModelAnalysis], List[Dict]]:
    """Analyse every (name, CG) of ``inputs`` with a loaded ``training.Run``; the
    baseline comes from ``reference``. A model that fails is reported, not fatal:
    returns (analyses, one outcome per input)."""
    task_name = run.config.task
    baseline = kind_baseline(reference)
    config = run.model.config if isinstance(getattr(run.model, "config", None), BGANConfig) \
        else None
    analyzer = make_analyzer(run.model.apply, data_lib.task_of(task_name), steps, config)
    analyses, outcomes = [], []
    for name, cg in tqdm(inputs, desc="models", disable=not progress):
        try:
            a = analyze_model(analyzer, run.params, cg, name, task_name, baseline)
            analyses.append(a)
            outcomes.append({"name": name, "status": "ok", "nodes": cg.n_nodes,
                             **predicted(a, task_name)})
        except (ValueError, RuntimeError) as err:  # e.g. a graph the model cannot take
            outcomes.append({"name": name, "status": "error", "error": str(err)})
    return analyses, outcomes


def predicted(a: ModelAnalysis, task_name: str) -> Dict:
    """The model's answer for the outcome list (node tasks: class counts over targets)."""
    task = data_lib.task_of(task_name)
    if task.kind != "classification":
        return {}
    if task.level == "graph":
        c = int(np.argmax(a.prediction))
        return {"predicted": task.classes[c], "probability": float(a.prediction[c])}
    target = target_nodes(a.cg, task_name)
    counts = np.bincount(np.argmax(a.prediction[target], -1), minlength=len(task.classes))
    return {"predicted": {k: int(v) for k, v in zip(task.classes, counts) if v}}


# -- attention tables ------------------------------------------------------------

ATTENTION_COLUMNS = ("block", "mechanism", "head", "sender", "receiver", "sender_kind",
                     "receiver_kind", "edge_kind", "edge", "weight")


def empty_attention() -> Columns:
    return {c: np.zeros(0, object if c == "mechanism" else np.float64 if c == "weight"
                        else np.int64) for c in ATTENTION_COLUMNS}


def _mechanisms(block_weights: Dict):
    for name, w in block_weights.items():
        if isinstance(w, list):  # GANlow: one entry per hop round
            for r, wr in enumerate(w):
                yield (name if r == 0 else f"{name}_r{r}"), name, wr
        else:
            yield name, name, w


def attention_rows(graph, attention: List[Dict], pairs: Dict, n_real: int) -> Columns:
    """One row per used (block, mechanism, head, pair) of a single-graph batch: edge rows
    where the mechanism allows them, self pairs where allowed (edge index -1)."""
    kind = np.asarray(graph.nodes["kind"])
    edge_kind = np.asarray(graph.edges["kind"])
    cols: Dict[str, list] = {c: [] for c in ATTENTION_COLUMNS}
    for b, block in enumerate(attention):
        for label, mech, w in _mechanisms(block):
            p = pairs[mech]
            allowed = np.flatnonzero(np.asarray(p.allowed))
            selves = np.flatnonzero(np.asarray(p.self_allowed)[:n_real])
            snd = np.concatenate([np.asarray(p.senders)[allowed], selves])
            rcv = np.concatenate([np.asarray(p.receivers)[allowed], selves])
            ek = np.concatenate([edge_kind[allowed], np.full(selves.size, len(EdgeKind))])
            edge = np.concatenate([allowed, np.full(selves.size, -1)])
            weights = np.concatenate([np.asarray(w.edges)[allowed], np.asarray(w.self)[selves]])
            for h in range(weights.shape[1]):
                cols["block"].append(np.full(snd.size, b))
                cols["mechanism"].append(np.full(snd.size, label, object))
                cols["head"].append(np.full(snd.size, h))
                cols["sender"].append(snd)
                cols["receiver"].append(rcv)
                cols["sender_kind"].append(np.concatenate(
                    [kind[snd[:allowed.size]], np.full(selves.size, len(KIND_NAMES))]))
                cols["receiver_kind"].append(kind[rcv])
                cols["edge_kind"].append(ek)
                cols["edge"].append(edge)
                cols["weight"].append(weights[:, h])
    if not cols["block"]:
        return empty_attention()
    return {c: np.concatenate(v) for c, v in cols.items()}


def concat(tables: Sequence[Columns], **labels: Sequence) -> Columns:
    """Stack tables; ``labels`` adds one constant column per table (e.g. model=names)."""
    out = {c: np.concatenate([t[c] for t in tables]) for c in tables[0]} if tables else {}
    for key, values in labels.items():
        out[key] = np.concatenate([np.full(len(next(iter(t.values()))), v, object)
                                   for t, v in zip(tables, values)])
    return out


def group_sum(table: Columns, keys: Sequence[str], value: str) -> Columns:
    """Sum and count of ``value`` per distinct combination of ``keys``."""
    if not len(table.get(value, ())):
        return {**{k: np.zeros(0) for k in keys}, "sum": np.zeros(0), "count": np.zeros(0)}
    key_cols = [np.asarray(table[k]).astype(str) for k in keys]
    joined = np.array(["\x1f".join(t) for t in zip(*key_cols)])
    uniq, first, inverse = np.unique(joined, return_index=True, return_inverse=True)
    out = {k: np.asarray(table[k])[first] for k in keys}
    out["sum"] = np.bincount(inverse, weights=table[value], minlength=uniq.size)
    out["count"] = np.bincount(inverse, minlength=uniq.size).astype(float)
    return out


def attention_by(table: Columns, keys: Sequence[str]) -> Columns:
    """Mean weight and share per ``keys`` (which must hold block, mechanism, head and the
    receiver side): share = summed weight / number of (model, receiver) attending."""
    cell = group_sum(table, keys, "weight")
    recv_keys = [k for k in keys if k not in ("sender_kind", "edge_kind")]
    per_receiver = group_sum(table, list(recv_keys) + ["model", "receiver"], "weight")
    receivers = group_sum(per_receiver, recv_keys, "count")  # count = attending receivers
    lookup = {tuple(str(receivers[k][i]) for k in recv_keys): receivers["count"][i]
              for i in range(len(receivers["count"]))}
    n_recv = np.array([lookup[tuple(str(cell[k][i]) for k in recv_keys)]
                       for i in range(len(cell["count"]))])
    out = {k: cell[k] for k in keys}
    out["mean_weight"] = cell["sum"] / np.maximum(cell["count"], 1)
    out["share"] = cell["sum"] / np.maximum(n_recv, 1)
    out["pairs"] = cell["count"].astype(int)
    return out


def kind_attention(table: Columns) -> Columns:
    """Per block x mechanism x head x (sender kind -> receiver kind): mean weight, share."""
    return attention_by(table, ["block", "mechanism", "head", "receiver_kind", "sender_kind"])


def edge_attention(table: Columns) -> Columns:
    """Per block x mechanism x head x edge kind (``self`` included): mean weight, share.
    The receiver side here is every receiver of the mechanism."""
    t = dict(table, receiver_kind=np.zeros_like(table["receiver_kind"]))
    out = attention_by(t, ["block", "mechanism", "head", "receiver_kind", "edge_kind"])
    out.pop("receiver_kind")
    return out


def attention_received(analysis: ModelAnalysis) -> np.ndarray:
    """[N] attention a node gets from *other* nodes, averaged over blocks, mechanisms and
    heads: how much the model reads it."""
    t = analysis.attention
    n = analysis.cg.n_nodes
    other = t["sender"] != t["receiver"]
    slots = {(b, m, h) for b, m, h in zip(t["block"], t["mechanism"], t["head"])}
    total = np.bincount(t["sender"][other], weights=t["weight"][other], minlength=n)[:n]
    return total / max(len(slots), 1)


# -- attribution tables ----------------------------------------------------------

def node_scores(analysis: ModelAnalysis) -> np.ndarray:
    """[N] |attribution| summed over a node's feature columns."""
    return np.abs(analysis.attribution).sum(1)


def group_shares(analysis: ModelAnalysis) -> np.ndarray:
    """[num_kinds, num_groups] share of |attribution| per (node kind, feature group)."""
    a = np.abs(analysis.attribution)
    out = np.zeros((len(KIND_NAMES), len(FEATURE_GROUPS)))
    for g, name in enumerate(FEATURE_GROUPS):
        np.add.at(out[:, g], analysis.cg.node_kind, a[:, NODE_GROUPS[name]].sum(1))
    return out / max(out.sum(), 1e-30)


def column_shares(analysis: ModelAnalysis) -> np.ndarray:
    """[num_kinds, F] share of |attribution| per (node kind, feature column)."""
    out = np.zeros((len(KIND_NAMES), len(NODE_COLUMNS)))
    np.add.at(out, analysis.cg.node_kind, np.abs(analysis.attribution))
    return out / max(out.sum(), 1e-30)


def attribution_table(analyses: Sequence[ModelAnalysis]) -> Columns:
    """Per (node kind, feature group): mean and std of the share over models, and the
    fraction of models where it ranks first. Rows sorted by mean share."""
    shares = np.stack([group_shares(a) for a in analyses])  # [M, K, G]
    flat = shares.reshape(len(analyses), -1)
    first = np.bincount(flat.argmax(1), minlength=flat.shape[1]) / len(analyses)
    kinds, groups = np.meshgrid(np.arange(len(KIND_NAMES)), np.arange(len(FEATURE_GROUPS)),
                                indexing="ij")
    order = np.argsort(-flat.mean(0), kind="stable")
    return {"node_kind": np.array(KIND_NAMES)[kinds.ravel()][order],
            "group": np.array(FEATURE_GROUPS)[groups.ravel()][order],
            "share_mean": flat.mean(0)[order], "share_std": flat.std(0)[order],
            "ranked_first": first[order]}


def column_table(analyses: Sequence[ModelAnalysis], top: int = 30) -> Columns:
    """The ``top`` (node kind, feature column) cells by mean |attribution| share."""
    shares = np.stack([column_shares(a) for a in analyses]).mean(0)  # [K, F]
    order = np.argsort(-shares.ravel(), kind="stable")[:top]
    k, f = np.unravel_index(order, shares.shape)
    return {"node_kind": np.array(KIND_NAMES)[k], "column": np.array([NODE_COLUMNS[j].name for j in f]),
            "group": np.array([NODE_COLUMNS[j].group for j in f]),
            "share_mean": shares.ravel()[order]}


def component_table(analyses: Sequence[ModelAnalysis], top: int = 10) -> Columns:
    """Per model, its ``top`` nodes ranked by attribution and its ``top`` nodes ranked by
    attention received (column ``ranked_by``), each row with both scores."""
    cols = ("model", "ranked_by", "rank", "node", "name", "node_kind", "attribution",
            "attribution_share", "attention_received")
    rows: Dict[str, list] = {c: [] for c in cols}
    for a in analyses:
        score, att = node_scores(a), attention_received(a)
        total = max(score.sum(), 1e-30)
        for by, key in (("attribution", score), ("attention", att)):
            for r, i in enumerate(np.argsort(-key, kind="stable")[:top]):
                for c, v in zip(cols, (a.name, by, r + 1, int(i), str(a.cg.node_name[i]),
                                       KIND_NAMES[a.cg.node_kind[i]], score[i], score[i] / total,
                                       att[i])):
                    rows[c].append(v)
    text = ("model", "ranked_by", "name", "node_kind")
    return {c: np.array(v, object if c in text else None) for c, v in rows.items()}


# -- planted truth ------------------------------------------------------------------

def planted_metrics(analyses: Sequence[ModelAnalysis]) -> Optional[Dict]:
    """How well the read-out finds the planted truth of ``bnnsim.planted`` CGs: the rank
    of the planted (kind, group) by attribution share in each model, and the AUROC of
    the planted nodes against all others by attribution score and by attention received.
    None when no analysed CG carries ``meta["planted"]``."""
    rows = []
    for a in analyses:
        truth = a.cg.meta.get("planted")
        if not truth:
            continue
        shares = group_shares(a).ravel()
        target = KIND_NAMES.index(truth["kind"]) * len(FEATURE_GROUPS) + \
            FEATURE_GROUPS.index(truth["group"])
        rank = int(np.sum(shares > shares[target])) + 1
        planted = np.zeros(a.cg.n_nodes, bool)
        planted[truth["nodes"]] = True
        rows.append({"model": a.name, "case": truth["case"], "rank": rank,
                     "planted_share": float(shares[target]),
                     "auroc_attribution": auroc(node_scores(a), planted),
                     "auroc_attention": auroc(attention_received(a), planted)})
    if not rows:
        return None
    mean = lambda k: float(np.nanmean([r[k] for r in rows]))  # noqa: E731
    return {"models": rows, "n": len(rows), "case": rows[0]["case"],
            "ranked_first": float(np.mean([r["rank"] == 1 for r in rows])),
            "planted_share": mean("planted_share"),
            "auroc_attribution": mean("auroc_attribution"),
            "auroc_attention": mean("auroc_attention")}


__all__ = ["ModelAnalysis", "analyze_all", "analyze_model", "attention_by", "attention_received",
           "attention_rows", "attribution_table", "auroc", "column_table", "component_table",
           "concat", "edge_attention", "group_shares", "group_sum", "kind_attention",
           "kind_baseline", "make_analyzer", "node_scores", "planted_metrics"]
