"""Compaction: each mechanism's pairs and nodes on static capacities, and the
capacities measured on the host.

A mechanism attends over few of a batch's edge rows (GANup: the synapse and gap
rows, lifted to neurons) and touches few of its nodes, so the model gathers the
allowed rows into ``capacity`` slots (``compact``) and, on the sparse path, the
touched nodes into node slots (``compact_nodes``), computes there, and scatters back
(``expand``). Capacities are static per bucket shape, so there is still one
compilation per bucket; each mechanism's ``MechanismBounds`` (in ``DatasetStats``'
``Compaction``, by name) set them, and a batch that would not fit is an overflow
(the model's outputs become NaN; ``pair_overflow`` finds such batches on the host).
``compaction`` measures the bounds over a dataset's graphs; ``bgan_jax.bgan.train``
does so at the start of a run.
"""

from __future__ import annotations

import functools
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import jraph
import numpy as np

from bgan_jax.bgan.config import COUNTS_KEPT, MECHANISMS, BGANConfig, Compaction, MechanismBounds
from bgan_jax.bgan.masks import Pairs, graph_index, mechanism_pairs, touched

NODE_COMPACTION_MIN_SHARE = 0.2
"""``compact_nodes`` leaves out at least this share of the nodes, or none: compacting
MaskA/MaskB, which touch most nodes, cost more than it saved (measured:
docs/performance.md)."""



def capacity(n: int, fraction: float, counts: Sequence[int] = (), graphs: int = 0) -> int:
    """Static capacity of a mechanism in a bucket of ``n`` edge rows (or nodes) and
    ``graphs`` graph slots: ceil(fraction * n), or, when smaller, the sum of the
    ``graphs`` largest single-graph ``counts`` (descending; graphs beyond the list
    hold at most its last count)."""
    size = min(n, max(1, int(np.ceil(fraction * n))))
    if counts and graphs:
        top = sum(counts[:graphs]) + max(graphs - len(counts), 0) * counts[-1]
        size = min(size, max(1, int(top)))
    return size


def compact(pairs: Pairs, size: int) -> Pairs:
    """The allowed rows, in edge order, in ``size`` pairs (the rest not allowed).

    Each mechanism then touches only its own rows instead of all E with a mask.
    ``size`` is static (``capacity`` of the bucket), so this stays one compilation
    per bucket; allowed rows beyond it would be lost, which ``overflow`` reports.
    (A prefix sum and one scatter: cheaper than sorting on CPU.) A ``size`` that holds
    every row keeps the pairs as they are: the same pairs, without the gathers."""
    e = pairs.allowed.shape[0]
    if size >= e:
        return pairs
    slot = jnp.where(pairs.allowed, jnp.cumsum(pairs.allowed) - 1, size)  # [E]
    order = jnp.zeros(size, jnp.int32).at[slot].set(jnp.arange(e, dtype=jnp.int32), mode="drop")
    used = jnp.arange(size) < jnp.sum(pairs.allowed)  # [P]
    take = lambda x: jnp.asarray(x)[order]  # noqa: E731 (the batch may hold numpy arrays)
    return Pairs(senders=take(pairs.senders), receivers=take(pairs.receivers),
                 allowed=used & take(pairs.allowed), self_allowed=pairs.self_allowed,
                 rows=order if pairs.rows is None else take(pairs.rows))


def overflow(pairs: Pairs, size: int) -> jnp.ndarray:
    """[] bool: more rows are allowed than ``size`` pairs hold."""
    return jnp.sum(pairs.allowed.astype(jnp.int32)) > size


