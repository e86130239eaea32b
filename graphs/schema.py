"""The computational-graph (CG) schema: the one home of node kinds, edge kinds,
model classes and the feature layout.

Everything that reads or writes CG arrays imports its names from here, and the
whole layout is exported (``schema_dict``) with every dataset so that a dataset
says which schema built it. Bump ``SCHEMA_VERSION`` on any change to the layout.

Feature encoding (see ``encode_values``): a physical quantity is first converted to SI
with the NeuroML unit definitions (``graphs.units``), expressed in the column's
reference unit and then passed through ``sign(v) * log1p(|v|)`` ("slog"), so a
1 um spine (0.69) and a 1 mm axon (6.9) are both usable. Counts use
``log1p``; indices already in [0, 1] and one-hot columns are stored as is.
A missing value is 0 with presence mask 0, never a made-up number.
"""

from __future__ import annotations

import enum
from typing import Dict, NamedTuple, Tuple

import numpy as np

SCHEMA_VERSION = "1.1"  # 1.1: synapse statistics (syn_count, syn_weight_*, syn_delay_*,
# n_connections); a point cell's leak in its own columns (g_leak_cell, e_leak_cell), which
# 1.0 named like the leak-density columns and so stored in those


class NodeKind(enum.IntEnum):
    CLS = 0
    NEURON = 1
    SOMA = 2
    DENDRITE = 3
    AXON = 4
    SYNAPSE = 5
    INPUT = 6


class EdgeKind(enum.IntEnum):
    AXIAL = 0  # compartment <-> parent compartment, both directions stored
    MEMBERSHIP = 1  # compartment <-> its neuron node
    SYNAPTIC = 2  # pre compartment -> synapse node -> post compartment
    GAP = 3  # gap junction / analog coupling, symmetric
    INPUT = 4  # input node -> target compartment
    CLS = 5  # neuron <-> CLS


COMPARTMENT_KINDS = (NodeKind.SOMA, NodeKind.DENDRITE, NodeKind.AXON)
GRANULARITIES = ("section", "segment", "point")

# Model classes of the type one-hot. NeuroML element names map onto them in
# ``model_class``; anything unlisted is "other".
MODEL_CLASSES: Tuple[str, ...] = (
    "izhikevich2007Cell", "izhikevichCell", "adExIaFCell", "iafCell",
    "iafRefCell", "iafTauCell", "iafTauRefCell", "hhCell", "pynnCell",
    "fitzHughNagumoCell", "pinskyRinzelCA3Cell",
    "expOneSynapse", "expTwoSynapse", "expThreeSynapse", "alphaSynapse",
    "gapJunction", "plasticSynapse", "doubleSynapse", "gradedSynapse",
    "pynnSynapse",
    "pulseGenerator", "sineGenerator", "rampGenerator", "spikeGenerator",
    "spikeGeneratorPoisson", "spikeArray", "poissonFiringSynapse",
    "voltageClamp", "ionChannel",
    "other",
)

# Which model classes are cells, synapses and inputs.
CELL_CLASSES = {"izhikevich2007Cell", "izhikevichCell", "adExIaFCell", "iafCell",
                 "iafRefCell", "iafTauCell", "iafTauRefCell", "hhCell", "pynnCell",
                 "fitzHughNagumoCell", "pinskyRinzelCA3Cell"}
SYNAPSE_CLASSES = {"expOneSynapse", "expTwoSynapse", "expThreeSynapse", "alphaSynapse",
                    "gapJunction", "plasticSynapse", "doubleSynapse", "gradedSynapse",
                    "pynnSynapse"}
INPUT_CLASSES = {"pulseGenerator", "sineGenerator", "rampGenerator", "spikeGenerator",
                  "spikeGeneratorPoisson", "spikeArray", "poissonFiringSynapse",
                  "voltageClamp"}

