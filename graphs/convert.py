"""NeuroML2 model -> computational graph (CG).

Node order: CLS (0); per population and instance a neuron node followed by its
compartments; then synapse nodes; then input nodes. What becomes a graph:

* a file with ``<network>``s: every population instance, projection, electrical
  and continuous projection, explicit input and input list;
* else a file with cells: one neuron per cell definition of the root file
  (of the included files if the root defines none);
* else a file with only morphologies: one neuron per morphology;
* else a file with only synapses, inputs or channels: a small "library" graph,
  a CLS node plus one synapse node per synapse and one input node per input
  (channels, concentration models and biophysical properties set the CLS
  node's class and are listed in ``meta["components"]``);
* else ``NothingToConvert``.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from graphs.cg import CG, GraphBuilder
from graphs.errors import InvalidValue, NothingToConvert, UnknownComponent
from graphs.morphology import Template, custom_template, morphology_template, point_template
from graphs.params import class_feature, input_features, synapse_features
from graphs.network import (CONTINUOUS, ELECTRICAL, PROJECTION, ConnectionTable, InputTable,
                            Network, Rows, from_xml)
from graphs.reader import Component, Model, line_of, networks, read_model
from graphs.schema import (CELL_CLASSES, GRANULARITIES, INPUT_CLASSES, SCHEMA_VERSION,
                           SYNAPSE_CLASSES, EdgeKind, NodeKind, model_class)

UM = 1e-6


SYNAPSE_MODES = ("connection", "type")


def convert_file(path, granularity: str = "section", synapses: str = "connection",
                 allow: Sequence = ()) -> CG:
    """Read a NeuroML2 file (``.nml``, or an ``.nml.h5`` network, and its includes) and
    build its CG. ``synapses``: one synapse node per connection, or per (pre population,
    post population, synapse component) with the connections' statistics (``type``).
    Includes and HDF5 links read only inside the model's tree and the folders in
    ``allow`` (``graphs.policy``)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, not {granularity!r}")
    if synapses not in SYNAPSE_MODES:
        raise ValueError(f"synapses must be one of {SYNAPSE_MODES}, not {synapses!r}")
    return model_to_cg(read_model(path, allow), granularity, synapses)


def model_to_cg(model: Model, granularity: str = "section", synapses: str = "connection") -> CG:
    conv = _Converter(model, granularity, synapses)
    extra: Dict[str, object] = {}
    nets = network_tables(model)
    if nets:
        for net in nets:
            conv.network(net)
        what = "network"
    else:
        cells = _cells(model.root_document, model)
        if not cells:
            cells = [c for c in model.components.values() if model_class(c.tag) in CELL_CLASSES]
        morphs = [Component("morphology", m, model.root, line_of(m))
                  for m in model.root_document.morphology or []]
        if cells or morphs:
            for p, comp in enumerate(cells or morphs):
                conv.population(comp.obj.id, comp.obj.id, comp, np.zeros(1, np.int64), None,
                                p, len(cells or morphs))
            what = "cells" if cells else "morphology"
            if len(cells or morphs) == 1:
                extra = conv.segment_groups()
        else:
            conv.library()
            what = "library"
    meta = {"schema_version": SCHEMA_VERSION, "source": model.root,
            "sha256": model.sha256[model.root], "files": model.sha256,
            "granularity": granularity, "synapses": synapses, "content": what,
            "components": sorted(model.components), **extra}
    return conv.b.finish(meta)


def network_tables(model: Model) -> List[Network]:
    """Every network of the model as tables: the XML ``<network>``s of its files, and
    the HDF5 networks of an ``.nml.h5`` root (``graphs.hdf5``)."""
    return list(model.h5_networks) + [from_xml(net, file) for net, file in networks(model)]


