"""Spike and passive features of a sweep, computed by eFEL (never by hand).

eFEL (Blue Brain's feature library, the one NeuroML-DB and BluePyOpt use)
returns None for a feature a sweep does not define (an ISI CV of two
spikes); we keep that as None (null in JSON, NaN in arrays), never 0.

eFEL keeps its settings in a global; every call here resets them and sets
what the sweep needs (spike threshold, the stimulus current for input
resistance), so results never depend on an earlier call.
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Sequence

import efel
import numpy as np

SPIKE_THRESHOLD_MV = -20.0  # eFEL's default: a spike is a peak crossing -20 mV

# computed on every suprathreshold sweep (eFEL names; spike_count is eFEL 5's name for
# Spikecount)
SPIKE_FEATURES = ("spike_count", "mean_frequency", "adaptation_index2", "ISI_CV",
                  "time_to_first_spike", "AP_width", "AP_amplitude", "AHP_depth",
                  "burst_number", "doublet_ISI")
# on the hyperpolarising sweeps
SAG_FEATURES = ("sag_ratio1", "sag_amplitude", "voltage_base", "steady_state_voltage_stimend")


def _trace(tr) -> dict:
    return {"T": np.asarray(tr.t, dtype=np.float64), "V": np.asarray(tr.v, dtype=np.float64),
            "stim_start": [float(tr.start)], "stim_end": [float(tr.end)]}


def efel_features(tr, names: Sequence[str]) -> Dict[str, Optional[float]]:
    """{eFEL feature: value or None}; features that give arrays keep their mean,
    ``Spikecount``-like scalars their value."""
    efel.reset()
    efel.set_setting("Threshold", SPIKE_THRESHOLD_MV)
    efel.set_setting("stimulus_current", float(tr.amp))
    with warnings.catch_warnings():  # eFEL 5 flags burst_number's internals as deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        values = efel.get_feature_values([_trace(tr)], list(names), raise_warnings=False)[0]
    out: Dict[str, Optional[float]] = {}
    for name in names:
        v = values.get(name)
        if v is None or len(v) == 0:
            out[name] = None
        else:
            x = float(np.mean(v))
            out[name] = x if np.isfinite(x) else None
    return out


def spike_count(tr) -> int:
    """Spikes during the stimulus window (the whole sweep for a rest sweep)."""
    n = efel_features(tr, ["spike_count_stimint"])["spike_count_stimint"]
    return int(n or 0)


def spike_times(tr) -> np.ndarray:
    """[S] ms, peak times of every spike in the sweep."""
    efel.reset()
    efel.set_setting("Threshold", SPIKE_THRESHOLD_MV)
    v = efel.get_feature_values([_trace(tr)], ["peak_time"], raise_warnings=False)[0]
    return np.asarray(v.get("peak_time") if v.get("peak_time") is not None else [], float)


def isis(tr) -> np.ndarray:
    """[S-1] ms, every inter-spike interval inside the stimulus window."""
    t = spike_times(tr)
    t = t[(t >= tr.start) & (t <= tr.end)]
    return np.diff(t)


def blocked(tr) -> bool:
    """eFEL's depolarisation block test on the stimulus window."""
    v = efel_features(tr, ["depol_block_bool"])["depol_block_bool"]
    return bool(v)


def input_resistance(tr) -> Optional[float]:
    """MOhm, from the steady deflection of a small step (eFEL ohmic_input_resistance_vb_ssse)."""
    return efel_features(tr, ["ohmic_input_resistance_vb_ssse"])[
        "ohmic_input_resistance_vb_ssse"]
