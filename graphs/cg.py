"""The computational graph (CG) of one model as plain numpy arrays, and the
builder that the converter fills node by node."""

from __future__ import annotations

import dataclasses
import functools
from typing import Dict, List, Optional

import numpy as np

from graphs import schema
from graphs.schema import EDGE_COLUMNS, EDGE_INDEX, NODE_COLUMNS, NODE_INDEX, EdgeKind, NodeKind
from graphs.units import unit_table


@dataclasses.dataclass(frozen=True)
class CG:
    """One model's graph. Node 0 is the CLS node. Local indices throughout."""

    node_features: np.ndarray  # [N, F] float32, encoded (schema.encode)
    node_feature_mask: np.ndarray  # [N, F] float32, 1 where the value is known
    node_kind: np.ndarray  # [N] int32, schema.NodeKind
    neuron_id: np.ndarray  # [N] int32, index of the owning neuron node or -1
    node_name: np.ndarray  # [N] str, e.g. "pop0/3/dend_1"
    senders: np.ndarray  # [E] int32
    receivers: np.ndarray  # [E] int32
    edge_kind: np.ndarray  # [E] int32, schema.EdgeKind
    edge_forward: np.ndarray  # [E] int32, 1 = along signal flow, 0 = against
    edge_features: np.ndarray  # [E, Fe] float32
    edge_feature_mask: np.ndarray  # [E, Fe] float32
    meta: Dict = dataclasses.field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return int(self.node_kind.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.senders.shape[0])

    def nodes_by_kind(self) -> Dict[str, int]:
        return {k.name.lower(): int(np.sum(self.node_kind == k)) for k in NodeKind}

    def edges_by_kind(self) -> Dict[str, int]:
        return {k.name.lower(): int(np.sum(self.edge_kind == k)) for k in EdgeKind}

    def feature(self, name: str) -> np.ndarray:
        """Decoded values of one node column in its reference unit; NaN where absent."""
        j = NODE_INDEX[name]
        values = schema.decode(NODE_COLUMNS[j], self.node_features[:, j])
        return np.where(self.node_feature_mask[:, j] > 0, values, np.nan)

    def edge_feature(self, name: str) -> np.ndarray:
        """Decoded values of one edge column in its reference unit; NaN where absent."""
        j = EDGE_INDEX[name]
        values = schema.decode(EDGE_COLUMNS[j], self.edge_features[:, j])
        return np.where(self.edge_feature_mask[:, j] > 0, values, np.nan)


class GraphBuilder:
    """Accumulates nodes and edges; values are given in SI and encoded on ``finish``.

    Features are sparse dicts ``{column name: SI value}``; the schema's
    reference unit and transform are applied in one place (``_encode_rows``).
    """

    def __init__(self):
        self.kind: List[int] = []
        self.neuron: List[int] = []
        self.name: List[str] = []
        self.feats: List[Dict[str, float]] = []
        self.snd: List[int] = []
        self.rcv: List[int] = []
        self.ekind: List[int] = []
        self.fwd: List[int] = []
        self.efeats: List[Dict[str, float]] = []

    def add_node(self, kind: NodeKind, neuron_id: int, name: str,
                 feats: Optional[Dict[str, float]] = None) -> int:
        self.kind.append(int(kind))
        self.neuron.append(int(neuron_id))
        self.name.append(name)
        self.feats.append(dict(feats or {}))
        return len(self.kind) - 1

    @property
    def next_index(self) -> int:
        """Index the next ``add_node`` will return (a neuron node owns itself)."""
        return len(self.kind)

    def update_node(self, i: int, feats: Dict[str, float]) -> None:
        self.feats[i].update(feats)

    def add_edge(self, s: int, r: int, kind: EdgeKind, forward: bool,
                 feats: Optional[Dict[str, float]] = None) -> None:
        self.snd.append(s)
        self.rcv.append(r)
        self.ekind.append(int(kind))
        self.fwd.append(int(forward))
        self.efeats.append(dict(feats or {}))

    def add_edge_pair(self, a: int, b: int, kind: EdgeKind, a_to_b_forward: bool,
                      feats: Optional[Dict[str, float]] = None) -> None:
        """Both directions of an undirected coupling, flagged forward/backward."""
        self.add_edge(a, b, kind, a_to_b_forward, feats)
        self.add_edge(b, a, kind, not a_to_b_forward, feats)

    def finish(self, meta: Dict) -> CG:
        kind = np.asarray(self.kind, np.int32)
        snd = np.asarray(self.snd, np.int32).reshape(-1)
        rcv = np.asarray(self.rcv, np.int32).reshape(-1)
        ekind = np.asarray(self.ekind, np.int32).reshape(-1)
        fwd = np.asarray(self.fwd, np.int32).reshape(-1)
        n = kind.shape[0]
        nf, nm = _encode_rows(self.feats, NODE_COLUMNS, NODE_INDEX)
        _fill_type_and_degrees(nf, nm, kind, snd, rcv, ekind)
        ef, em = _encode_rows(self.efeats, EDGE_COLUMNS, EDGE_INDEX)
        if ekind.size:
            ef[np.arange(ekind.size), ekind] = 1.0
            ef[:, EDGE_INDEX["forward"]] = fwd
        em[:, schema.EDGE_GROUPS["kind"]] = 1.0
        em[:, schema.EDGE_GROUPS["flow"]] = 1.0
        return CG(nf, nm, kind, np.asarray(self.neuron, np.int32),
                  np.asarray(self.name, dtype=str).reshape(n), snd, rcv, ekind, fwd,
                  ef, em, dict(meta))


