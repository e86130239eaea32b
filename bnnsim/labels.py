"""Labels from simulated activity: per-neuron firing pattern, per-network regime.

Criteria (documented here and in docs/bnnsim.md; thresholds are module constants):

Firing pattern of one spike train inside the analysis window, first rule that
applies:

1. ``silent``: fewer than ``MIN_SPIKES`` (3) spikes.
2. ``bursting``: the ISIs split into two well separated sets: sorted, some
   gap between consecutive ISIs has a ratio >= 1 / ``BURST_RATIO`` (1 / 0.3),
   the short set holds >= 25% of the ISIs, and the short ISIs form at least
   ``BURST_MIN_GROUPS`` (2) separate runs in time (groups of >= 2 spikes).
3. ``irregular``: ISI coefficient of variation > ``CV_IRREGULAR`` (0.5).
4. ``fast``: mean rate > ``FAST_RATE`` (100 Hz).
5. ``adapting``: adaptation index (mean of (ISI_(k+1) - ISI_k) / (ISI_(k+1) +
   ISI_k)) > ``ADAPTATION`` (0.02), the measure of Naud et al. (2008).
6. ``tonic``: otherwise.

Network regime from all neurons' spikes and potentials:

1. ``quiescent``: mean rate < ``QUIESCENT_RATE`` (1 Hz).
2. ``saturated``: mean rate > ``SATURATED_RATE`` (150 Hz).
3. ``synchronous_regular``: voltage synchrony chi >= ``SYNCHRONY`` (0.35)
   (Golomb & Rinzel: chi^2 = Var_t(mean_i V_i) / mean_i Var_t(V_i)). Spike
   resets keep chi of small heterogeneous networks well below 1; 0.35 is the
   upper fifth of the canonical generator's networks (measured over 24 seeds).
4. ``asynchronous_irregular``: otherwise.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

FIRING_PATTERNS = ("silent", "tonic", "adapting", "bursting", "fast", "irregular")
REGIMES = ("quiescent", "asynchronous_irregular", "synchronous_regular", "saturated")

MIN_SPIKES = 3
BURST_RATIO = 0.3
BURST_MIN_GROUPS = 2
CV_IRREGULAR = 0.5
FAST_RATE = 100.0  # Hz
ADAPTATION = 0.02
QUIESCENT_RATE = 1.0  # Hz
SATURATED_RATE = 150.0  # Hz
SYNCHRONY = 0.35


def spike_stats(times: Sequence[float], window: float) -> Dict[str, float]:
    """Rate (Hz), ISI CV, adaptation index, burst fraction of a train (times and window in ms)."""
    t = np.sort(np.asarray(times, float))
    isi = np.diff(t)
    stats = {"rate": 1e3 * t.size / window, "cv": 0.0, "adaptation": 0.0, "burst_fraction": 0.0,
             "burst_groups": 0.0}
    if isi.size >= 2:
        stats["cv"] = float(isi.std() / isi.mean()) if isi.mean() > 0 else 0.0
        pairs = isi[1:] + isi[:-1]
        stats["adaptation"] = float(np.mean(np.where(pairs > 0, (isi[1:] - isi[:-1]) / pairs, 0)))
        short = isi < _burst_threshold(isi)
        stats["burst_fraction"] = float(short.mean())
        # a group = a run of short ISIs; count runs
        stats["burst_groups"] = float(np.sum(np.diff(np.concatenate([[0], short.astype(int)])) == 1))
    return stats


def _burst_threshold(isi: np.ndarray) -> float:
    """The ISI separating within-burst from between-burst intervals, or 0 if none."""
    s = np.sort(isi)
    n = s.size
    for j in range(int(np.ceil(0.25 * n)) - 1, n - 1):  # short set = s[:j + 1]
        if s[j + 1] * BURST_RATIO >= s[j] > 0:
            return float((s[j] + s[j + 1]) / 2)
    return 0.0


def firing_pattern(times: Sequence[float], window: float) -> str:
    """The firing-pattern class of one spike train (criteria in the module docstring)."""
    return pattern_of(spike_stats(times, window), len(times))


def pattern_of(s: Dict[str, float], n_spikes: int) -> str:
    """The firing-pattern class from a train's ``spike_stats`` and spike count."""
    if n_spikes < MIN_SPIKES:
        return "silent"
    if s["burst_groups"] >= BURST_MIN_GROUPS:
        return "bursting"
    if s["cv"] > CV_IRREGULAR:
        return "irregular"
    if s["rate"] > FAST_RATE:
        return "fast"
    if s["adaptation"] > ADAPTATION:
        return "adapting"
    return "tonic"


def voltage_synchrony(v: np.ndarray) -> float:
    """Golomb-Rinzel chi in [0, 1] from potentials v [T, N]."""
    v = np.asarray(v, float)
    pop = np.var(v.mean(axis=1))
    single = np.mean(np.var(v, axis=0))
    return float(np.sqrt(pop / single)) if single > 0 else 0.0


def network_regime(spikes: np.ndarray, v: np.ndarray, dt: float) -> Dict[str, object]:
    """Regime label and its measures from a raster [T, N] bool and potentials [T, N]."""
    duration = spikes.shape[0] * dt
    rate = float(1e3 * spikes.sum() / (spikes.shape[1] * duration)) if spikes.size else 0.0
    chi = voltage_synchrony(v)
    if rate < QUIESCENT_RATE:
        regime = "quiescent"
    elif rate > SATURATED_RATE:
        regime = "saturated"
    elif chi >= SYNCHRONY:
        regime = "synchronous_regular"
    else:
        regime = "asynchronous_irregular"
    return {"regime": regime, "mean_rate": rate, "synchrony": chi}
