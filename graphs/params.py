"""Component parameters -> schema columns (SI values).

libNeuroML declares every attribute with its data type (``member_data_items_``,
e.g. ``Nml2Quantity_voltage``), so quantities are read generically and checked
against their dimension; a table maps attribute names onto schema columns.
"""

from __future__ import annotations

import math
from typing import Dict

from graphs.errors import InvalidValue, UnknownComponent
from graphs.reader import Component, line_of
from graphs.schema import model_class
from graphs.units import dimension_of_type, to_si

# Attribute name -> column, shared by all cell types; per-tag overrides below.
_CELL_COLUMNS = {
    "C": "capacitance", "cm": "capacitance",
    "leak_reversal": "e_leak_cell", "EL": "e_leak_cell", "v_rest": "e_leak_cell",
    "vr": "e_leak_cell", "e_rev_leak": "e_leak_cell",
    "thresh": "v_thresh", "v_thresh": "v_thresh", "VT": "v_thresh", "vt": "v_thresh",
    "reset": "v_reset", "v_reset": "v_reset", "c": "v_reset",
    "leak_conductance": "g_leak_cell", "g_l": "g_leak_cell", "g_leak": "g_leak_cell",
    "tau": "tau_m", "tau_m": "tau_m",
    "refract": "refract", "tau_refrac": "refract",
    "tauw": "adapt_tau", "tau_w": "adapt_tau",
    "del_t": "delta_t", "delta_T": "delta_t",
    "v0": "v_init", "v_init": "v_init",
    "vpeak": "v_peak", "v_spike": "v_peak",
    "k": "izh_k", "a": "izh_a", "b": "izh_b", "d": "izh_d",
}
_CELL_OVERRIDES = {
    "adExIaFCell": {"thresh": "v_peak", "a": "adapt_a", "b": "adapt_b"},
    "EIF_cond_exp_isfa_ista": {"a": "adapt_a", "b": "adapt_b"},
    "EIF_cond_alpha_isfa_ista": {"a": "adapt_a", "b": "adapt_b"},
    "izhikevichCell": {"thresh": "v_peak", "b": "izh03_b", "d": "izh03_d"},
}
_SYNAPSE_COLUMNS = {
    "gbase": "syn_gbase", "gbase1": "syn_gbase", "conductance": "syn_gbase",
    "erev": "e_rev_syn", "e_rev": "e_rev_syn",
    "tau_rise": "syn_tau_rise", "tau_decay": "syn_tau_decay",
    "tau_decay1": "syn_tau_decay", "tau_decay2": "syn_tau_decay2",
    "tau": "syn_tau_decay", "tau_syn": "syn_tau_decay",
    "tau_rec": "syn_tau_rec", "tau_fac": "syn_tau_fac",
    "init_release_prob": "syn_release_prob",
}
_INPUT_COLUMNS = {
    "amplitude": "input_amplitude", "finish_amplitude": "input_amplitude",
    "delay": "input_delay", "start": "input_delay", "duration": "input_duration",
    "average_rate": "input_rate", "rate": "input_rate",
}
# PyNN cells and synapses give plain numbers in PyNN's fixed units
# (mV, ms, nF, nA, uS); SI factor per attribute.
_PYNN_SI = {
    "cm": 1e-9, "i_offset": 1e-9, "g_leak": 1e-6, "gbar_K": 1e-6, "gbar_Na": 1e-6,
    "a": 1e-9, "b": 1e-9,
}
_PYNN_TAGS = {"IF_curr_alpha", "IF_curr_exp", "IF_cond_alpha", "IF_cond_exp",
              "EIF_cond_exp_isfa_ista", "EIF_cond_alpha_isfa_ista", "HH_cond_exp",
              "expCondSynapse", "alphaCondSynapse", "expCurrSynapse", "alphaCurrSynapse"}
_NONNEGATIVE = {"capacitance", "tau_m", "refract", "adapt_tau", "g_leak_cell", "syn_gbase",
                "syn_tau_rise", "syn_tau_decay", "syn_tau_decay2", "syn_tau_rec",
                "syn_tau_fac", "input_rate", "input_duration"}


def _pynn_si(name: str, value: float) -> float:
    if name in _PYNN_SI:
        return value * _PYNN_SI[name]
    if name.startswith(("tau", "delay", "start", "duration")):
        return value * 1e-3  # ms
    if name.startswith(("v_", "e_rev", "delta_T")):
        return value * 1e-3  # mV
    return value