def compact_nodes(pairs: Pairs, size: int) -> Tuple[Pairs, jnp.ndarray]:
    """(the pairs on ``size`` node slots, [] bool: more nodes touched than slots).

    A mechanism then projects and aggregates only the nodes it touches (GANup: the
    neurons, about 4 % of a network's nodes); every other node's update is exactly 0,
    so nothing is lost by leaving it out. ``size`` is static, as in ``compact``. When it
    would leave out less than ``NODE_COMPACTION_MIN_SHARE`` of the nodes (MaskA/MaskB
    touch every real node), the pairs stay as they are: the gather into slots and the
    scatter back cost more than the smaller projections save."""
    n = pairs.self_allowed.shape[0]
    if size > (1.0 - NODE_COMPACTION_MIN_SHARE) * n:
        return pairs, jnp.zeros((), bool)
    hit = touched(pairs)
    slot = jnp.cumsum(hit) - 1  # [N] slot of each touched node
    nodes = jnp.full(size, n, jnp.int32).at[jnp.where(hit, slot, size)].set(
        jnp.arange(n, dtype=jnp.int32), mode="drop")  # [C]
    pos = jnp.minimum(slot, size - 1)  # untouched / overflowing nodes: any slot, unused
    self_ok = (nodes < n) & jnp.asarray(pairs.self_allowed)[jnp.minimum(nodes, n - 1)]
    return pairs._replace(senders=pos[pairs.senders], receivers=pos[pairs.receivers],
                          self_allowed=self_ok, nodes=nodes), jnp.sum(hit) > size


def expand(x: jnp.ndarray, pairs: Pairs, n: int) -> jnp.ndarray:
    """[C, ...] values on ``pairs``' node slots -> [N, ...], 0 on untouched nodes.

    A scatter-add: each node has at most one slot, so it is the same as a set, but
    its derivative is linear (autodiff of a scatter-set tracks which of possibly
    repeated indices won, with an integer scatter and gather as wide as the output)."""
    if pairs.nodes is None:
        return x
    return jnp.zeros((n,) + x.shape[1:], x.dtype).at[pairs.nodes].add(x, mode="drop")


def compact_pairs(graph: jraph.GraphsTuple, config: BGANConfig,
                  bounds: Optional[Compaction] = None
                  ) -> Tuple[Dict[str, Pairs], jnp.ndarray]:
    """(``mechanism_pairs`` compacted to each mechanism's capacity in this bucket,
    [] bool: some mechanism has more allowed rows or touched nodes than its
    capacity). Rows by each mechanism's ``bounds``, then (sparse path) nodes;
    unchanged, never overflowing, when ``bounds`` is None. The model turns an
    overflow into NaN outputs (a host callback that raises would keep XLA's
    persistent compilation cache from storing the step); ``pair_overflow`` checks
    batches on the host."""
    pairs = mechanism_pairs(graph, config)
    over = jnp.zeros((), bool)
    if bounds is None:
        return pairs, over
    e, n, g = graph.senders.shape[0], graph.nodes["kind"].shape[0], graph.n_node.shape[0]
    for m in MECHANISMS:
        b = bounds[m]
        top_rows, top_nodes = listed_capacity(b, n, e)
        size = min(capacity(e, b.pair_fraction, b.pair_counts, g), top_rows)
        over = over | overflow(pairs[m], size)
        pairs[m] = compact(pairs[m], size)
        if config.attention != "dense":
            pairs[m], lost = compact_nodes(
                pairs[m], min(capacity(n, b.node_fraction, b.node_counts, g), top_nodes))
            over = over | lost
    return pairs, over


def listed_capacity(bounds: MechanismBounds, n_node: int, n_edge: int) -> Tuple[int, int]:
    """(rows, nodes) ``bounds.shapes`` lists for this batch shape; (n_edge, n_node), no
    bound, for a shape it does not list."""
    for n, e, rows, nodes in bounds.shapes:
        if (n, e) == (n_node, n_edge):
            return rows, nodes
    return n_edge, n_node


def pair_overflow(graphs: Sequence[jraph.GraphsTuple], config: BGANConfig,
                  bounds: Compaction) -> List[int]:
    """Host check: indices of the batches in ``graphs`` with more pairs or touched nodes
    than ``bounds`` leave room for (the model would give NaN)."""
    check = _overflow_check(config, bounds)
    return [i for i, g in enumerate(graphs) if bool(check(g))]


