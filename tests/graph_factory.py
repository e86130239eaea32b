"""Random computational graphs with every node and edge kind, for model tests.

Built with the front end's own ``GraphBuilder`` so they follow the CG schema
exactly (CLS first, neuron_id, both directions of axial/membership/CLS edges,
synapse nodes between compartments, symmetric gap junctions, inputs), with
random feature values so that every node and edge is distinguishable.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from graphs.cg import CG, GraphBuilder
from graphs.schema import EdgeKind, NodeKind


def random_cg(seed: int, n_neurons: int = 4, max_compartments: int = 4, n_synapses: int = 6,
              n_gaps: int = 2, n_inputs: int = 2) -> CG:
    """A random multi-neuron graph; synapse 0 is duplicated (parallel edges on one pair)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder()
    cls = b.add_node(NodeKind.CLS, -1, "cls")
    comps = []  # (node index, neuron node index)
    for n in range(n_neurons):
        neuron = b.add_node(NodeKind.NEURON, b.next_index, f"n{n}")
        b.add_edge_pair(neuron, cls, EdgeKind.CLS, True)
        own = []
        for c in range(int(rng.integers(1, max_compartments + 1))):
            kind = NodeKind.SOMA if c == 0 else rng.choice([NodeKind.DENDRITE, NodeKind.AXON])
            node = b.add_node(kind, neuron, f"n{n}/c{c}")
            b.add_edge_pair(node, neuron, EdgeKind.MEMBERSHIP, True)
            if c:
                parent = own[int(rng.integers(0, c))]
                b.add_edge_pair(node, parent, EdgeKind.AXIAL, kind == NodeKind.DENDRITE,
                                {"distance": float(rng.uniform(1e-6, 1e-4))})
            own.append(node)
        comps += [(c, neuron) for c in own]

    def pick():
        return comps[int(rng.integers(0, len(comps)))][0]

    pairs = [(pick(), pick()) for _ in range(n_synapses)]
    for k, (pre, post) in enumerate(pairs + pairs[:1]):
        syn = b.add_node(NodeKind.SYNAPSE, -1, f"syn{k}")
        feats = {"weight": float(rng.uniform(0.1, 2.0)), "delay": float(rng.uniform(0, 5e-3))}
        b.add_edge(pre, syn, EdgeKind.SYNAPTIC, True, feats)
        b.add_edge(syn, post, EdgeKind.SYNAPTIC, True, feats)
    for _ in range(n_gaps):
        a, c = pick(), pick()
        b.add_edge(a, c, EdgeKind.GAP, True, {"conductance": 1e-9})
        b.add_edge(c, a, EdgeKind.GAP, True, {"conductance": 1e-9})
    for k in range(n_inputs):
        node = b.add_node(NodeKind.INPUT, -1, f"in{k}")
        b.add_edge(node, pick(), EdgeKind.INPUT, True, {"weight": 1.0})
    cg = b.finish({"source": f"random_cg({seed})"})
    noise = rng.normal(size=cg.node_features.shape).astype(np.float32)
    known = (rng.uniform(size=noise.shape) < 0.3).astype(np.float32)
    enoise = rng.normal(size=cg.edge_features.shape).astype(np.float32)
    return dataclasses.replace(
        cg, node_features=cg.node_features + noise * known,
        node_feature_mask=np.maximum(cg.node_feature_mask, known),
        edge_features=cg.edge_features + 0.5 * enoise, edge_feature_mask=np.ones_like(enoise))


def permute_cg(cg: CG, seed: int) -> tuple:
    """The same graph with nodes and edges in a random order: (cg, node order, edge order).

    ``order[k]`` is the old index of new node k; the CLS node moves as well.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(cg.n_nodes)
    new_of = np.empty_like(order)
    new_of[order] = np.arange(cg.n_nodes)
    eorder = rng.permutation(cg.n_edges)
    nid = np.where(cg.neuron_id >= 0, new_of[np.maximum(cg.neuron_id, 0)], -1)
    permuted = dataclasses.replace(
        cg, node_features=cg.node_features[order], node_feature_mask=cg.node_feature_mask[order],
        node_kind=cg.node_kind[order], neuron_id=nid[order].astype(np.int32),
        node_name=cg.node_name[order],
        senders=new_of[cg.senders[eorder]].astype(np.int32),
        receivers=new_of[cg.receivers[eorder]].astype(np.int32),
        edge_kind=cg.edge_kind[eorder], edge_forward=cg.edge_forward[eorder],
        edge_features=cg.edge_features[eorder], edge_feature_mask=cg.edge_feature_mask[eorder])
    return permuted, order, eorder
