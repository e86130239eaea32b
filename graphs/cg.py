"""The computational graph (CG) of one model as plain numpy arrays, and the
builder that the converter fills node by node."""

from __future__ import annotations

import dataclasses
import functools
from typing import Dict, List, NamedTuple, Optional

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


class _Nodes(NamedTuple):
    """A block of nodes; ``cols`` maps column name -> [K] SI values (NaN = absent)."""

    kind: np.ndarray  # [K] int32
    neuron: np.ndarray  # [K] int32
    name: np.ndarray  # [K] str
    cols: Dict[str, np.ndarray]


class _Edges(NamedTuple):
    senders: np.ndarray  # [K] int32
    receivers: np.ndarray  # [K] int32
    kind: np.ndarray  # [K] int32
    forward: np.ndarray  # [K] int32
    cols: Dict[str, np.ndarray]


def _column_block(rows: List[Dict[str, float]]) -> Dict[str, np.ndarray]:
    """Sparse per-row dicts -> column name -> [K] values, NaN where a row lacks it."""
    out: Dict[str, np.ndarray] = {}
    for i, row in enumerate(rows):
        for name, si in row.items():
            col = out.get(name)
            if col is None:
                col = out[name] = np.full(len(rows), np.nan)
            col[i] = si
    return out


def _as_column(value, k: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float64), (k,))