@functools.lru_cache(maxsize=8)
def _overflow_check(config: BGANConfig, bounds: Compaction):  # one jitted function each
    return jax.jit(lambda g: compact_pairs(g, config, bounds)[1])


@functools.lru_cache(maxsize=8)
def _graph_counts(config: BGANConfig):
    return jax.jit(lambda g: _per_graph(g, config))


def compaction(graphs: Iterable[jraph.GraphsTuple], config: BGANConfig) -> Compaction:
    """Host helper: each mechanism's ``MechanismBounds`` measured over ``graphs`` (padded
    batches; each real graph counts on its own), for ``DatasetStats(compaction=...)``:
    the largest share of a graph's edge rows it attends over (nodes it touches),
    rounded up, and the largest single-graph counts. A batch's share is an average of
    its graphs' shares and its count a sum of theirs, so no batch of these graphs can
    exceed either bound."""
    return bounds_of(graph_counts(graphs, config))


def graph_counts(graphs: Iterable[jraph.GraphsTuple], config: BGANConfig
                 ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Host helper: per real graph of ``graphs`` (padded batches), in order, {"edges":
    ([M, 4] allowed rows per mechanism, [M] real edge rows), "nodes": ([M, 4] touched
    nodes, [M] real nodes)}."""
    count = _graph_counts(config)
    seen = {"edges": [], "nodes": []}
    for graph in graphs:
        real = np.asarray(graph.globals["valid"])
        for of, (used, total) in count(graph).items():
            seen[of].append((np.asarray(used)[real], np.asarray(total)[real]))  # [G', 4], [G']
    return {of: (np.concatenate([u for u, _ in seen[of]] or [np.zeros((0, len(MECHANISMS)))]),
                 np.concatenate([t for _, t in seen[of]] or [np.zeros(0)]))
            for of in seen}


def bounds_of(counts: Dict[str, Tuple[np.ndarray, np.ndarray]],
              shapes: Dict[str, Tuple[Tuple[int, int, int, int], ...]] = None) -> Compaction:
    """``compaction``'s bounds from ``graph_counts`` (and, per mechanism, ``shapes``:
    ``MechanismBounds.shapes``)."""
    fields: Dict[str, Dict] = {m: {} for m in MECHANISMS}
    for of, name in (("edges", "pair"), ("nodes", "node")):
        used, total = counts[of][0], counts[of][1][:, None]  # [M, 4], [M, 1]
        share = np.where(total > 0, used / np.maximum(total, 1), 0.0).max(axis=0, initial=0.0)
        for m, t, col in zip(MECHANISMS, share, used.T):
            fields[m][f"{name}_fraction"] = float(np.clip(np.ceil(t * 1e4) / 1e4, 1e-4, 1.0))
            fields[m][f"{name}_counts"] = tuple(int(c) for c in np.sort(col)[::-1][:COUNTS_KEPT])
    return Compaction(**{m: MechanismBounds(**f, shapes=(shapes or {}).get(m, ()))
                         for m, f in fields.items()})


def _per_graph(graph: jraph.GraphsTuple, config: BGANConfig) -> Dict[str, Tuple]:
    """{"edges": ([G, 4] allowed rows of each graph per mechanism, [G] its real edge
    rows), "nodes": ([G, 4] touched nodes, [G] real nodes)}."""
    g = graph.n_node.shape[0]
    node_graph = graph_index(graph)  # [N]
    derived = mechanism_pairs(graph, config)
    pairs = [derived[m] for m in MECHANISMS]

    def per_graph(flags, where):  # [X] bool -> [G] counts
        return jax.ops.segment_sum(jnp.asarray(flags, jnp.int32), where, g)

    edge_graph = node_graph[graph.senders]  # [E]
    return {"edges": (jnp.stack([per_graph(p.allowed, edge_graph) for p in pairs], -1),
                      per_graph(graph.edges["valid"], edge_graph)),
            "nodes": (jnp.stack([per_graph(touched(p), node_graph) for p in pairs], -1),
                      per_graph(graph.nodes["valid"], node_graph))}
