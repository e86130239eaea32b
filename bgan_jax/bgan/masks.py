"""Which node attends to which, per mechanism, derived from the batch inside jit.

Every mechanism is a ``Pairs``: one row per batch edge (same order as
``graph.senders``) saying "receiver i may attend to sender j" where
``allowed``, plus one flag per node for attending to itself.
Rows are computed with ``jnp.where`` from edge kinds, forward flags, node
kinds and ``neuron_id`` only, so the shapes depend on the padded bucket and
never on the data: one compilation per bucket. Because every row is tied to
an edge (or to a self pair), attention weights come back aligned with the
batch's own edge arrays, and self-attention is a separate, explicit block.

Allowed sets (j -> i), docs/DESIGN.md section 4:

* GANlow: axial and membership edges inside one neuron (compartment <->
  compartment, compartment <-> its neuron node), plus self for compartments
  and neuron nodes. One round is one axial hop; ``low_hops`` rounds reach k.
* GANup: neuron <-> neuron through a synapse node or a gap junction (the
  edge's endpoints are lifted to their neuron nodes), neuron <-> CLS, plus
  self for neuron and CLS nodes.
* MaskA: forward-flagged edges of the signal kinds (axial, synaptic, gap,
  input by default), plus self for every real node.
* MaskB: the transpose of MaskA (same rows, sender and receiver swapped).
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import jraph
import numpy as np

from bgan_jax.bgan.config import BGANConfig
from graphs.schema import EdgeKind, NodeKind


class Pairs(NamedTuple):
    """Allowed attention pairs of one mechanism: edge rows and self pairs.

    As derived, pair p is edge row p (P = E, ``rows`` None) and nodes are the batch's
    (C = N, ``nodes`` None). ``compact`` keeps the allowed rows only (P = the
    mechanism's capacity, ``rows`` their edge rows); ``compact_nodes`` then keeps the
    nodes the mechanism touches (C slots, ``nodes`` their batch index; senders,
    receivers and self pairs are in slots)."""

    senders: jnp.ndarray  # [P] int32, attended node j of pair p
    receivers: jnp.ndarray  # [P] int32, attending node i of pair p
    allowed: jnp.ndarray  # [P] bool, pair p is used
    self_allowed: jnp.ndarray  # [C] bool, the node in slot c attends to itself
    rows: Optional[jnp.ndarray] = None  # [P] int32 edge row of pair p; None: row p
    nodes: Optional[jnp.ndarray] = None  # [C] int32 batch node of slot c (N: empty); None: c


class DenseLayout(NamedTuple):
    """Where each node sits in the dense [blocks, size, size] attention matrices."""

    block: jnp.ndarray  # [N] int32
    pos: jnp.ndarray  # [N] int32, may be >= size for padding nodes (dropped)
    num_blocks: int
    size: int


def isin(x: jnp.ndarray, values: Sequence[int]) -> jnp.ndarray:
    return jnp.isin(x, jnp.asarray(tuple(int(v) for v in values), jnp.int32))


def _with_self(graph: jraph.GraphsTuple, senders, receivers, edge_ok, self_ok) -> Pairs:
    return Pairs(senders=senders.astype(jnp.int32), receivers=receivers.astype(jnp.int32),
                 allowed=edge_ok, self_allowed=self_ok & graph.nodes["valid"])


def graph_index(graph: jraph.GraphsTuple) -> jnp.ndarray:
    """[N] int32: the graph each node belongs to (jraph's padding graph included)."""
    n, g = graph.nodes["kind"].shape[0], graph.n_node.shape[0]
    return jnp.repeat(jnp.arange(g, dtype=jnp.int32), graph.n_node, total_repeat_length=n)


def ganlow_pairs(graph: jraph.GraphsTuple) -> Pairs:
    """Inside-neuron attention: axial + membership edges of one neuron, plus self."""
    nid, kind = graph.nodes["neuron_id"], graph.edges["kind"]
    s, r = graph.senders, graph.receivers
    ok = (graph.edges["valid"] & isin(kind, (EdgeKind.AXIAL, EdgeKind.MEMBERSHIP))
          & (nid[s] >= 0) & (nid[s] == nid[r]))
    return _with_self(graph, s, r, ok, nid >= 0)


def ganup_pairs(graph: jraph.GraphsTuple) -> Pairs:
    """Between-neuron attention: synapse/gap edges lifted to neuron nodes, CLS, self."""
    nid, node_kind = graph.nodes["neuron_id"], graph.nodes["kind"]
    kind, valid = graph.edges["kind"], graph.edges["valid"]
    s, r = graph.senders, graph.receivers
    n = nid.shape[0]
    syn = valid & (kind == EdgeKind.SYNAPTIC)
    into_syn = syn & (node_kind[r] == NodeKind.SYNAPSE)  # pre compartment -> synapse
    out_syn = syn & (node_kind[s] == NodeKind.SYNAPSE)  # synapse -> post compartment
    # Neuron on each side of every synapse node: [N] int32, -1 where none.
    pre_of = jax.ops.segment_max(jnp.where(into_syn, nid[s], -1), r, n)
    post_of = jax.ops.segment_max(jnp.where(out_syn, nid[r], -1), s, n)
    pre_of, post_of = jnp.maximum(pre_of, -1), jnp.maximum(post_of, -1)
    gap = valid & (kind == EdgeKind.GAP)
    cls = valid & (kind == EdgeKind.CLS)
    # post attends to pre on the synapse -> post row; pre attends to post on the pre -> synapse row.
    snd = jnp.select([out_syn, into_syn, gap], [pre_of[s], post_of[r], nid[s]], s)
    rcv = jnp.select([out_syn, into_syn, gap], [nid[r], nid[s], nid[r]], r)
    lifted = (out_syn | into_syn | gap) & (snd >= 0) & (rcv >= 0) & (snd != rcv)
    self_ok = isin(node_kind, (NodeKind.NEURON, NodeKind.CLS))
    return _with_self(graph, jnp.maximum(snd, 0), jnp.maximum(rcv, 0), lifted | cls, self_ok)


def forward_pairs(graph: jraph.GraphsTuple, signal_kinds: Sequence[int]) -> Pairs:
    """MaskA: receiver i attends to j along forward signal-flow edges j -> i, plus self."""
    e = graph.edges
    ok = e["valid"] & isin(e["kind"], signal_kinds) & (e["forward"] > 0)
    return _with_self(graph, graph.senders, graph.receivers, ok, graph.nodes["valid"])


def transpose(pairs: Pairs) -> Pairs:
    """The same pairs with sender and receiver swapped, aligned with the same edge rows:
    MaskB is the transpose of MaskA (retrograde flow)."""
    return pairs._replace(senders=pairs.receivers, receivers=pairs.senders)


def backward_pairs(graph: jraph.GraphsTuple, signal_kinds: Sequence[int]) -> Pairs:
    """MaskB: ``transpose(forward_pairs(...))``."""
    return transpose(forward_pairs(graph, signal_kinds))


def neighbour_pairs(graph: jraph.GraphsTuple) -> Pairs:
    """Plain neighbourhood attention (the unmasked baseline): i attends to j along every
    valid edge j -> i of any kind and direction flag, plus self."""
    return _with_self(graph, graph.senders, graph.receivers, graph.edges["valid"],
                      graph.nodes["valid"])


def mechanism_pairs(graph: jraph.GraphsTuple, config: BGANConfig) -> Dict[str, Pairs]:
    """The pairs each mechanism attends over, keyed like the returned attention weights;
    the model and the analysis both read them from here."""
    fwd = (neighbour_pairs(graph) if config.plain_attention
           else forward_pairs(graph, config.signal_edge_kinds))
    return {"ganlow": ganlow_pairs(graph), "ganup": ganup_pairs(graph),
            "mask_a": fwd, "mask_b": transpose(fwd)}


def touched(pairs: Pairs) -> jnp.ndarray:
    """[N] bool: the node sends or receives an allowed pair, or attends to itself."""
    n = pairs.self_allowed.shape[0]
    ok = jnp.asarray(pairs.allowed, jnp.int32)
    hit = jnp.zeros(n, jnp.int32).at[pairs.senders].max(ok).at[pairs.receivers].max(ok)
    return jnp.asarray(pairs.self_allowed) | (hit > 0)


def receives(pairs: Pairs) -> jnp.ndarray:
    """[N] bool: the node has at least one allowed pair (else its update is zero)."""
    n = pairs.self_allowed.shape[0]
    return pairs.self_allowed | (jax.ops.segment_sum(pairs.allowed.astype(jnp.int32),
                                                     pairs.receivers, n) > 0)


def dense_layout(graph: jraph.GraphsTuple, size: Optional[int] = None) -> DenseLayout:
    """Per-graph blocks of ``size`` nodes, or the whole padded batch as one block.

    ``size`` must hold the largest real graph of the batch (``dense_block_size``
    computes it on the host); padding nodes beyond it are dropped, which is
    harmless because they are never allowed in any pair.
    """
    n = graph.nodes["kind"].shape[0]
    if size is None:
        return DenseLayout(jnp.zeros(n, jnp.int32), jnp.arange(n, dtype=jnp.int32), 1, n)
    graph_of = graph_index(graph)
    offsets = jnp.cumsum(graph.n_node) - graph.n_node
    _check_block_size(graph, size)
    return DenseLayout(graph_of, jnp.arange(n, dtype=jnp.int32) - offsets[graph_of],
                       graph.n_node.shape[0], size)


def dense_block_size(graph: jraph.GraphsTuple) -> int:
    """Host helper: the largest real graph's node count (for ``dense_graph_nodes``)."""
    real = np.asarray(graph.n_node)[np.asarray(graph.globals["valid"], bool)]
    return int(real.max()) if real.size else 1


def _check_block_size(graph: jraph.GraphsTuple, size: int) -> None:
    """Raise early when concrete inputs hold a real graph larger than the dense block."""
    try:
        largest = dense_block_size(graph)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return  # traced: the caller sized the block on the host
    if largest > size:
        raise ValueError(f"dense_graph_nodes={size} is smaller than the largest graph "
                         f"in the batch ({largest} nodes); raise it or use "
                         "bgan_jax.dense_block_size(batch)")
