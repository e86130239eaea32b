"""Cell definitions -> compartment templates (segment / section / point).

A template is instanced once per cell of a population. Geometry and segment
groups are computed with numpy over all segments at once; libNeuroML's
per-segment helpers (``Cell.get_segment_length``, ``get_all_segments_in_group``)
are O(segments) per call, recurse without cycle checks and ignore
``<path>``/``<subTree>``, so they are not used here.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Set

import numpy as np

from graphs.errors import InvalidValue, UnknownComponent
from graphs.params import cell_features, class_feature
from graphs.reader import Component, line_of
from graphs.schema import SPECIES, NodeKind
from graphs.units import to_si

UM = 1e-6


class Template(NamedTuple):
    """Compartments of one cell type, positions relative to the cell."""

    neuron_feats: Dict[str, float]
    comp_kind: List[NodeKind]  # [C]
    comp_name: List[str]  # [C]
    comp_feats: List[Dict[str, float]]  # [C] SI values
    comp_pos: np.ndarray  # [C, 3] metres, NaN where unknown
    axial: List[tuple]  # (child, parent, child_to_parent_is_forward, distance_m)
    seg_to_comp: Dict[int, int]  # NeuroML segment id -> compartment index
    group_comps: Dict[str, List[int]] = {}  # segment group id -> compartments it touches


def point_template(comp: Component) -> Template:
    """Abstract (point) cells: one soma compartment; any segment id maps to it."""
    return Template(cell_features(comp), [NodeKind.SOMA], ["soma"],
                    [class_feature(comp.tag)], np.full((1, 3), np.nan), [], {})


def custom_template(comp: Component) -> Template:
    """A component of a type outside the NeuroML2 schema: class "other", no parameters."""
    return Template(class_feature(comp.tag), [NodeKind.SOMA], ["soma"],
                    [class_feature(comp.tag)], np.full((1, 3), np.nan), [], {})


class _Segs(NamedTuple):
    ids: np.ndarray  # [S] NeuroML ids
    names: List[str]
    parent: np.ndarray  # [S] row of parent, -1 for roots
    frac: np.ndarray  # [S] fractionAlong of the parent
    prox: np.ndarray  # [S, 4] x, y, z, diameter (um)
    dist: np.ndarray  # [S, 4]
    order: np.ndarray  # [S] topological order (parents first)


def _segments(morph, file) -> _Segs:
    segs = list(morph.segments or [])
    if not segs:
        raise InvalidValue(file, f"morphology {morph.id!r} has no segments", "morphology",
                           line_of(morph))
    row = {}
    for k, s in enumerate(segs):
        if int(s.id) in row:
            raise InvalidValue(file, f"duplicate segment id {s.id}", "segment", line_of(s))
        row[int(s.id)] = k
    n = len(segs)
    parent = np.full(n, -1, np.int64)
    frac = np.ones(n)
    prox = np.full((n, 4), np.nan)
    dist = np.empty((n, 4))
    for k, s in enumerate(segs):
        if s.parent is not None:
            pid = int(s.parent.segments)
            if pid not in row:
                raise UnknownComponent(file, f"segment {s.id} has parent {pid}, which "
                                       "does not exist", "segment", line_of(s))
            parent[k] = row[pid]
            frac[k] = float(s.parent.fraction_along if s.parent.fraction_along is not None else 1.0)
        for arr, p in ((dist, s.distal), (prox, s.proximal)):
            if p is not None:
                arr[k] = (float(p.x), float(p.y), float(p.z), float(p.diameter))
        pts = dist[k] if s.proximal is None else np.concatenate([dist[k], prox[k]])
        if not np.all(np.isfinite(pts)):
            raise InvalidValue(file, f"segment {s.id} has a non-finite coordinate or "
                               "diameter", "segment", line_of(s))
        if dist[k, 3] < 0 or (s.proximal is not None and prox[k, 3] < 0):
            raise InvalidValue(file, f"segment {s.id} has a negative diameter",
                               "segment", line_of(s))
    order = _topological_order(parent, file, morph)
    for k in order:  # a missing proximal point lies on the parent, at fractionAlong
        if np.isnan(prox[k, 0]):
            p = parent[k]
            if p < 0:
                raise InvalidValue(file, f"root segment {segs[k].id} has no proximal point",
                                   "segment", line_of(segs[k]))
            prox[k, :3] = prox[p, :3] + frac[k] * (dist[p, :3] - prox[p, :3])
            prox[k, 3] = dist[p, 3]
    names = [s.name or f"seg{s.id}" for s in segs]
    return _Segs(np.array([int(s.id) for s in segs]), names, parent, frac, prox, dist, order)


def _topological_order(parent: np.ndarray, file, morph) -> np.ndarray:
    children: Dict[int, List[int]] = {}
    for k, p in enumerate(parent):
        children.setdefault(int(p), []).append(k)
    order, stack = [], list(reversed(children.get(-1, [])))
    while stack:
        k = stack.pop()
        order.append(k)
        stack.extend(reversed(children.get(k, [])))
    if len(order) != len(parent):
        raise InvalidValue(file, "segment parents form a cycle", "morphology", line_of(morph))
    return np.asarray(order)


def segment_points(morph, file):
    """(prox [S, 3], dist [S, 3] um, ids [S]) of a morphology's segments."""
    segs = _segments(morph, file)
    return segs.prox[:, :3].copy(), segs.dist[:, :3].copy(), segs.ids.copy()