def cell_segments(path, granularity: str = "section",
                  allow: Sequence = ()) -> Dict[str, np.ndarray]:
    """The segments of a one-cell file, for drawing it: ``prox``/``dist`` [S, 3] um and
    ``node`` [S], the CG node (of ``convert_file(path, granularity)``) each lies in."""
    from graphs.morphology import segment_points

    model = read_model(path, allow)
    cells = [c for c in _cells(model.root_document, model) if c.tag in ("cell", "cell2CaPools")]
    if len(cells) != 1:
        raise NothingToConvert(path, f"expected one multi-compartment cell, found {len(cells)}")
    conv = _Converter(model, granularity)
    tmpl = conv.template(cells[0].obj.id, cells[0])
    prox, dist, ids = segment_points(conv.morphology(cells[0]), cells[0].file)
    first = 2  # CLS, neuron, then the compartments (this module's node order)
    return {"prox": prox, "dist": dist,
            "node": np.array([first + tmpl.seg_to_comp[int(i)] for i in ids], np.int64)}


def _cells(doc, model: Model) -> List[Component]:
    ids = [c.id for name in ("cells", "cell2_ca_poolses", "izhikevich2007_cells", "izhikevich_cells",
                             "ad_ex_ia_f_cells", "iaf_cells", "iaf_ref_cells",
                             "iaf_tau_cells", "iaf_tau_ref_cells", "fitz_hugh_nagumo_cells",
                             "pinsky_rinzel_ca3_cells", "IF_curr_alpha", "IF_curr_exp",
                             "IF_cond_alpha", "IF_cond_exp", "EIF_cond_exp_isfa_ista",
                             "EIF_cond_alpha_isfa_ista", "HH_cond_exp")
           for c in getattr(doc, name, None) or []]
    return [model.components[i] for i in ids if i in model.components]


# A spike-source "cell": no compartments, every segment maps to the input node itself.
_SOURCE = Template({}, [], [], [], np.zeros((0, 3)), [], {})


class _Pop(NamedTuple):
    """Where a population's cells sit in the graph, for vectorised endpoint lookups."""

    ids: np.ndarray  # [n] instance ids, sorted
    first: np.ndarray  # [n] first compartment node of each (the node itself for sources)
    neuron: np.ndarray  # [n] neuron node (the input node for sources)
    tmpl: Template
    seg_ids: np.ndarray  # [S] segment ids with a compartment, sorted
    seg_comp: np.ndarray  # [S] compartment index of each


def _pop_index(ids: np.ndarray, first: np.ndarray, neuron: np.ndarray, tmpl: Template) -> _Pop:
    order = np.argsort(ids, kind="stable")
    segs = np.asarray(sorted(tmpl.seg_to_comp), np.int64)
    return _Pop(ids[order], first[order], neuron[order], tmpl, segs,
                np.asarray([tmpl.seg_to_comp[s] for s in segs], np.int64))


def _names(prefix: str, ids: np.ndarray, suffix: str = "") -> np.ndarray:
    """``prefix + str(id) + suffix`` for each id, as one string array."""
    out = np.char.add(prefix, ids.astype(str))
    return np.char.add(out, suffix) if suffix else out


def _instance_block(tmpl: Template, pop_index: float):
    """The nodes and edges of one instance of a template, relative to its neuron node.

    Returns (kinds [B], cols {name: [B]}, edges (snd [L], rcv [L], kind [L], fwd [L],
    distance [L])) where B = 1 + compartments; edge endpoint -1 stands for the CLS node.
    """
    b = 1 + len(tmpl.comp_kind)
    kinds = np.asarray([NodeKind.NEURON] + list(tmpl.comp_kind), np.int32)
    cols: Dict[str, np.ndarray] = {}
    for r, feats in enumerate([dict(tmpl.neuron_feats, population_index=pop_index)]
                              + list(tmpl.comp_feats)):
        for name, v in feats.items():
            cols.setdefault(name, np.full(b, np.nan))[r] = v
    snd, rcv, kind, fwd, dist = [], [], [], [], []

    def pair(a, c, k, a_fwd, d=np.nan):
        snd.extend((a, c)), rcv.extend((c, a)), kind.extend((k, k))
        fwd.extend((int(a_fwd), int(not a_fwd))), dist.extend((d, d))

    for c in range(len(tmpl.comp_kind)):
        pair(1 + c, 0, EdgeKind.MEMBERSHIP, True)
    for child, parent, child_fwd, d in tmpl.axial:
        pair(1 + child, 1 + parent, EdgeKind.AXIAL, child_fwd, d)
    pair(0, -1, EdgeKind.CLS, True)
    edges = tuple(np.asarray(a) for a in (snd, rcv, kind, fwd)) + (np.asarray(dist, float),)
    return kinds, cols, edges