_CLASS_ALIASES = {
    "cell": "hhCell",
    "cell2CaPools": "hhCell",
    "fitzHughNagumo1969Cell": "fitzHughNagumoCell",
    "blockingPlasticSynapse": "plasticSynapse",
    "stdpSynapse": "plasticSynapse",
    "linearGradedSynapse": "gradedSynapse",
    "pulseGeneratorDL": "pulseGenerator",
    "sineGeneratorDL": "sineGenerator",
    "rampGeneratorDL": "rampGenerator",
    "spikeGeneratorRandom": "spikeGeneratorPoisson",
    "spikeGeneratorRefPoisson": "spikeGeneratorPoisson",
    "SpikeSourcePoisson": "spikeGeneratorPoisson",
    "transientPoissonFiringSynapse": "poissonFiringSynapse",
    "timedSynapticInput": "spikeArray",
    "voltageClampTriple": "voltageClamp",
    "ionChannelHH": "ionChannel",
    "ionChannelKS": "ionChannel",
    "ionChannelVShift": "ionChannel",
    "ionChannelPassive": "ionChannel",
}
_PYNN_CELLS = {"IF_curr_alpha", "IF_curr_exp", "IF_cond_alpha", "IF_cond_exp",
               "EIF_cond_exp_isfa_ista", "EIF_cond_alpha_isfa_ista", "HH_cond_exp"}
_PYNN_SYNAPSES = {"expCondSynapse", "alphaCondSynapse", "expCurrSynapse",
                  "alphaCurrSynapse"}


def model_class(tag: str) -> str:
    """The ``MODEL_CLASSES`` entry for a NeuroML element name."""
    if tag in MODEL_CLASSES:
        return tag
    if tag in _PYNN_CELLS:
        return "pynnCell"
    if tag in _PYNN_SYNAPSES:
        return "pynnSynapse"
    return _CLASS_ALIASES.get(tag, "other")


class Column(NamedTuple):
    """One feature column: its group, reference unit and transform."""

    name: str
    group: str
    unit: str  # NeuroML unit symbol of the reference unit, "" if none
    transform: str  # "onehot" | "unit" | "count" | "slog"


FEATURE_GROUPS = ("type", "index", "io", "geometry", "activity", "function")
SPECIES = ("na", "k", "ca", "h", "leak", "other")


def _cols(group, transform, unit, *names):
    return [Column(n, group, unit, transform) for n in names]


def _node_columns():
    c = []
    c += _cols("type", "onehot", "", *(f"kind_{k.name.lower()}" for k in NodeKind))
    c += _cols("type", "onehot", "", *(f"class_{m}" for m in MODEL_CLASSES))
    c += _cols("index", "unit", "", "population_index", "instance_index",
               "compartment_index", "branch_order")
    c += _cols("io", "count", "", *(f"deg_in_{k.name.lower()}" for k in EdgeKind))
    c += _cols("io", "count", "", *(f"deg_out_{k.name.lower()}" for k in EdgeKind))
    c += _cols("io", "count", "", "n_syn_in", "n_syn_out")
    # What a synapse node stands for: one connection (--synapses connection) or all of a
    # (pre population, post population, synapse) triple (--synapses type).
    c += _cols("io", "count", "", "syn_count")
    c += _cols("io", "slog", "", *(f"syn_weight_{s}" for s in ("mean", "std", "min", "max")))
    c += _cols("io", "slog", "ms", *(f"syn_delay_{s}" for s in ("mean", "std", "min", "max")))
    c += _cols("io", "slog", "mV", "v_thresh", "e_rev_syn")
    c += _cols("io", "slog", "nA", "input_amplitude")
    c += _cols("io", "slog", "Hz", "input_rate")
    c += _cols("io", "slog", "ms", "input_delay", "input_duration")
    c += _cols("io", "slog", "", "input_weight")
    c += _cols("geometry", "slog", "um", "x", "y", "z", "length", "diameter")
    c += _cols("geometry", "slog", "um2", "surface_area")
    c += _cols("geometry", "slog", "um", "path_distance")
    c += _cols("activity", "slog", "pF", "capacitance")
    c += _cols("activity", "slog", "uF_per_cm2", "specific_capacitance")
    c += _cols("activity", "slog", "ms", "tau_m", "refract", "adapt_tau")
    c += _cols("activity", "slog", "mV", "e_leak_cell", "v_reset", "v_peak", "v_init",
               "delta_t")
    # a point cell's leak (nS, mV); a compartment's leak density is the function
    # group's g_leak / e_leak (mS_per_cm2, mV), one name per column
    c += _cols("activity", "slog", "nS", "g_leak_cell", "izh_b", "adapt_a")
    c += _cols("activity", "slog", "nS_per_mV", "izh_k")
    c += _cols("activity", "slog", "per_ms", "izh_a")
    c += _cols("activity", "slog", "pA", "izh_d", "adapt_b")
    c += _cols("activity", "slog", "", "izh03_b", "izh03_d")
    c += _cols("activity", "slog", "ohm_cm", "axial_resistivity")
    # Measured activity: filled when a simulation has been run (dataset labels).
    c += _cols("activity", "slog", "Hz", "rate")
    c += _cols("activity", "slog", "", "isi_cv", "burst_fraction")
    c += _cols("activity", "slog", "mV", "mean_v")
    c += _cols("function", "slog", "mS_per_cm2", *(f"g_{s}" for s in SPECIES))
    c += _cols("function", "slog", "mV", *(f"e_{s}" for s in SPECIES))
    c += _cols("function", "slog", "nS", "syn_gbase")
    c += _cols("function", "slog", "ms", "syn_tau_rise", "syn_tau_decay",
               "syn_tau_decay2", "syn_tau_rec", "syn_tau_fac")
    c += _cols("function", "unit", "", "syn_release_prob", "syn_plastic",
               "syn_block")
    return tuple(c)