def _group_members(morph, segs: _Segs, file) -> Dict[str, Set[int]]:
    """Segment group id -> set of segment rows (members, includes, paths, subTrees)."""
    groups = {g.id: g for g in morph.segment_groups or []}
    row = {int(i): k for k, i in enumerate(segs.ids)}
    children: Dict[int, List[int]] = {}
    for k, p in enumerate(segs.parent):
        children.setdefault(int(p), []).append(k)
    memo: Dict[str, Set[int]] = {}

    def seg_row(seg_id, g):
        if int(seg_id) not in row:
            raise UnknownComponent(file, f"segment group {g.id!r} refers to segment "
                                   f"{seg_id}, which does not exist", "segmentGroup", line_of(g))
        return row[int(seg_id)]

    def subtree(k):
        out, stack = set(), [k]
        while stack:
            j = stack.pop()
            out.add(j)
            stack.extend(children.get(j, []))
        return out

    def expand(gid, visiting):
        if gid in memo:
            return memo[gid]
        g = groups[gid]
        if gid in visiting:
            raise InvalidValue(file, f"segment group {gid!r} includes itself", "segmentGroup",
                               line_of(g))
        out = {seg_row(m.segments, g) for m in g.members or []}
        for inc in g.includes or []:
            if inc.segment_groups not in groups:
                raise UnknownComponent(file, f"segment group {gid!r} includes "
                                       f"{inc.segment_groups!r}, which is not defined",
                                       "segmentGroup", line_of(inc))
            out |= expand(inc.segment_groups, visiting | {gid})
        for p in g.paths or []:
            start = seg_row(p.from_.segments, g) if p.from_ is not None else -1
            k = seg_row(p.to.segments, g) if p.to is not None else start
            while k >= 0:
                out.add(k)
                if k == start:
                    break
                k = int(segs.parent[k])
        for t in g.sub_trees or []:
            roots = [seg_row(t.from_.segments, g)] if t.from_ is not None else children.get(-1, [])
            for r in roots:
                out |= subtree(r)
        memo[gid] = out
        return out

    members = {gid: expand(gid, frozenset()) for gid in groups}
    members.setdefault("all", set(range(len(segs.ids))))
    return members


_NLX = {"GO:0043025": NodeKind.SOMA, "GO:0030424": NodeKind.AXON,
        "GO:0030425": NodeKind.DENDRITE}


