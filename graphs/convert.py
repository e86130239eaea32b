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

import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from graphs.cg import CG, GraphBuilder
from graphs.errors import InvalidValue, NothingToConvert, UnknownComponent
from graphs.morphology import Template, custom_template, morphology_template, point_template
from graphs.params import class_feature, input_features, synapse_features
from graphs.reader import Component, Model, line_of, networks, read_model
from graphs.schema import (CELL_CLASSES, GRANULARITIES, INPUT_CLASSES, SCHEMA_VERSION,
                           SYNAPSE_CLASSES, EdgeKind, NodeKind, model_class)
from graphs.units import to_si

UM = 1e-6
_TARGET = re.compile(r"^(?:\.\./)?([^/\[\]]+)(?:\[(\d+)\]|/(\d+)(?:/[^/]+)?)?$")


def convert_file(path, granularity: str = "section") -> CG:
    """Read a NeuroML2 file (and its includes) and build its CG."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, not {granularity!r}")
    return model_to_cg(read_model(path), granularity)


def model_to_cg(model: Model, granularity: str = "section") -> CG:
    conv = _Converter(model, granularity)
    extra: Dict[str, object] = {}
    nets = networks(model)
    if nets:
        for net, file in nets:
            conv.network(net, file)
        what = "network"
    else:
        cells = _cells(model.root_document, model)
        if not cells:
            cells = [c for c in model.components.values() if model_class(c.tag) in CELL_CLASSES]
        morphs = [Component("morphology", m, model.root, line_of(m))
                  for m in model.root_document.morphology or []]
        if cells or morphs:
            for p, comp in enumerate(cells or morphs):
                conv.population(comp.obj.id, comp.obj.id, comp, [(0, None)], p,
                                len(cells or morphs))
            what = "cells" if cells else "morphology"
            if len(cells or morphs) == 1:
                extra = conv.segment_groups()
        else:
            conv.library()
            what = "library"
    meta = {"schema_version": SCHEMA_VERSION, "source": model.root,
            "sha256": model.sha256[model.root], "files": model.sha256,
            "granularity": granularity, "content": what,
            "components": sorted(model.components), **extra}
    return conv.b.finish(meta)


def cell_segments(path, granularity: str = "section") -> Dict[str, np.ndarray]:
    """The segments of a one-cell file, for drawing it: ``prox``/``dist`` [S, 3] um and
    ``node`` [S], the CG node (of ``convert_file(path, granularity)``) each lies in."""
    from graphs.morphology import segment_points

    model = read_model(path)
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


def _connections(proj, *attrs) -> list:
    """All connections of a projection, over the element forms it may use."""
    return [c for a in attrs for c in getattr(proj, a, None) or []]


# A spike-source "cell": no compartments, every segment maps to the input node itself.
_SOURCE = Template({}, [], [], [], np.zeros((0, 3)), [], {})


def _weight(conn, file) -> float:
    """A connection's weight; 1 when the element has none (NeuroML's default)."""
    w = getattr(conn, "weight", None)
    if w is None:
        return 1.0
    w = float(w)
    if not np.isfinite(w):
        raise InvalidValue(file, f"weight {w} is not finite", type(conn).__name__,
                           line_of(conn))
    return w


class _Converter:
    """Holds the builder and the per-model lookups while a model is converted."""

    def __init__(self, model: Model, granularity: str):
        self.model = model
        self.granularity = granularity
        self.b = GraphBuilder()
        self.cls = self.b.add_node(NodeKind.CLS, -1, "CLS")
        self.templates: Dict[str, Template] = {}
        # (population id, instance id) -> (neuron node, first compartment node, template)
        self.cells: Dict[Tuple[str, int], Tuple[int, int, Template]] = {}
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
        if len(self.cells) != 1:
            return {}
        (_, first, tmpl), = self.cells.values()
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

    def compartment(self, pop: str, cell_id: int, seg_id: Optional[int], file, element,
                    obj) -> int:
        """Node index of the compartment holding segment ``seg_id`` of a cell."""
        key = (pop, int(cell_id))
        if key not in self.cells:
            raise UnknownComponent(file, f"cell {cell_id} of population {pop!r} does not "
                                   "exist", element, line_of(obj))
        _, first, tmpl = self.cells[key]
        seg = int(seg_id or 0)
        if not tmpl.seg_to_comp:
            return first
        if seg not in tmpl.seg_to_comp:
            raise UnknownComponent(file, f"segment {seg} does not exist in cell {cell_id} "
                                   f"of population {pop!r}", element, line_of(obj))
        return first + tmpl.seg_to_comp[seg]

    # -- building blocks -------------------------------------------------------
    def population(self, pop_id: str, comp_id: str, comp: Component, instances,
                   pop_index: int, n_pops: int) -> None:
        if model_class(comp.tag) in INPUT_CLASSES:  # e.g. spikeArray populations
            self.input_population(pop_id, comp, instances)
            return
        tmpl = self.template(comp_id, comp)
        b = self.b
        n_inst = len(instances)
        for i, (inst_id, loc) in enumerate(instances):
            feats = dict(tmpl.neuron_feats)
            feats["population_index"] = pop_index / max(n_pops - 1, 1)
            feats["instance_index"] = i / max(n_inst - 1, 1)
            offset = np.zeros(3)
            if loc is not None:
                offset = np.array(loc) * UM
                feats.update(x=offset[0], y=offset[1], z=offset[2])
            neuron = b.add_node(NodeKind.NEURON, b.next_index, f"{pop_id}/{inst_id}", feats)
            first = neuron + 1
            for kind, name, cf, pos in zip(tmpl.comp_kind, tmpl.comp_name, tmpl.comp_feats,
                                           tmpl.comp_pos):
                cf = dict(cf)
                if np.all(np.isfinite(pos)):
                    cf.update(x=pos[0] + offset[0], y=pos[1] + offset[1], z=pos[2] + offset[2])
                c = b.add_node(kind, neuron, f"{pop_id}/{inst_id}/{name}", cf)
                b.add_edge_pair(c, neuron, EdgeKind.MEMBERSHIP, True)
            for child, parent, child_fwd, dist in tmpl.axial:
                b.add_edge_pair(first + child, first + parent, EdgeKind.AXIAL, child_fwd,
                                {"distance": dist})
            b.add_edge_pair(neuron, self.cls, EdgeKind.CLS, True)
            self.cells[(pop_id, int(inst_id))] = (neuron, first, tmpl)

    def input_population(self, pop_id: str, comp: Component, instances) -> None:
        """A population of spike sources: one input node per instance, no neuron. Its
        projections start at the input node."""
        feats = self.component_features("input", comp)
        for inst_id, loc in instances:
            f = dict(feats)
            if loc is not None:
                f.update(x=loc[0] * UM, y=loc[1] * UM, z=loc[2] * UM)
            node = self.b.add_node(NodeKind.INPUT, -1, f"{pop_id}/{inst_id}", f)
            self.cells[(pop_id, int(inst_id))] = (node, node, _SOURCE)

    def synapse(self, syn: Component, name: str, pre: int, post: int,
                weight: float = 1.0, delay: Optional[float] = None) -> None:
        feats = self.component_features("synapse", syn)
        node = self.b.add_node(NodeKind.SYNAPSE, -1, name, feats)
        ef = {"weight": weight}
        if delay is not None:
            ef["delay"] = delay
        if "syn_gbase" in feats:
            ef["conductance"] = feats["syn_gbase"]
        self.b.add_edge(pre, node, EdgeKind.SYNAPTIC, True, ef)
        self.b.add_edge(node, post, EdgeKind.SYNAPTIC, True, ef)

    def input_node(self, comp: Component, name: str, target: int, weight: float = 1.0):
        node = self.b.add_node(NodeKind.INPUT, -1, name,
                               {**self.component_features("input", comp),
                                "input_weight": weight})
        self.b.add_edge(node, target, EdgeKind.INPUT, True, {"weight": weight})

    # -- network elements ------------------------------------------------------
    def network(self, net, file) -> None:
        pops = list(net.populations or [])
        for p, pop in enumerate(pops):
            comp = self.component(pop.component, file, "population", pop)
            if pop.instances:
                inst = [(int(i.id), None if i.location is None else
                         (float(i.location.x), float(i.location.y), float(i.location.z)))
                        for i in pop.instances]
                for _, loc in inst:
                    if loc is not None and not np.all(np.isfinite(loc)):
                        raise InvalidValue(file, f"population {pop.id!r} has a non-finite "
                                           "instance location", "instance", line_of(pop))
            else:
                inst = [(i, None) for i in range(int(pop.size or 0))]
            self.population(pop.id, pop.component, comp, inst, p, len(pops))
        for proj in net.projections or []:
            self.projection(proj, file)
        for proj in net.electrical_projections or []:
            self.electrical_projection(proj, file)
        for proj in net.continuous_projections or []:
            self.continuous_projection(proj, file)
        for k, ei in enumerate(net.explicit_inputs or []):
            comp = self.component(ei.input, file, "explicitInput", ei)
            pop, cell = self._target(ei.target, file, ei)
            target = self.compartment(pop, cell, 0, file, "explicitInput", ei)
            self.input_node(comp, f"explicitInput{k}:{ei.input}->{ei.target}", target)
        for il in net.input_lists or []:
            comp = self.component(il.component, file, "inputList", il)
            for inp in list(il.input or []) + list(il.input_ws or []):
                pop, cell = self._target(inp.target, file, inp)
                target = self.compartment(pop, cell, inp.segment_id, file, "input", inp)
                self.input_node(comp, f"{il.id}/{inp.id}", target, _weight(inp, file))

    def _target(self, path: str, file, obj) -> Tuple[str, int]:
        m = _TARGET.match(str(path or "").strip())
        if m is None:
            raise UnknownComponent(file, f"target {path!r} is not a population[index] or "
                                   "../population/index/cell path", type(obj).__name__,
                                   line_of(obj))
        pop = m.group(1)
        index = m.group(2) or m.group(3) or "0"
        return pop, int(index)

    def _endpoints(self, proj, conn, file, element):
        pre = self.compartment(proj.presynaptic_population, conn.get_pre_cell_id(),
                               conn.get_pre_segment_id(), file, element, conn)
        post = self.compartment(proj.postsynaptic_population, conn.get_post_cell_id(),
                                conn.get_post_segment_id(), file, element, conn)
        return pre, post

    def projection(self, proj, file) -> None:
        syn = self.component(proj.synapse, file, "projection", proj)
        for conn in _connections(proj, "connections", "connection_wds"):
            pre, post = self._endpoints(proj, conn, file, "connection")
            weight = _weight(conn, file)
            delay = None
            if getattr(conn, "delay", None) is not None:
                delay = to_si(conn.delay, "time", file, "connectionWD", line_of(conn))
            self.synapse(syn, f"{proj.id}/{conn.id}", pre, post, weight, delay)

    def electrical_projection(self, proj, file) -> None:
        for conn in _connections(proj, "electrical_connections",
                                 "electrical_connection_instances",
                                 "electrical_connection_instance_ws"):
            gap = self.component(conn.synapse, file, "electricalConnection", conn)
            pre, post = self._endpoints(proj, conn, file, "electricalConnection")
            feats = {"weight": _weight(conn, file)}
            g = self.component_features("synapse", gap).get("syn_gbase")
            if g is not None:
                feats["conductance"] = g
            self.b.add_edge(pre, post, EdgeKind.GAP, True, feats)
            self.b.add_edge(post, pre, EdgeKind.GAP, True, feats)

    def continuous_projection(self, proj, file) -> None:
        for conn in _connections(proj, "continuous_connections",
                                 "continuous_connection_instances",
                                 "continuous_connection_instance_ws"):
            syn = self.component(conn.post_component, file, "continuousConnection", conn)
            self.component(conn.pre_component, file, "continuousConnection", conn)
            pre, post = self._endpoints(proj, conn, file, "continuousConnection")
            self.synapse(syn, f"{proj.id}/{conn.id}", pre, post, _weight(conn, file))

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