def _edge_columns():
    c = _cols("kind", "onehot", "", *(f"kind_{k.name.lower()}" for k in EdgeKind))
    c += _cols("flow", "unit", "", "forward")
    c += _cols("synapse", "slog", "", "weight")
    c += _cols("synapse", "slog", "ms", "delay")
    c += _cols("synapse", "slog", "nS", "conductance")
    c += _cols("synapse", "count", "", "n_connections")  # connections a synaptic edge carries
    c += _cols("geometry", "slog", "um", "distance")
    return tuple(c)


NODE_COLUMNS: Tuple[Column, ...] = _node_columns()
EDGE_COLUMNS: Tuple[Column, ...] = _edge_columns()
NODE_INDEX: Dict[str, int] = {c.name: i for i, c in enumerate(NODE_COLUMNS)}
EDGE_INDEX: Dict[str, int] = {c.name: i for i, c in enumerate(EDGE_COLUMNS)}
NUM_NODE_FEATURES = len(NODE_COLUMNS)
NUM_EDGE_FEATURES = len(EDGE_COLUMNS)


def group_slices(columns=NODE_COLUMNS) -> Dict[str, slice]:
    """Contiguous column range of each feature group, e.g. ``{"type": slice(0, 37)}``."""
    out: Dict[str, slice] = {}
    for i, col in enumerate(columns):
        s = out.get(col.group)
        out[col.group] = slice(i, i + 1) if s is None else slice(s.start, i + 1)
    return out


NODE_GROUPS = group_slices(NODE_COLUMNS)
EDGE_GROUPS = group_slices(EDGE_COLUMNS)


def encode_column(column: Column, values: np.ndarray) -> np.ndarray:
    """One column's fixed transform of values already in its reference unit."""
    out = np.asarray(values, np.float64)
    if column.transform == "slog":
        return np.sign(out) * np.log1p(np.abs(out))
    if column.transform == "count":
        return np.log1p(out)
    return out.copy()


def encode_values(columns, col_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``encode_column`` of values of mixed columns: col_idx [K], values [K] -> [K]."""
    col_idx = np.asarray(col_idx)
    out = np.asarray(values, np.float64).copy()
    for j in np.unique(col_idx):
        sel = col_idx == j
        out[sel] = encode_column(columns[int(j)], out[sel])
    return out


def decode(column: Column, encoded: np.ndarray) -> np.ndarray:
    """Inverse of ``encode_values`` for one column (values back in its reference unit)."""
    encoded = np.asarray(encoded, np.float64)
    if column.transform == "slog":
        return np.sign(encoded) * np.expm1(np.abs(encoded))
    if column.transform == "count":
        return np.expm1(encoded)
    return encoded


def schema_dict() -> dict:
    """The full layout as JSON-able data, stored with every dataset."""
    cols = lambda cs: [c._asdict() for c in cs]  # noqa: E731
    return {
        "schema_version": SCHEMA_VERSION,
        "node_kinds": {k.name.lower(): int(k) for k in NodeKind},
        "edge_kinds": {k.name.lower(): int(k) for k in EdgeKind},
        "model_classes": list(MODEL_CLASSES),
        "node_columns": cols(NODE_COLUMNS),
        "edge_columns": cols(EDGE_COLUMNS),
        "node_groups": {g: [s.start, s.stop] for g, s in NODE_GROUPS.items()},
        "edge_groups": {g: [s.start, s.stop] for g, s in EDGE_GROUPS.items()},
        "transforms": {
            "slog": "sign(v) * log1p(|v|), v in the column's reference unit",
            "count": "log1p(n)",
            "unit": "identity, value in [0, 1]",
            "onehot": "identity, 0/1",
        },
    }