def _group_kind(g):
    if g.neuro_lex_id in _NLX:
        return _NLX[g.neuro_lex_id]
    gid = g.id.lower()
    if "soma" in gid:
        return NodeKind.SOMA
    if "axon" in gid:
        return NodeKind.AXON
    if any(t in gid for t in ("dend", "apical", "basal")):
        return NodeKind.DENDRITE
    return None


def _segment_kinds(morph, segs: _Segs, members) -> np.ndarray:
    """Soma / dendrite / axon per segment: groups (soma > axon > dendrite), then names."""
    n = len(segs.ids)
    kind = np.zeros(n, np.int64)  # 0 = unknown
    rank = {0: 0, NodeKind.DENDRITE: 1, NodeKind.AXON: 2, NodeKind.SOMA: 3}
    for g in morph.segment_groups or []:
        k = _group_kind(g)
        if k is None:
            continue
        for r in members[g.id]:
            if rank[int(k)] > rank[int(kind[r])]:
                kind[r] = k
    for r in np.flatnonzero(kind == 0):
        name = segs.names[r].lower()
        if "soma" in name or (segs.parent[r] < 0 and not np.any(kind == NodeKind.SOMA)):
            kind[r] = NodeKind.SOMA
        elif "axon" in name:
            kind[r] = NodeKind.AXON
        else:
            kind[r] = NodeKind.DENDRITE
    return kind


def channel_species(ion, channel) -> str:
    """The ``SPECIES`` column a channel density adds to (its ion, else its name)."""
    ion = (ion or "").lower()
    cid = (channel or "").lower()
    if ion == "na":
        return "na"
    if ion == "k":
        return "k"
    if ion.startswith("ca"):
        return "ca"
    if ion in ("h", "hcn"):
        return "h"
    if any(t in cid for t in ("pas", "leak", "lk")):
        return "leak"
    if "hcn" in cid or cid.startswith(("h_", "ih", "hd")) or cid == "h":
        return "h"
    return "other"


def _biophysics(bp, members, seg_ids, file):
    """Per-segment SI arrays of membrane properties; NaN where not specified."""
    n = len(seg_ids)
    out = {f"g_{s}": np.full(n, np.nan) for s in SPECIES}
    out.update({f"e_{s}": np.full(n, np.nan) for s in SPECIES})
    for key in ("specific_capacitance", "v_init", "axial_resistivity"):
        out[key] = np.full(n, np.nan)
    neuron = {}
    if bp is None:
        return out, neuron

    def rows(elem):
        seg = getattr(elem, "segments", None)
        if seg is not None:
            return [int(r) for r in np.flatnonzero(seg_ids == int(seg))]
        gid = getattr(elem, "segment_groups", None) or "all"
        if gid not in members:
            raise UnknownComponent(file, f"segmentGroup {gid!r} is not defined in the "
                                   "cell's morphology", type(elem).__name__, line_of(elem))
        return sorted(members[gid])

    def q(elem, attr, dim):
        return to_si(getattr(elem, attr), dim, file, type(elem).__name__, line_of(elem))

    mp = getattr(bp, "membrane_properties2_ca_pools", None) or bp.membrane_properties
    if mp is not None:
        densities = []
        for name in ("channel_densities", "channel_density_v_shifts",
                     "channel_density_nernsts", "channel_density_ghk2s",
                     "channel_density_non_uniforms", "channel_density_non_uniform_nernsts",
                     "channel_density_nernst_ca2s"):
            densities += getattr(mp, name, None) or []
        for cd in densities:
            sp = channel_species(cd.ion, cd.ion_channel)
            r = rows(cd) if hasattr(cd, "segment_groups") else sorted(members["all"])
            g = getattr(cd, "cond_density", None)
            if g is not None:
                val = q(cd, "cond_density", "conductanceDensity")
                if val < 0 or not np.isfinite(val):
                    raise InvalidValue(file, f"condDensity {g!r} is negative or not finite",
                                       type(cd).__name__, line_of(cd))
                col = out[f"g_{sp}"]
                col[r] = np.nan_to_num(col[r]) + val
            if getattr(cd, "erev", None) is not None:
                out[f"e_{sp}"][r] = q(cd, "erev", "voltage")
        for elems, key, dim in ((mp.specific_capacitances, "specific_capacitance",
                                 "specificCapacitance"),
                                (mp.init_memb_potentials, "v_init", "voltage")):
            for e in elems or []:
                out[key][rows(e)] = q(e, "value", dim)
        for e in mp.spike_threshes or []:
            neuron["v_thresh"] = q(e, "value", "voltage")
    ip = getattr(bp, "intracellular_properties2_ca_pools", None) or bp.intracellular_properties
    if ip is not None:
        for e in ip.resistivities or []:
            out["axial_resistivity"][rows(e)] = q(e, "value", "resistivity")
    return out, neuron