def _encode_rows(rows, columns, index):
    """Sparse SI dicts -> dense encoded values and presence mask (vectorized)."""
    values = np.zeros((len(rows), len(columns)), np.float32)
    mask = np.zeros_like(values)
    ii, jj, vv = [], [], []
    for i, row in enumerate(rows):
        for name, si in row.items():
            ii.append(i)
            jj.append(index[name])
            vv.append(si)
    if not ii:
        return values, mask
    ii, jj, vv = np.asarray(ii), np.asarray(jj), np.asarray(vv, np.float64)
    ref = _ref_factors(columns)
    values[ii, jj] = schema.encode_values(columns, jj, vv / ref[0][jj] - ref[1][jj])
    mask[ii, jj] = 1.0
    return values, mask


@functools.lru_cache(maxsize=None)
def _ref_factors(columns):
    """Per-column (SI value of one reference unit, unit offset); (1, 0) if unitless."""
    factor = np.ones(len(columns))
    offset = np.zeros(len(columns))
    for j, col in enumerate(columns):
        if col.unit:
            unit = unit_table()[col.unit]
            factor[j], offset[j] = unit.factor, unit.offset
    return factor, offset


def _fill_type_and_degrees(nf, nm, kind, snd, rcv, ekind):
    """Node-kind one-hot and in/out degree per edge kind (derived, always present)."""
    n = kind.shape[0]
    nf[np.arange(n), NODE_INDEX["kind_cls"] + kind] = 1.0
    nm[:, NODE_INDEX["kind_cls"]:NODE_INDEX["kind_cls"] + len(NodeKind)] = 1.0
    for k in EdgeKind:
        sel = ekind == k
        deg_in = np.bincount(rcv[sel], minlength=n)
        deg_out = np.bincount(snd[sel], minlength=n)
        for col, deg in ((f"deg_in_{k.name.lower()}", deg_in),
                         (f"deg_out_{k.name.lower()}", deg_out)):
            nf[:, NODE_INDEX[col]] = np.log1p(deg)
            nm[:, NODE_INDEX[col]] = 1.0
    # Synaptic inputs/outputs of a neuron-level node: synaptic edges into/out of
    # its compartments are counted on the compartments themselves.
    syn = ekind == EdgeKind.SYNAPTIC
    to_syn = syn & (kind[rcv] == NodeKind.SYNAPSE) if rcv.size else syn
    from_syn = syn & (kind[snd] == NodeKind.SYNAPSE) if snd.size else syn
    nf[:, NODE_INDEX["n_syn_out"]] = np.log1p(np.bincount(snd[to_syn], minlength=n))
    nf[:, NODE_INDEX["n_syn_in"]] = np.log1p(np.bincount(rcv[from_syn], minlength=n))
    nm[:, NODE_INDEX["n_syn_out"]] = 1.0
    nm[:, NODE_INDEX["n_syn_in"]] = 1.0
