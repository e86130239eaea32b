"""Multi-compartment cells: segments become simulator rows, axial resistance a coupling.

A morphological neuron is a dict with ``family="cell"`` (the NeuroML
``<cell>`` that ``bnnsim.canonical.cell_component`` writes from the same
numbers)::

    dict(family="cell", segments=((name, group, parent, length_um, diameter_um), ...),
         density=((group, gna, gk, gl), ...),   # mS/cm2 per segment group
         Cm=1.0,    # uF/cm2          Ra=100.0,   # ohm cm
         ena=50.0, ek=-77.0, el=-54.3, v0=-65.0, thresh=-20.0)   # mV

Segment 0 is the soma (its spikes are the neuron's); ``parent`` indexes
``segments``; a zero-length segment is a sphere. Every segment is one
``hhCompartment`` row with the Hodgkin-Huxley squid Na/K/leak channels at its
group's densities (zero Na/K: passive). Neighbouring segments are coupled by
the conductance of the two half-cylinders between their centres,
``1 / (Ra L_a / (2 pi r_a^2) + Ra L_b / (2 pi r_b^2))``, the usual
compartmental discretisation of the cable equation; the simulator applies it
as a gap-junction current.

``network_rows`` maps a whole network of point and morphological neurons to
simulator rows; ``neuron_view`` maps a result back to one column per neuron.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from bnnsim.cells import cell_params
from bnnsim.inputs import pulse_inputs, spike_sources
from bnnsim.simulate import Model, SimResult
from bnnsim.synapses import gap_params, synapse_params

_CM2_PER_UM2 = 1e-8


def segment_areas(cell: dict) -> np.ndarray:
    """[S] membrane area (um^2) per segment: pi d L, or pi d^2 for a sphere."""
    _, _, _, length, diam = (np.array(c) for c in zip(*cell["segments"]))
    length, diam = length.astype(float), diam.astype(float)
    return np.where(length > 0, np.pi * diam * length, np.pi * diam ** 2)


def axial_conductances(cell: dict) -> list[tuple]:
    """(segment, parent, conductance nS) per non-root segment."""
    segs = cell["segments"]
    ra_ohm_um = float(cell["Ra"]) * 1e4  # ohm cm -> ohm um

    def half(k):  # ohm, from the segment's centre to its end; 0 for a sphere
        _, _, _, length, diam = segs[k]
        return ra_ohm_um * (float(length) / 2) / (np.pi * (float(diam) / 2) ** 2)

    out = []
    for k, (_, _, parent, _, _) in enumerate(segs):
        if int(parent) >= 0:
            out.append((k, int(parent), 1e9 / (half(k) + half(int(parent)))))
    return out


def compartment_rows(cell: dict) -> list[dict]:
    """One ``hhCompartment`` row (pF, nS, mV) per segment of a morphological cell."""
    density = {g: (gna, gk, gl) for g, gna, gk, gl in cell["density"]}
    rows = []
    for (name, group, _, _, _), area in zip(cell["segments"], segment_areas(cell)):
        if group not in density:
            raise ValueError(f"segment {name!r}: no channel densities for group {group!r}")
        scale = area * _CM2_PER_UM2 * 1e6  # mS/cm2 -> nS and uF/cm2 -> pF
        gna, gk, gl = density[group]
        rows.append(dict(family="hhCompartment", C=float(cell["Cm"]) * scale, gna=gna * scale,
                         gk=gk * scale, gl=gl * scale, ena=cell["ena"], ek=cell["ek"],
                         el=cell["el"], thresh=cell["thresh"], v0=cell["v0"]))
    return rows


class Rows(NamedTuple):
    """Where each neuron lives among the simulator rows."""

    rows: list[dict]  # row dicts for cell_params
    first: np.ndarray  # [N] row of each neuron's segment 0 (its soma)
    axial: list[dict]  # gap dicts (a, b, conductance) coupling segments


def expand(cells: Sequence[dict]) -> Rows:
    rows: list[dict] = []
    first, axial = [], []
    for cell in cells:
        first.append(len(rows))
        if cell.get("family") != "cell":
            rows.append(cell)
            continue
        axial += [dict(a=len(rows) + k, b=len(rows) + p, conductance=g)
                  for k, p, g in axial_conductances(cell)]
        rows += compartment_rows(cell)
    return Rows(rows, np.asarray(first, np.int64), axial)


def network_rows(cells: Sequence[dict], pulses: Sequence[Sequence[dict]],
                 connections: Sequence[dict] = (), gaps: Sequence[dict] = (),
                 sources: Sequence[Sequence[float]] = ()) -> tuple:
    """A network in the ``bnnsim.canonical.network_model`` format -> (``Model`` over rows,
    [N] soma row per neuron). Connections land on ``post_segment`` (default 0, the
    soma); pulses and gap junctions on the soma; source k stays presynaptic unit
    ``rows + k``."""
    ex = expand(cells)
    n, r = len(cells), len(ex.rows)

    def pre_row(i):
        return int(ex.first[i]) if i < n else r + i - n

    conns = []
    for c in connections:
        seg = int(c.get("post_segment", 0))
        post = int(c["post"])
        size = len(cells[post]["segments"]) if cells[post].get("family") == "cell" else 1
        if not 0 <= seg < size:
            raise ValueError(f"connection {c['pre']}->{post}: post_segment {seg} is not a "
                             f"segment of neuron {post} ({size} segments)")
        conns.append(dict(c, pre=pre_row(int(c["pre"])), post=int(ex.first[post]) + seg))
    row_pulses: list[list[dict]] = [[] for _ in range(r)]
    for i, plist in enumerate(pulses):
        row_pulses[int(ex.first[i])] = list(plist)
    all_gaps = [dict(g, a=int(ex.first[g["a"]]), b=int(ex.first[g["b"]])) for g in gaps]
    model = Model(cell_params(ex.rows), pulse_inputs(row_pulses), synapse_params(conns),
                  gap_params(all_gaps + ex.axial), spike_sources(sources))
    return model, ex.first


def neuron_view(result: SimResult, soma: np.ndarray) -> SimResult:
    """The result with one column per neuron (its soma row)."""
    return result._replace(spikes=result.spikes[:, soma], v=result.v[:, soma])