def morphology_template(comp: Component, morph, biophys, granularity: str) -> Template:
    """A multi-compartment <cell> -> compartments at the given granularity."""
    file = comp.file
    segs = _segments(morph, file)
    members = _group_members(morph, segs, file)
    kind = _segment_kinds(morph, segs, members)
    n = len(segs.ids)

    xyz_p, xyz_d = segs.prox[:, :3], segs.dist[:, :3]
    r_p, r_d = segs.prox[:, 3] / 2, segs.dist[:, 3] / 2
    length = np.linalg.norm(xyz_d - xyz_p, axis=1)
    area = np.where(length > 0, np.pi * (r_p + r_d) * np.sqrt((r_p - r_d) ** 2 + length ** 2),
                    4 * np.pi * r_d ** 2)  # a zero-length segment is a sphere
    mid = (xyz_p + xyz_d) / 2
    # Path distance from the soma to each segment's distal end and midpoint.
    soma = kind == NodeKind.SOMA
    pd_distal = np.zeros(n)
    for k in segs.order:
        p = segs.parent[k]
        base = 0.0
        if p >= 0:
            base = pd_distal[p] - (0.0 if soma[p] else (1 - segs.frac[k]) * length[p])
        pd_distal[k] = base + (0.0 if soma[k] else length[k])
    pd_mid = np.where(soma, 0.0, pd_distal - length / 2)

    comp_of, comp_parent = _compartments(segs, kind, granularity)
    c = int(comp_of.max()) + 1
    bio, neuron_extra = _biophysics(biophys, members, segs.ids, file)

    def wmean(values, weights):
        has = np.isfinite(values)
        w = np.where(has, weights, 0.0)
        num = np.bincount(comp_of, np.where(has, values, 0.0) * w, minlength=c)
        den = np.bincount(comp_of, w, minlength=c)
        cnt = np.bincount(comp_of, has.astype(float), minlength=c)
        plain = np.bincount(comp_of, np.where(has, values, 0.0), minlength=c) / np.maximum(cnt, 1)
        return np.where(den > 0, num / np.where(den > 0, den, 1), plain), cnt > 0

    w_len = np.where(length > 0, length, 1e-12)
    w_area = np.where(area > 0, area, 1e-24)
    comp_len = np.bincount(comp_of, length, minlength=c)
    comp_area = np.bincount(comp_of, area, minlength=c)
    comp_diam, _ = wmean((segs.prox[:, 3] + segs.dist[:, 3]) / 2, w_len)
    comp_pd, _ = wmean(pd_mid, w_len)
    pos = np.stack([wmean(mid[:, i], w_len)[0] for i in range(3)], axis=1)
    comp_kind = np.zeros(c, np.int64)
    comp_kind[comp_of] = kind
    if granularity == "point":
        comp_kind[:] = NodeKind.SOMA

    branch = _branch_order(segs, comp_of, c)
    cls_feat = class_feature(comp.tag)
    feats, names = [], []
    first_seg = np.full(c, -1)
    for k in range(n - 1, -1, -1):
        first_seg[comp_of[k]] = k
    for j in range(c):
        f = dict(cls_feat)
        f.update({"x": pos[j, 0] * UM, "y": pos[j, 1] * UM, "z": pos[j, 2] * UM,
                  "length": comp_len[j] * UM, "diameter": comp_diam[j] * UM,
                  "surface_area": comp_area[j] * UM * UM, "path_distance": comp_pd[j] * UM,
                  "compartment_index": j / max(c - 1, 1),
                  "branch_order": branch[j] / max(branch.max(), 1)})
        feats.append(f)
        names.append(segs.names[first_seg[j]] if granularity != "point" else "soma")
    for key, values in bio.items():
        weights = w_area if key.startswith("g_") or key in ("specific_capacitance",) else w_len
        agg, present = wmean(values, weights)
        for j in np.flatnonzero(present):
            feats[j][key] = agg[j]

    axial = []
    signal = np.where(comp_kind == NodeKind.DENDRITE, -comp_pd,
                      np.where(comp_kind == NodeKind.AXON, comp_pd, 0.0))
    for j in range(c):
        p = comp_parent[j]
        if p >= 0:
            d = float(np.linalg.norm(pos[j] - pos[p])) * UM
            axial.append((j, int(p), bool(signal[j] < signal[p]), d))
    neuron_feats = {**cls_feat, **neuron_extra}
    seg_to_comp = {int(i): int(comp_of[k]) for k, i in enumerate(segs.ids)}
    group_comps = {g: sorted({int(comp_of[r]) for r in rows}) for g, rows in members.items()}
    return Template(neuron_feats, [NodeKind(int(k)) for k in comp_kind], names, feats,
                    pos * UM, axial, seg_to_comp, group_comps)


