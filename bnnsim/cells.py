"""Neuron families and their parameters as arrays (one row per compartment).

A point neuron is ``{"family": name, <parameter>: value, ...}`` with values in
mV, ms, pA, pF, nS (``bnnsim.canonical`` writes the same numbers into
NeuroML); it is one row. A multi-compartment ``<cell>`` (family ``"cell"``,
see ``bnnsim.morphology``) becomes one ``hhCompartment`` row per segment,
coupled by axial conductances. ``cell_params`` stacks rows of any families
into one ``CellParams`` so a whole network steps as one vectorized update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

# family -> the NeuroML component type and its parameters (names as in NeuroML;
# hhCompartment: one segment of a <cell> with the Hodgkin-Huxley squid Na/K and
# leak channels, conductances in nS for the segment, as bnnsim.morphology makes it)
CELL_FAMILIES: dict[str, tuple] = {
    "iafCell": ("C", "leak_conductance", "leak_reversal", "thresh", "reset"),
    "iafRefCell": ("C", "leak_conductance", "leak_reversal", "thresh", "reset", "refract"),
    "izhikevich2007Cell": ("C", "k", "vr", "vt", "vpeak", "a", "b", "c", "d", "v0"),
    "adExIaFCell": ("C", "gL", "EL", "VT", "delT", "tauw", "a", "b", "reset", "thresh",
                    "refract"),
    "hhCompartment": ("C", "gl", "el", "gna", "gk", "ena", "ek", "thresh", "v0"),
}
FAMILY_INDEX = {name: i for i, name in enumerate(CELL_FAMILIES)}


class CellParams(NamedTuple):
    """[N] arrays; parameters a family does not use are 0."""

    family: np.ndarray  # int32, index into CELL_FAMILIES
    C: np.ndarray  # pF
    g: np.ndarray  # nS: leak_conductance (iaf), gL (AdEx), leak (HH)
    E: np.ndarray  # mV: leak_reversal (iaf), EL (AdEx), vr (Izhikevich), leak erev (HH)
    thresh: np.ndarray  # mV: spike test: thresh (iaf, AdEx), vpeak (Izhikevich), spikeThresh (HH)
    reset: np.ndarray  # mV: reset (iaf, AdEx) or c (Izhikevich)
    refract: np.ndarray  # ms
    k: np.ndarray  # nS/mV (Izhikevich)
    vt: np.ndarray  # mV: vt (Izhikevich) or VT (AdEx)
    a: np.ndarray  # 1/ms (Izhikevich) or nS (AdEx)
    b: np.ndarray  # nS (Izhikevich) or pA (AdEx, spike-triggered)
    d: np.ndarray  # pA (Izhikevich)
    delT: np.ndarray  # mV (AdEx)
    tauw: np.ndarray  # ms (AdEx)
    gna: np.ndarray  # nS, maximal Na conductance (HH)
    gk: np.ndarray  # nS, maximal K conductance (HH)
    ena: np.ndarray  # mV (HH)
    ek: np.ndarray  # mV (HH)
    v0: np.ndarray  # mV, initial potential


def _row(cell: dict) -> dict[str, float]:
    fam = cell["family"]
    if fam not in CELL_FAMILIES:
        raise ValueError(f"unknown cell family {fam!r}; known: {sorted(CELL_FAMILIES)}")
    missing = [p for p in CELL_FAMILIES[fam] if p not in cell]
    if missing:
        raise ValueError(f"{fam} cell is missing parameters {missing}")
    p = {k: float(v) for k, v in cell.items() if k != "family"}
    if fam in ("iafCell", "iafRefCell"):
        return dict(C=p["C"], g=p["leak_conductance"], E=p["leak_reversal"], thresh=p["thresh"],
                    reset=p["reset"], refract=p.get("refract", 0.0), v0=p["leak_reversal"])
    if fam == "izhikevich2007Cell":
        return dict(C=p["C"], k=p["k"], E=p["vr"], vt=p["vt"], thresh=p["vpeak"], a=p["a"],
                    b=p["b"], reset=p["c"], d=p["d"], v0=p["v0"])
    if fam == "hhCompartment":
        return dict(C=p["C"], g=p["gl"], E=p["el"], gna=p["gna"], gk=p["gk"], ena=p["ena"],
                    ek=p["ek"], thresh=p["thresh"], v0=p["v0"])
    return dict(C=p["C"], g=p["gL"], E=p["EL"], vt=p["VT"], delT=p["delT"], tauw=p["tauw"],
                a=p["a"], b=p["b"], reset=p["reset"], thresh=p["thresh"], refract=p["refract"],
                v0=p["EL"])


def cell_params(cells: Sequence[dict]) -> CellParams:
    """Stack neuron dicts (any mix of families) into float32 arrays."""
    rows = [_row(c) for c in cells]
    fields = {f: np.array([r.get(f, 0.0) for r in rows], np.float32)
              for f in CellParams._fields if f != "family"}
    family = np.array([FAMILY_INDEX[c["family"]] for c in cells], np.int32)
    return CellParams(family=family, **fields)