def quantities(comp: Component) -> Dict[str, float]:
    """All numeric attributes of a component in SI, keyed by libNeuroML name."""
    out: Dict[str, float] = {}
    obj, line = comp.obj, line_of(comp.obj)
    pynn = comp.tag in _PYNN_TAGS
    for cls in type(obj).__mro__:
        for member in cls.__dict__.get("member_data_items_", ()):
            name, dtype = member.get_name(), member.get_data_type()
            raw = getattr(obj, name, None)
            if raw is None or name in out:
                continue
            dim = dimension_of_type(dtype)
            if dim is not None:
                value = to_si(raw, dim, comp.file, comp.tag, line)
            elif dtype in ("xs:float", "xs:double", "ZeroToOne"):
                value = float(raw)
                value = _pynn_si(name, value) if pynn else value
            else:
                continue
            if math.isnan(value) or math.isinf(value):
                raise InvalidValue(comp.file, f"{name}={raw!r} is not a finite number",
                                   comp.tag, line)
            out[name] = value
    return out


def _columns(comp: Component, table: Dict[str, str], overrides=None,
             q: Dict[str, float] = None) -> Dict[str, float]:
    q = quantities(comp) if q is None else q
    mapping = {**table, **(overrides or {})}
    feats = {mapping[k]: v for k, v in q.items() if k in mapping}
    for col in _NONNEGATIVE & feats.keys():
        if feats[col] < 0:
            raise InvalidValue(comp.file, f"{col} is negative ({feats[col]:g} SI)",
                               comp.tag, line_of(comp.obj))
    return feats


def class_feature(tag: str) -> Dict[str, float]:
    return {f"class_{model_class(tag)}": 1.0}


def cell_features(comp: Component) -> Dict[str, float]:
    """Neuron-level columns of a point/abstract cell component."""
    feats = _columns(comp, _CELL_COLUMNS, _CELL_OVERRIDES.get(comp.tag))
    if comp.tag == "izhikevichCell" and "izh_a" in feats:
        feats["izh_a"] *= 1e3  # dimensionless a of the 2003 model is per ms
    if comp.tag == "izhikevichCell" and "v_reset" in feats:
        feats["v_reset"] *= 1e-3  # dimensionless c is in mV
    return {**class_feature(comp.tag), **feats}


def synapse_features(comp: Component, components: Dict[str, Component]) -> Dict[str, float]:
    """Synapse columns: kinetics, conductance, reversal, plasticity, block."""
    feats = {**class_feature(comp.tag), **_columns(comp, _SYNAPSE_COLUMNS)}
    obj = comp.obj
    plastic = getattr(obj, "plasticity_mechanism", None)
    if plastic is not None:
        sub = Component("plasticityMechanism", plastic, comp.file)
        feats.update(_columns(sub, _SYNAPSE_COLUMNS))
    stdp = any(getattr(p, "tag", None) == "stdp" for p in getattr(obj, "properties", None) or [])
    feats["syn_plastic"] = float(plastic is not None or stdp
                                 or model_class(comp.tag) == "plasticSynapse")
    feats["syn_block"] = float(getattr(obj, "block_mechanism", None) is not None)
    if comp.tag == "doubleSynapse":  # kinetics of the first constituent synapse
        first = components.get(obj.synapse1)
        if first is None:
            raise UnknownComponent(comp.file, f"synapse1={obj.synapse1!r} is not defined",
                                   comp.tag, line_of(obj))
        feats = {**synapse_features(first, components), **class_feature(comp.tag)}
    return feats


def _spike_list_columns(comp: Component) -> Dict[str, float]:
    """A spike list (spikeArray, timedSynapticInput) as a rate: spikes / last spike time,
    and its first spike as the delay; without it Poisson-like drive would be invisible."""
    spikes = getattr(comp.obj, "spikes", None)
    if not spikes:
        return {}
    times = sorted(to_si(sp.time, "time", comp.file, comp.tag, line_of(sp)) for sp in spikes)
    out = {"input_delay": times[0]}
    if times[-1] > 0:
        out["input_rate"] = len(times) / times[-1]
    return out


def input_features(comp: Component, components: Dict[str, Component]) -> Dict[str, float]:
    """Input columns: amplitude, rate, timing (and the synapse it drives, if any)."""
    q = quantities(comp)
    feats = {**class_feature(comp.tag), **_columns(comp, _INPUT_COLUMNS, q=q)}
    if "period" in q and q["period"] > 0:
        feats["input_rate"] = 1.0 / q["period"]
    feats.update(_spike_list_columns(comp))
    syn_id = getattr(comp.obj, "synapse", None)
    if syn_id:
        syn = components.get(syn_id)
        if syn is None:
            raise UnknownComponent(comp.file, f"synapse={syn_id!r} is not defined",
                                   comp.tag, line_of(comp.obj))
        syn_feats = synapse_features(syn, components)
        syn_feats.pop(f"class_{model_class(syn.tag)}", None)
        feats.update(syn_feats)
    return feats