def _compartments(segs: _Segs, kind: np.ndarray, granularity: str):
    """Segment row -> compartment index, and each compartment's parent (-1 root).

    section: a new compartment starts at a root, after a branch point, where the
    segment attaches part-way along its parent, or where soma/dendrite/axon changes.
    """
    n = len(segs.ids)
    if granularity == "point":
        return np.zeros(n, np.int64), np.array([-1])
    if granularity == "segment":
        comp_parent = segs.parent.copy()
        return np.arange(n), comp_parent
    if granularity != "section":
        raise ValueError(f"granularity must be section, segment or point, not {granularity!r}")
    n_children = np.bincount(segs.parent[segs.parent >= 0], minlength=n)
    comp_of = np.full(n, -1, np.int64)
    parents: List[int] = []
    for k in segs.order:
        p = segs.parent[k]
        starts = (p < 0 or n_children[p] > 1 or kind[p] != kind[k] or segs.frac[k] < 1.0)
        if starts:
            comp_of[k] = len(parents)
            parents.append(int(comp_of[p]) if p >= 0 else -1)
        else:
            comp_of[k] = comp_of[p]
    # Number compartments in document order of their first segment.
    first = np.full(len(parents), n)
    np.minimum.at(first, comp_of, np.arange(n))
    rank = np.empty(len(parents), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(parents))
    comp_parent = np.array([rank[q] if q >= 0 else -1 for q in parents])
    new_parent = np.empty_like(comp_parent)
    new_parent[rank] = comp_parent
    return rank[comp_of], new_parent


def _branch_order(segs: _Segs, comp_of, n_comp: int) -> np.ndarray:
    """Branch points between the root and each compartment's first segment."""
    n = len(segs.ids)
    n_children = np.bincount(segs.parent[segs.parent >= 0], minlength=n)
    order = np.zeros(n)
    for k in segs.order:
        p = segs.parent[k]
        if p >= 0:
            order[k] = order[p] + (n_children[p] > 1)
    out = np.full(n_comp, np.inf)
    np.minimum.at(out, comp_of, order)
    return out
