"""Chemical synapses (one instance per connection, as jNeuroML creates them) and gap
junctions, as arrays. Units: nS, mV, ms; weights are dimensionless.

Kinetics are the NeuroML2 core types: expOneSynapse (g jumps by w*gbase,
decays with tauDecay), expTwoSynapse (A, B with tauRise/tauDecay, normalized
so the peak is w*gbase), alphaSynapse (A jumps by w*gbase; g' = (e*A - g)/tau),
optionally with Tsodyks-Markram short-term plasticity (the release factor R*U
scales each event, as in blockingPlasticSynapse) and pair-based STDP on the
connection weight (traces, all-to-all pairing): a presynaptic event
depresses w by A_minus * y_post, a postsynaptic spike potentiates it by
A_plus * x_pre; x and y jump by 1 and decay with tau_plus / tau_minus; w is
clipped to [0, w_max]. NeuroML2 core has no STDP element: the NeuroML writer
marks such synapses with ``<property tag="stdp_*">`` entries (jNeuroML then
simulates them with fixed weights; the converter sets the CG's plastic flag).
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Sequence

import numpy as np

SYNAPSE_KINDS = ("expOneSynapse", "expTwoSynapse", "alphaSynapse")
EXP1, EXP2, ALPHA = range(3)
STP_KINDS = ("none", "tsodyksMarkramDepMechanism", "tsodyksMarkramDepFacMechanism")


class SynapseParams(NamedTuple):
    """[S] arrays, one row per connection."""

    pre: np.ndarray  # int32 presynaptic neuron
    post: np.ndarray  # int32 postsynaptic neuron
    kind: np.ndarray  # int32 index into SYNAPSE_KINDS
    gbase: np.ndarray  # nS
    erev: np.ndarray  # mV
    tau_rise: np.ndarray  # ms (expTwo) ; 1 where unused
    tau_decay: np.ndarray  # ms (expOne, expTwo) or tau (alpha)
    factor: np.ndarray  # expTwo waveform normalization, 1 otherwise
    weight: np.ndarray  # dimensionless
    delay: np.ndarray  # ms
    stp: np.ndarray  # int32 index into STP_KINDS
    u0: np.ndarray  # initial release probability
    tau_rec: np.ndarray  # ms; 1 where unused
    tau_fac: np.ndarray  # ms; 1 where unused
    stdp: np.ndarray  # bool, pair-based STDP on the weight
    a_plus: np.ndarray  # weight increase per pre-before-post pair (x = 1)
    a_minus: np.ndarray  # weight decrease per post-before-pre pair (y = 1)
    tau_plus: np.ndarray  # ms; 1 where unused
    tau_minus: np.ndarray  # ms; 1 where unused
    w_max: np.ndarray  # upper weight bound


class GapParams(NamedTuple):
    """[G] symmetric gap junctions between neurons a and b."""

    a: np.ndarray  # int32
    b: np.ndarray  # int32
    conductance: np.ndarray  # nS
    weight: np.ndarray


def waveform_factor(tau_rise: float, tau_decay: float) -> float:
    """expTwoSynapse's normalization: the peak of B - A is 1 per unit event."""
    peak = np.log(tau_decay / tau_rise) * tau_rise * tau_decay / (tau_decay - tau_rise)
    return float(1.0 / (-np.exp(-peak / tau_rise) + np.exp(-peak / tau_decay)))


def synapse_params(connections: Sequence[Dict]) -> SynapseParams:
    """Connections ``{"pre", "post", "synapse": {...}, "weight", "delay"}`` -> arrays.

    ``synapse`` is ``{"kind": one of SYNAPSE_KINDS, "gbase", "erev", "tauDecay" or
    "tau", "tauRise" (expTwo), optional "stp": {"kind", "initReleaseProb",
    "tauRec", "tauFac"}, optional "stdp": {"A_plus", "A_minus", "tau_plus",
    "tau_minus", "w_max"}}``.
    """
    rows = []
    for c in connections:
        syn = c["synapse"]
        kind = syn["kind"]
        if kind not in SYNAPSE_KINDS:
            raise ValueError(f"unknown synapse kind {kind!r}; known: {SYNAPSE_KINDS}")
        decay = float(syn["tau"] if kind == "alphaSynapse" else syn["tauDecay"])
        rise = float(syn.get("tauRise", 1.0)) if kind == "expTwoSynapse" else 1.0
        stp = syn.get("stp") or {"kind": "none"}
        if stp["kind"] not in STP_KINDS:
            raise ValueError(f"unknown plasticity mechanism {stp['kind']!r}")
        stdp = syn.get("stdp") or {}
        rows.append((int(c["pre"]), int(c["post"]), SYNAPSE_KINDS.index(kind), float(syn["gbase"]),
                     float(syn["erev"]), rise, decay,
                     waveform_factor(rise, decay) if kind == "expTwoSynapse" else 1.0,
                     float(c.get("weight", 1.0)), float(c.get("delay", 0.0)),
                     STP_KINDS.index(stp["kind"]), float(stp.get("initReleaseProb", 1.0)),
                     float(stp.get("tauRec", 1.0)), float(stp.get("tauFac", 1.0)),
                     bool(stdp), float(stdp.get("A_plus", 0.0)), float(stdp.get("A_minus", 0.0)),
                     float(stdp.get("tau_plus", 1.0)), float(stdp.get("tau_minus", 1.0)),
                     float(stdp.get("w_max", np.inf))))
    cols = list(zip(*rows)) if rows else [()] * len(SynapseParams._fields)
    ints = {"pre", "post", "kind", "stp"}
    dtype = {**{f: np.int32 for f in ints}, "stdp": bool}
    return SynapseParams(*(np.asarray(col, dtype.get(f, np.float32))
                           for f, col in zip(SynapseParams._fields, cols)))


def gap_params(gaps: Sequence[Dict]) -> GapParams:
    """Gap junctions ``{"a", "b", "conductance", "weight"}`` -> arrays."""
    return GapParams(a=np.asarray([g["a"] for g in gaps], np.int32),
                     b=np.asarray([g["b"] for g in gaps], np.int32),
                     conductance=np.asarray([g["conductance"] for g in gaps], np.float32),
                     weight=np.asarray([g.get("weight", 1.0) for g in gaps], np.float32))
