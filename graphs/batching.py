"""List of CGs -> one padded ``jraph.GraphsTuple`` with dict node/edge fields.

Bucket rule (``bucket_size``): a padded size is the smallest number of the form
m * 2**k with m in {4, 5, 6, 7} (16, 20, 24, 28, 32, 40, 48, ...) that holds the
real count (+1 node for jraph's padding graph), never below ``minimum``. So at
most 25% of a batch is padding and a whole epoch compiles a handful of shapes.

Batch fields (shapes after padding to N nodes, E edges, G graphs)::

    nodes:   features [N, F] f32, feature_mask [N, F] f32, kind [N] i32
             (-1 on padding), neuron_id [N] i32 (index into the batch, -1 if
             none or padding), valid [N] bool
    edges:   features [E, Fe] f32, feature_mask [E, Fe] f32, kind [E] i32
             (-1 on padding), forward [E] i32, valid [E] bool
    globals: valid [G] bool
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import jax  # tree utilities only; nothing is traced here
import jraph
import numpy as np

from graphs.cg import CG

_BUCKET_MANTISSAS = (4, 5, 6, 7)


def bucket_size(n: int, minimum: int = 16) -> int:
    """Smallest m * 2**k (m in 4..7) that is >= max(n, minimum)."""
    n = max(int(n), int(minimum), 1)
    k = max(int(np.floor(np.log2(n))) - 2, 0)
    while True:
        for m in _BUCKET_MANTISSAS:
            if m * 2 ** k >= n:
                return m * 2 ** k
        k += 1


def cg_to_graphs_tuple(cg: CG) -> jraph.GraphsTuple:
    """One CG as an unpadded single-graph GraphsTuple (local indices)."""
    return jraph.GraphsTuple(
        nodes={"features": cg.node_features, "feature_mask": cg.node_feature_mask,
               "kind": cg.node_kind, "neuron_id": cg.neuron_id,
               "valid": np.ones(cg.n_nodes, bool)},
        edges={"features": cg.edge_features, "feature_mask": cg.edge_feature_mask,
               "kind": cg.edge_kind, "forward": cg.edge_forward,
               "valid": np.ones(cg.n_edges, bool)},
        senders=cg.senders, receivers=cg.receivers,
        n_node=np.array([cg.n_nodes], np.int32), n_edge=np.array([cg.n_edges], np.int32),
        globals={"valid": np.ones(1, bool)})


def batch_graphs(cgs: Sequence[CG]) -> jraph.GraphsTuple:
    """Concatenate CGs; ``neuron_id`` becomes an index into the batch's nodes."""
    if not cgs:
        raise ValueError("batch_graphs needs at least one graph")
    batch = jraph.batch_np([cg_to_graphs_tuple(cg) for cg in cgs])
    offsets = np.repeat(np.cumsum(batch.n_node) - batch.n_node, batch.n_node)
    nid = batch.nodes["neuron_id"]
    nodes = dict(batch.nodes, neuron_id=np.where(nid >= 0, nid + offsets, -1).astype(np.int32))
    return batch._replace(nodes=nodes)


def pad_to_bucket(graph: jraph.GraphsTuple, n_graph: Optional[int] = None,
                  n_node: Optional[int] = None, n_edge: Optional[int] = None,
                  minimum: int = 16) -> jraph.GraphsTuple:
    """Pad with jraph's padding graph to bucketed sizes; padding is marked invalid.

    n_graph defaults to the real graph count + 1; n_node / n_edge default to
    ``bucket_size`` of the real counts. Pass them to force one shape for a
    whole dataset (e.g. the max over all batches).
    """
    real_nodes, real_edges = int(graph.n_node.sum()), int(graph.n_edge.sum())
    n_graph = n_graph or int(graph.n_node.shape[0]) + 1
    n_node = n_node or bucket_size(real_nodes + 1, minimum)
    n_edge = n_edge or bucket_size(real_edges, minimum)
    padded = jraph.pad_with_graphs(graph, n_node=n_node, n_edge=n_edge, n_graph=n_graph)
    node_pad = np.arange(n_node) >= real_nodes
    edge_pad = np.arange(n_edge) >= real_edges
    nodes = dict(padded.nodes,
                 kind=np.where(node_pad, -1, padded.nodes["kind"]).astype(np.int32),
                 neuron_id=np.where(node_pad, -1, padded.nodes["neuron_id"]).astype(np.int32))
    edges = dict(padded.edges,
                 kind=np.where(edge_pad, -1, padded.edges["kind"]).astype(np.int32))
    return padded._replace(nodes=nodes, edges=edges)


def batch_and_pad(cgs: Sequence[CG], **pad_kwargs) -> jraph.GraphsTuple:
    """``pad_to_bucket(batch_graphs(cgs))``."""
    return pad_to_bucket(batch_graphs(cgs), **pad_kwargs)


def padding_efficiency(graph: jraph.GraphsTuple) -> Dict[str, float]:
    """Real vs padded nodes/edges/graphs of a padded batch (fill = real / padded)."""
    real_n = int(np.sum(graph.nodes["valid"]))
    real_e = int(np.sum(graph.edges["valid"]))
    real_g = int(np.sum(graph.globals["valid"]))
    n, e, g = (int(graph.n_node.sum()), int(graph.n_edge.sum()), int(graph.n_node.shape[0]))
    return {"real_nodes": real_n, "padded_nodes": n, "node_fill": real_n / max(n, 1),
            "real_edges": real_e, "padded_edges": e, "edge_fill": real_e / max(e, 1),
            "real_graphs": real_g, "padded_graphs": g}


def stack_device_batches(batches: Sequence[jraph.GraphsTuple]) -> jraph.GraphsTuple:
    """Stack same-shape padded batches on a new leading axis (one per device, for pmap)."""
    shapes = {tuple(x.shape for x in jax.tree.leaves(b)) for b in batches}
    if len(shapes) != 1:
        raise ValueError("per-device batches must be padded to the same shapes; pass "
                         "explicit n_node/n_edge/n_graph to pad_to_bucket")
    return jax.tree.map(lambda *xs: np.stack(xs), *batches)