class GraphBuilder:
    """Accumulates nodes and edges; values are given in SI and encoded on ``finish``.

    Small parts of a graph are added one node or edge at a time (``add_node``,
    ``add_edge``: sparse dicts ``{column name: SI value}``); populations and
    connections are added as blocks of arrays (``add_nodes``, ``add_edges``), so a
    network with millions of connections is never one Python object per connection.
    Either way the schema's reference unit and transform are applied in one place
    (``_encode``), column by column.
    """

    def __init__(self):
        self._nodes: List[_Nodes] = []
        self._edges: List[_Edges] = []
        self._rows: List[tuple] = []  # pending single nodes (kind, neuron, name, feats)
        self._erows: List[tuple] = []  # pending single edges (s, r, kind, fwd, feats)
        self._updates: Dict[int, Dict[str, float]] = {}
        self.n_nodes = 0
        self.n_edges = 0

    # -- one at a time -------------------------------------------------------------
    def add_node(self, kind: NodeKind, neuron_id: int, name: str,
                 feats: Optional[Dict[str, float]] = None) -> int:
        self._rows.append((int(kind), int(neuron_id), name, dict(feats or {})))
        self.n_nodes += 1
        return self.n_nodes - 1

    @property
    def next_index(self) -> int:
        """Index the next node will get (a neuron node owns itself)."""
        return self.n_nodes

    def update_node(self, i: int, feats: Dict[str, float]) -> None:
        """Set more columns of node ``i`` (applied over what it was given)."""
        self._updates.setdefault(int(i), {}).update(feats)

    def add_edge(self, s: int, r: int, kind: EdgeKind, forward: bool,
                 feats: Optional[Dict[str, float]] = None) -> None:
        self._erows.append((int(s), int(r), int(kind), int(forward), dict(feats or {})))
        self.n_edges += 1

    def add_edge_pair(self, a: int, b: int, kind: EdgeKind, a_to_b_forward: bool,
                      feats: Optional[Dict[str, float]] = None) -> None:
        """Both directions of an undirected coupling, flagged forward/backward."""
        self.add_edge(a, b, kind, a_to_b_forward, feats)
        self.add_edge(b, a, kind, not a_to_b_forward, feats)

    # -- blocks ----------------------------------------------------------------------
    def add_nodes(self, kind, neuron, names, cols: Optional[Dict[str, object]] = None) -> int:
        """K nodes at once: ``kind``/``neuron`` [K] or scalars, ``names`` [K] str,
        ``cols`` column -> [K] or scalar SI values (NaN = absent). Returns the first index."""
        self._flush_nodes()
        names = np.asarray(names, dtype=str).reshape(-1)
        k = names.shape[0]
        first = self.n_nodes
        self._nodes.append(_Nodes(
            np.broadcast_to(np.asarray(kind, np.int32), (k,)),
            np.broadcast_to(np.asarray(neuron, np.int32), (k,)), names,
            {c: _as_column(v, k) for c, v in (cols or {}).items()}))
        self.n_nodes += k
        return first

    def add_edges(self, senders, receivers, kind, forward,
                  cols: Optional[Dict[str, object]] = None) -> None:
        """K edges at once (arrays or scalars, as ``add_nodes``)."""
        self._flush_edges()
        snd, rcv = np.broadcast_arrays(np.asarray(senders, np.int32).reshape(-1),
                                       np.asarray(receivers, np.int32).reshape(-1))
        k = snd.shape[0]
        self._edges.append(_Edges(
            snd, rcv,
            np.broadcast_to(np.asarray(kind, np.int32), (k,)),
            np.broadcast_to(np.asarray(forward, np.int32), (k,)),
            {c: _as_column(v, k) for c, v in (cols or {}).items()}))
        self.n_edges += k

    def _flush_nodes(self) -> None:
        if self._rows:
            kind, neuron, name, feats = zip(*self._rows)
            self._nodes.append(_Nodes(np.asarray(kind, np.int32), np.asarray(neuron, np.int32),
                                      np.asarray(name, dtype=str), _column_block(feats)))
            self._rows = []

    def _flush_edges(self) -> None:
        if self._erows:
            s, r, kind, fwd, feats = zip(*self._erows)
            self._edges.append(_Edges(np.asarray(s, np.int32), np.asarray(r, np.int32),
                                      np.asarray(kind, np.int32), np.asarray(fwd, np.int32),
                                      _column_block(feats)))
            self._erows = []

    def finish(self, meta: Dict) -> CG:
        self._flush_nodes()
        self._flush_edges()
        nodes, edges = self._nodes, self._edges
        cat = lambda parts, dtype: (np.concatenate(parts) if parts  # noqa: E731
                                    else np.zeros(0, dtype))
        kind = cat([b.kind for b in nodes], np.int32).astype(np.int32)
        snd = cat([b.senders for b in edges], np.int32).astype(np.int32)
        rcv = cat([b.receivers for b in edges], np.int32).astype(np.int32)
        ekind = cat([b.kind for b in edges], np.int32).astype(np.int32)
        fwd = cat([b.forward for b in edges], np.int32).astype(np.int32)
        n = kind.shape[0]
        nf, nm = _encode([(b.kind.shape[0], b.cols) for b in nodes], n, NODE_COLUMNS,
                         NODE_INDEX)
        for i, feats in sorted(self._updates.items()):
            v, m = _encode([(1, _column_block([feats]))], 1, NODE_COLUMNS, NODE_INDEX)
            have = m[0] > 0
            nf[i, have], nm[i, have] = v[0, have], 1.0
        _fill_type_and_degrees(nf, nm, kind, snd, rcv, ekind)
        ef, em = _encode([(b.kind.shape[0], b.cols) for b in edges], ekind.size,
                         EDGE_COLUMNS, EDGE_INDEX)
        if ekind.size:
            ef[np.arange(ekind.size), ekind] = 1.0
            ef[:, EDGE_INDEX["forward"]] = fwd
        em[:, schema.EDGE_GROUPS["kind"]] = 1.0
        em[:, schema.EDGE_GROUPS["flow"]] = 1.0
        names = cat([b.name for b in nodes], str).astype(str).reshape(n)
        return CG(nf, nm, kind, cat([b.neuron for b in nodes], np.int32).astype(np.int32),
                  names, snd, rcv, ekind, fwd, ef, em, dict(meta))


def _encode(blocks, n: int, columns, index):
    """(K, column -> [K] SI values) blocks, in node/edge order -> dense encoded
    values [n, F] and presence mask [n, F] (NaN = absent)."""
    values = np.zeros((n, len(columns)), np.float32)
    mask = np.zeros_like(values)
    factor, offset = _ref_factors(columns)
    start = 0
    for k, cols in blocks:
        for name, si in cols.items():
            j = index[name]
            have = ~np.isnan(si)
            enc = schema.encode_column(columns[j], si / factor[j] - offset[j])
            values[start:start + k, j] = np.where(have, enc, 0.0)
            mask[start:start + k, j] = have
        start += k
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
