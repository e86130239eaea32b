"""Point-neuron families and their parameters as arrays (one row per neuron).

A neuron is ``{"family": name, <parameter>: value, ...}`` with values in mV,
ms, pA, pF, nS (``graphs.canonical`` writes the same numbers into NeuroML).
``cell_params`` stacks many neurons of any families into one ``CellParams``
so a whole network steps as one vectorized update.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Sequence

import numpy as np

# family -> the NeuroML component type and its parameters (names as in NeuroML)
CELL_FAMILIES: Dict[str, tuple] = {
    "iafCell": ("C", "leak_conductance", "leak_reversal", "thresh", "reset"),
    "iafRefCell": ("C", "leak_conductance", "leak_reversal", "thresh", "reset", "refract"),
    "izhikevich2007Cell": ("C", "k", "vr", "vt", "vpeak", "a", "b", "c", "d", "v0"),
    "adExIaFCell": ("C", "gL", "EL", "VT", "delT", "tauw", "a", "b", "reset", "thresh",
                    "refract"),
}
FAMILY_INDEX = {name: i for i, name in enumerate(CELL_FAMILIES)}


class CellParams(NamedTuple):
    """[N] arrays; parameters a family does not use are 0."""

    family: np.ndarray  # int32, index into CELL_FAMILIES
    C: np.ndarray  # pF
    g: np.ndarray  # nS: leak_conductance (iaf) or gL (AdEx)
    E: np.ndarray  # mV: leak_reversal (iaf), EL (AdEx), vr (Izhikevich)
    thresh: np.ndarray  # mV: spike test: thresh (iaf, AdEx) or vpeak (Izhikevich)
    reset: np.ndarray  # mV: reset (iaf, AdEx) or c (Izhikevich)
    refract: np.ndarray  # ms
    k: np.ndarray  # nS/mV (Izhikevich)
    vt: np.ndarray  # mV: vt (Izhikevich) or VT (AdEx)
    a: np.ndarray  # 1/ms (Izhikevich) or nS (AdEx)
    b: np.ndarray  # nS (Izhikevich) or pA (AdEx, spike-triggered)
    d: np.ndarray  # pA (Izhikevich)
    delT: np.ndarray  # mV (AdEx)
    tauw: np.ndarray  # ms (AdEx)
    v0: np.ndarray  # mV, initial potential


def _row(cell: Dict) -> Dict[str, float]:
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
    return dict(C=p["C"], g=p["gL"], E=p["EL"], vt=p["VT"], delT=p["delT"], tauw=p["tauw"],
                a=p["a"], b=p["b"], reset=p["reset"], thresh=p["thresh"], refract=p["refract"],
                v0=p["EL"])


def cell_params(cells: Sequence[Dict]) -> CellParams:
    """Stack neuron dicts (any mix of families) into float32 arrays."""
    rows = [_row(c) for c in cells]
    fields = {f: np.array([r.get(f, 0.0) for r in rows], np.float32)
              for f in CellParams._fields if f != "family"}
    family = np.array([FAMILY_INDEX[c["family"]] for c in cells], np.int32)
    return CellParams(family=family, **fields)