class _Stats:
    """Running count, mean, variance (Chan et al.), min and max of values over chunks."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.lo, self.hi = np.inf, -np.inf

    def add(self, x: np.ndarray) -> None:
        x = x[~np.isnan(x)]
        if not x.size:
            return
        n, mean = x.size, float(np.mean(x))
        m2 = float(np.sum((x - mean) ** 2))
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))

    def columns(self, prefix: str) -> Dict[str, float]:
        if not self.n:
            return {}
        return {f"{prefix}_mean": self.mean, f"{prefix}_std": float(np.sqrt(self.m2 / self.n)),
                f"{prefix}_min": self.lo, f"{prefix}_max": self.hi}


class _TypeNode:
    """One synapse node standing for all connections of a (pre population, post
    population, synapse) triple: statistics and per-endpoint sums, chunk by chunk."""

    def __init__(self, syn: Component, name: str):
        self.syn, self.name = syn, name
        self.weight, self.delay = _Stats(), _Stats()
        self.count = 0
        self.ends = {"pre": [], "post": []}  # [(nodes, weights, delays)] per chunk

    def add(self, pre, post, weight, delay) -> None:
        self.count += pre.size
        self.weight.add(weight)
        if delay is not None:
            self.delay.add(delay)
        for side, nodes in (("pre", pre), ("post", post)):
            self.ends[side].append(_reduce(nodes, weight, delay))

    def endpoint_edges(self, side: str):
        """(nodes [M] sorted, connections [M], mean weight [M], mean delay [M])."""
        parts = self.ends[side]
        nodes = np.concatenate([p[0] for p in parts])
        n, w, d, nd = (np.concatenate([p[k] for p in parts]) for k in (1, 2, 3, 4))
        uniq, inv = np.unique(nodes, return_inverse=True)
        count = np.bincount(inv, n, uniq.size)
        wsum = np.bincount(inv, w, uniq.size)
        dsum, dn = np.bincount(inv, d, uniq.size), np.bincount(inv, nd, uniq.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            delay = np.where(dn > 0, dsum / np.maximum(dn, 1), np.nan)
        return uniq, count, wsum / count, delay


def _reduce(nodes, weight, delay):
    """Per distinct node of a chunk: (nodes, connections, weight sum, delay sum, delays)."""
    uniq, inv = np.unique(nodes, return_inverse=True)
    count = np.bincount(inv, minlength=uniq.size).astype(np.float64)
    wsum = np.bincount(inv, weight, uniq.size)
    if delay is None:
        zero = np.zeros(uniq.size)
        return uniq, count, wsum, zero, zero
    have = ~np.isnan(delay)
    return (uniq, count, wsum, np.bincount(inv, np.where(have, delay, 0.0), uniq.size),
            np.bincount(inv, have.astype(np.float64), uniq.size))


class _Converter:
    """Holds the builder and the per-model lookups while a model is converted."""

    def __init__(self, model: Model, granularity: str, synapses: str = "connection"):
        self.model = model
        self.granularity = granularity
        self.synapses = synapses
        self.b = GraphBuilder()
        self.cls = self.b.add_node(NodeKind.CLS, -1, "CLS")
        self.templates: Dict[str, Template] = {}
        self.pops: Dict[str, _Pop] = {}  # population id -> where its cells are
        self.features: Dict[Tuple[str, int], Dict[str, float]] = {}  # per component

    def component_features(self, kind: str, comp: Component) -> Dict[str, float]:
        """Synapse/input columns of a component, computed once per component."""
        key = (kind, id(comp.obj))
        if key not in self.features:
            fn = synapse_features if kind == "synapse" else input_features
            self.features[key] = fn(comp, self.model.components)
        return self.features[key]

    # -- lookups ---------------------------------------------------------------
    def component(self, cid: str, file, element, obj) -> Component:
        comp = self.model.components.get(cid)
        if comp is None:
            raise UnknownComponent(file, f"{cid!r} is not defined in this file or its "
                                   "includes", element, line_of(obj))
        return comp

    def template(self, key: str, comp: Component) -> Template:
        if key not in self.templates:
            if comp.obj is None:  # custom LEMS type: a neuron of class "other"
                self.templates[key] = custom_template(comp)
            elif comp.tag in ("cell", "cell2CaPools"):
                self.templates[key] = self._cell_template(comp)
            elif comp.tag == "morphology":
                self.templates[key] = morphology_template(comp, comp.obj, None,
                                                          self.granularity)
            else:
                self.templates[key] = point_template(comp)
        return self.templates[key]

    def segment_groups(self) -> Dict[str, List[int]]:
        """Segment group id -> CG nodes of the only cell converted ({} for point cells):
        which compartments a channel density on that group sits in."""
        if len(self.pops) != 1 or next(iter(self.pops.values())).ids.size != 1:
            return {}
        pop, = self.pops.values()
        first, tmpl = int(pop.first[0]), pop.tmpl
        groups = {g: [first + c for c in comps] for g, comps in tmpl.group_comps.items()}
        return {"segment_groups": groups} if groups else {}

    def morphology(self, comp: Component):
        cell = comp.obj
        morph = cell.morphology
        if morph is None and cell.morphology_attr:
            morph = self.component(cell.morphology_attr, comp.file, "cell", cell).obj
        if morph is None:
            raise InvalidValue(comp.file, f"cell {cell.id!r} has no morphology", "cell",
                               line_of(cell))
        return morph

    def _cell_template(self, comp: Component) -> Template:
        cell = comp.obj
        morph = self.morphology(comp)
        bp = getattr(cell, "biophysical_properties2_ca_pools", None) or cell.biophysical_properties
        if bp is None and cell.biophysical_properties_attr:
            bp = self.component(cell.biophysical_properties_attr, comp.file, "cell", cell).obj
        return morphology_template(comp, morph, bp, self.granularity)

    # -- building blocks -------------------------------------------------------
    def population(self, pop_id: str, comp_id: str, comp: Component, ids: np.ndarray,
                   locations: Optional[np.ndarray], pop_index: int, n_pops: int) -> None:
        """All instances of a population at once: per instance a neuron node and its
        compartments, membership/axial/CLS edges (instance by instance, as one block)."""
        if model_class(comp.tag) in INPUT_CLASSES:  # e.g. spikeArray populations
            self.input_population(pop_id, comp, ids, locations)
            return
        tmpl = self.template(comp_id, comp)
        b = self.b
        n = ids.shape[0]
        kinds, cols, (esnd, ercv, ekind, efwd, edist) = _instance_block(
            tmpl, pop_index / max(n_pops - 1, 1))
        width = kinds.shape[0]
        neuron = b.next_index + np.arange(n, dtype=np.int64) * width  # [n]
        offset = np.zeros((n, 3)) if locations is None else locations * UM  # [n, 3] m
        block = {name: np.tile(v, n) for name, v in cols.items()}
        block["instance_index"] = np.repeat(np.arange(n) / max(n - 1, 1), width)
        block["instance_index"][np.tile(np.arange(width) > 0, n)] = np.nan
        pos = np.concatenate([np.full((1, 3), np.nan), tmpl.comp_pos])  # [B, 3]
        if locations is not None:
            pos[0] = 0.0
        has = np.all(np.isfinite(pos), axis=1)
        for d, axis in enumerate("xyz"):
            v = np.where(has, pos[:, d], np.nan)[None, :] + offset[:, d:d + 1]  # [n, B]
            if axis in block:
                v = np.where(np.isnan(v), block[axis].reshape(n, width), v)
            block[axis] = v.reshape(-1)
        names = np.char.add(np.repeat(_names(f"{pop_id}/", ids), width),
                            np.tile(np.asarray([""] + [f"/{c}" for c in tmpl.comp_name]), n))
        b.add_nodes(np.tile(kinds, n), np.repeat(neuron, width), names, block)
        base = neuron[:, None]  # [n, 1]
        snd = np.where(esnd < 0, self.cls, base + esnd).reshape(-1)
        rcv = np.where(ercv < 0, self.cls, base + ercv).reshape(-1)
        b.add_edges(snd, rcv, np.tile(ekind, n), np.tile(efwd, n),
                    {"distance": np.tile(edist, n)} if len(tmpl.axial) else None)
        self.pops[pop_id] = _pop_index(ids, neuron + 1, neuron, tmpl)

    def input_population(self, pop_id: str, comp: Component, ids: np.ndarray,
                         locations: Optional[np.ndarray]) -> None:
        """A population of spike sources: one input node per instance, no neuron. Its
        projections start at the input node."""
        cols = dict(self.component_features("input", comp))
        if locations is not None:
            cols.update(x=locations[:, 0] * UM, y=locations[:, 1] * UM,
                        z=locations[:, 2] * UM)
        first = self.b.add_nodes(NodeKind.INPUT, -1, _names(f"{pop_id}/", ids), cols)
        nodes = first + np.arange(ids.shape[0], dtype=np.int64)
        self.pops[pop_id] = _pop_index(ids, nodes, nodes, _SOURCE)

    def endpoints(self, pop: str, cells: np.ndarray, segs: np.ndarray, table,
                  start: int) -> Tuple[np.ndarray, Optional[Tuple[int, str]]]:
        """Compartment node of each (cell, segment) of a population [K], and the first
        bad row as (row, message) instead of raising, so pre/post errors can be ordered."""
        p = self.pops.get(pop)
        if p is None:
            return np.zeros_like(cells), (0, f"cell {cells[0]} of population {pop!r} does "
                                          "not exist")
        at = np.minimum(np.searchsorted(p.ids, cells), max(p.ids.size - 1, 0))
        ok = p.ids[at] == cells if p.ids.size else np.zeros(cells.shape, bool)
        if not ok.all():
            k = int(np.flatnonzero(~ok)[0])
            return cells, (k, f"cell {cells[k]} of population {pop!r} does not exist")
        first = p.first[at]
        if not p.seg_ids.size:
            return first, None
        s = np.minimum(np.searchsorted(p.seg_ids, segs), p.seg_ids.size - 1)
        ok = p.seg_ids[s] == segs
        if not ok.all():
            k = int(np.flatnonzero(~ok)[0])
            return first, (k, f"segment {segs[k]} does not exist in cell {cells[k]} of "
                           f"population {pop!r}")
        return first + p.seg_comp[s], None

    def _raise_first(self, table, start, *problems) -> None:
        found = [p for p in problems if p is not None]
        if found:
            row, msg = min(found, key=lambda p: p[0])  # stable: pre before post
            element, line = table.where(start + row)
            raise UnknownComponent(table.file, msg, element, line)

    def connection_ends(self, table: ConnectionTable, rows: Rows):
        pre, bad_pre = self.endpoints(table.pre, rows.pre_cell, rows.pre_seg, table, rows.start)
        post, bad_post = self.endpoints(table.post, rows.post_cell, rows.post_seg, table,
                                        rows.start)
        self._raise_first(table, rows.start, bad_pre, bad_post)
        return pre, post

    def synapses_of(self, table: ConnectionTable) -> List[Component]:
        element = {PROJECTION: "projection", ELECTRICAL: "electricalConnection",
                   CONTINUOUS: "continuousConnection"}[table.kind]
        for pre in table.pre_components:
            self.component_at(pre, table, element)
        return [self.component_at(s, table, element) for s in table.synapses]

    def component_at(self, cid: str, table, element: str) -> Component:
        comp = self.model.components.get(cid)
        if comp is None:
            raise UnknownComponent(table.file, f"{cid!r} is not defined in this file or its "
                                   "includes", element, table.line)
        return comp

    # -- network elements ------------------------------------------------------
    def network(self, net: Network) -> None:
        n_pops = len(net.populations)
        for p, pop in enumerate(net.populations):
            comp = self.model.components.get(pop.component)
            if comp is None:
                raise UnknownComponent(pop.file, f"{pop.component!r} is not defined in this "
                                       "file or its includes", "population", pop.line)
            self.population(pop.id, pop.component, comp, pop.ids, pop.locations, p, n_pops)
        by_type: Dict[Tuple[str, str, str], _TypeNode] = {}
        for table in net.connections:
            syns = self.synapses_of(table)
            if table.kind == ELECTRICAL:
                self.gap_junctions(table, syns)
            elif self.synapses == "type":
                self.typed_synapses(table, syns, by_type)
            else:
                self.connection_synapses(table, syns)
        for node in by_type.values():
            self.type_node(node)
        for table in net.inputs:
            self.input_nodes(table)

    def connection_synapses(self, table: ConnectionTable, syns: List[Component]) -> None:
        """One synapse node per connection: pre -> synapse -> post (``--synapses
        connection``); its count is 1 and its weight statistics are its own weight."""
        for rows in table.chunks():
            pre, post = self.connection_ends(table, rows)
            k = pre.shape[0]
            code = np.zeros(k, np.int32) if rows.synapse is None else rows.synapse
            for s, syn in enumerate(syns):
                sel = code == s
                if not sel.any():
                    continue
                feats = self.component_features("synapse", syn)
                w = rows.weight[sel]
                d = None if rows.delay is None or table.kind == CONTINUOUS else rows.delay[sel]
                cols = {**feats, "syn_count": 1.0, "syn_weight_mean": w, "syn_weight_std": 0.0,
                        "syn_weight_min": w, "syn_weight_max": w}
                if d is not None:
                    cols.update(syn_delay_mean=d, syn_delay_std=np.where(np.isnan(d), np.nan, 0),
                                syn_delay_min=d, syn_delay_max=d)
                first = self.b.add_nodes(NodeKind.SYNAPSE, -1,
                                         _names(f"{table.id}/", rows.ids[sel]), cols)
                node = first + np.arange(int(sel.sum()), dtype=np.int64)
                ef = {"weight": w, "n_connections": 1.0}
                if d is not None:
                    ef["delay"] = d
                if "syn_gbase" in feats:
                    ef["conductance"] = feats["syn_gbase"]
                ef = {c: np.repeat(np.broadcast_to(v, node.shape), 2) for c, v in ef.items()}
                self.b.add_edges(np.stack([pre[sel], node], 1).reshape(-1),
                                 np.stack([node, post[sel]], 1).reshape(-1),
                                 EdgeKind.SYNAPTIC, True, ef)

    def typed_synapses(self, table: ConnectionTable, syns: List[Component],
                       by_type: Dict[Tuple[str, str, str], "_TypeNode"]) -> None:
        """Accumulate a projection into the synapse nodes of its (pre population, post
        population, synapse) triples (``--synapses type``), chunk by chunk."""
        for rows in table.chunks():
            pre, post = self.connection_ends(table, rows)
            code = np.zeros(pre.shape[0], np.int32) if rows.synapse is None else rows.synapse
            for s, syn in enumerate(syns):
                sel = code == s
                if not sel.any():
                    continue
                key = (table.pre, table.post, table.synapses[s])
                node = by_type.get(key)
                if node is None:
                    node = by_type[key] = _TypeNode(syn, f"{key[0]}->{key[1]}:{key[2]}")
                delay = None if rows.delay is None or table.kind == CONTINUOUS else rows.delay[sel]
                node.add(pre[sel], post[sel], rows.weight[sel], delay)

    def type_node(self, t: "_TypeNode") -> None:
        feats = self.component_features("synapse", t.syn)
        node = self.b.add_node(NodeKind.SYNAPSE, -1, t.name, {
            **feats, "syn_count": float(t.count), **t.weight.columns("syn_weight"),
            **t.delay.columns("syn_delay")})
        for side in ("pre", "post"):
            ends, count, weight, delay = t.endpoint_edges(side)
            ef = {"weight": weight, "n_connections": count}
            if t.delay.n:
                ef["delay"] = delay
            if "syn_gbase" in feats:
                ef["conductance"] = feats["syn_gbase"]
            snd, rcv = (ends, node) if side == "pre" else (node, ends)
            self.b.add_edges(snd, rcv, EdgeKind.SYNAPTIC, True, ef)

    def gap_junctions(self, table: ConnectionTable, syns: List[Component]) -> None:
        """Electrical connections are edges, not nodes: pre <-> post, in both modes."""
        g = np.asarray([self.component_features("synapse", s).get("syn_gbase", np.nan)
                        for s in syns])
        for rows in table.chunks():
            pre, post = self.connection_ends(table, rows)
            code = np.zeros(pre.shape[0], np.int32) if rows.synapse is None else rows.synapse
            cols = {"weight": np.repeat(rows.weight, 2), "conductance": np.repeat(g[code], 2)}
            self.b.add_edges(np.stack([pre, post], 1).reshape(-1),
                             np.stack([post, pre], 1).reshape(-1), EdgeKind.GAP, True, cols)

    def input_nodes(self, table: InputTable) -> None:
        comp = self.model.components.get(table.component)
        if comp is None:
            raise UnknownComponent(table.file, f"{table.component!r} is not defined in this "
                                   "file or its includes", table.group_element, table.line)
        rows = table.read(0, table.n)
        if table.population is not None:
            target, bad = self.endpoints(table.population, rows.pre_cell, rows.pre_seg,
                                         table, 0)
            self._raise_first(table, 0, bad)
        else:  # per-row populations (XML input lists, explicit inputs)
            pops = np.asarray(table.populations)
            target = np.zeros(table.n, np.int64)
            problems = []
            for pop in dict.fromkeys(table.populations):
                sel = np.flatnonzero(pops == pop)
                t, bad = self.endpoints(pop, rows.pre_cell[sel], rows.pre_seg[sel], table, 0)
                target[sel] = t
                if bad is not None:
                    problems.append((int(sel[bad[0]]), bad[1]))
            self._raise_first(table, 0, *problems)
        names = (np.asarray(table.names, dtype=str) if table.names is not None
                 else _names(f"{table.id}/", rows.ids))
        first = self.b.add_nodes(NodeKind.INPUT, -1, names,
                                 {**self.component_features("input", comp),
                                  "input_weight": rows.weight})
        nodes = first + np.arange(table.n, dtype=np.int64)
        self.b.add_edges(nodes, target, EdgeKind.INPUT, True, {"weight": rows.weight})

    def library(self) -> None:
        """Synapse and input definitions without cells or networks."""
        found = False
        for cid, comp in sorted(self.model.components.items()):
            if comp.file != self.model.root:
                continue
            cls = model_class(comp.tag)
            if cls in SYNAPSE_CLASSES:
                self.b.add_node(NodeKind.SYNAPSE, -1, cid,
                                synapse_features(comp, self.model.components))
            elif cls in INPUT_CLASSES:
                self.b.add_node(NodeKind.INPUT, -1, cid,
                                input_features(comp, self.model.components))
            elif (cls == "ionChannel" or comp.tag.endswith("ConcentrationModel")
                  or comp.tag == "biophysicalProperties"):
                self.b.update_node(self.cls, class_feature(comp.tag))
            else:
                continue
            found = True
        if not found:
            raise NothingToConvert(self.model.root, "the document defines no cell, "
                                   "network, synapse, input or channel", "neuroml")
