"""Spike and passive features of a sweep, computed by eFEL (never by hand).

eFEL (Blue Brain's feature library, the one NeuroML-DB and BluePyOpt use)
returns None for a feature a sweep does not define (an ISI CV of two
spikes); we keep that as None (null in JSON, NaN in arrays), never 0.

eFEL keeps its settings in a global; every call here resets them and sets
what the sweep needs (spike threshold, the stimulus current for input
resistance), so results never depend on an earlier call. eFEL is imported on first use:
the label names and e-type rules that ``bgan_jax``'s data layer reads import this
module, and a model run needs neither eFEL nor its import time (~0.3 s, with neo).
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Sequence

import numpy as np

SPIKE_THRESHOLD_MV = -20.0  # eFEL's default: a spike is a peak crossing -20 mV...
SPIKE_MAX_WIDTH_MS = 20.0  # ...that falls back below it within this time
BLOCK_SILENCE_MS = 200.0  # depolarisation block: silent this long before the step ends...
BLOCK_MV = -40.0  # ...with the mean membrane potential over the silence above this

# computed on every suprathreshold sweep (eFEL names; spike_count is eFEL 5's name for
# Spikecount)
SPIKE_FEATURES = ("spike_count", "mean_frequency", "adaptation_index2", "ISI_CV",
                  "time_to_first_spike", "AP_width", "AP_amplitude", "AHP_depth",
                  "burst_number", "doublet_ISI")


def _trace(tr) -> dict:
    return {"T": np.asarray(tr.t, dtype=np.float64), "V": np.asarray(tr.v, dtype=np.float64),
            "stim_start": [float(tr.start)], "stim_end": [float(tr.end)]}


def _efel(tr, names: Sequence[str]) -> dict:
    """eFEL's raw values for one sweep, from freshly reset settings."""
    import efel

    efel.reset()
    efel.set_setting("Threshold", SPIKE_THRESHOLD_MV)
    efel.set_setting("stimulus_current", float(tr.amp))
    with warnings.catch_warnings():  # eFEL 5 flags burst_number's internals as deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        return efel.get_feature_values([_trace(tr)], list(names), raise_warnings=False)[0]


def efel_features(tr, names: Sequence[str]) -> Dict[str, Optional[float]]:
    """{eFEL feature: value or None}; features that give arrays keep their mean,
    ``Spikecount``-like scalars their value."""
    values = _efel(tr, names)
    out: Dict[str, Optional[float]] = {}
    for name in names:
        v = values.get(name)
        if v is None or len(v) == 0:
            out[name] = None
        else:
            x = float(np.mean(v))
            out[name] = x if np.isfinite(x) else None
    return out


def spike_times(tr, window: bool = False) -> np.ndarray:
    """[S] ms, peak times of the action potentials (eFEL's peaks that repolarise below
    threshold within SPIKE_MAX_WIDTH_MS: a passive plateau above -20 mV is no spike);
    with ``window``, only those inside the stimulus window."""
    peaks = _efel(tr, ["peak_time"]).get("peak_time")  # ms (eFEL's indices refer to its interpolated trace)
    if peaks is None or len(peaks) == 0:
        return np.zeros(0)
    t, v = np.asarray(tr.t, np.float64), np.asarray(tr.v, np.float64)
    below = t[v < SPIKE_THRESHOLD_MV]  # [B] times below threshold, sorted
    nxt = np.searchsorted(below, np.asarray(peaks, np.float64))
    keep = [p for p, j in zip(peaks, nxt)
            if j < len(below) and below[j] - p <= SPIKE_MAX_WIDTH_MS]
    times = np.asarray(keep, np.float64)
    if window:
        times = times[(times >= tr.start) & (times <= tr.end)]
    return times


def spike_count(tr) -> int:
    """Action potentials during the stimulus window (the whole sweep for a rest sweep)."""
    return int(len(spike_times(tr, window=True)))


def isis(tr) -> np.ndarray:
    """[S-1] ms, every inter-spike interval inside the stimulus window."""
    return np.diff(spike_times(tr, window=True))


def blocked(tr) -> bool:
    """Depolarisation block: the cell fired, then fell silent for the last
    BLOCK_SILENCE_MS or more of the step while its mean voltage over that
    silence stayed above BLOCK_MV (firing stops because the membrane stays
    depolarised, as Bianchi et al. 2012 define it). Not eFEL's depol_block_bool,
    which also flags fast-spiking cells whose troughs stay high while they fire."""
    times = spike_times(tr, window=True)
    if len(times) == 0:
        return False
    silent_from = times[-1] + 5.0  # after the last spike's repolarisation
    if tr.end - silent_from < BLOCK_SILENCE_MS:
        return False
    t, v = np.asarray(tr.t), np.asarray(tr.v)
    quiet = (t >= silent_from) & (t < tr.end)
    return bool(quiet.any() and v[quiet].mean() > BLOCK_MV)


def input_resistance(tr) -> Optional[float]:
    """MOhm, from the steady deflection of a small step (eFEL ohmic_input_resistance_vb_ssse)."""
    return efel_features(tr, ["ohmic_input_resistance_vb_ssse"])[
        "ohmic_input_resistance_vb_ssse"]
