"""The current-clamp protocol every cell goes through (version ``PROTOCOL_VERSION``).

It follows how NeuroML-DB characterises the models it hosts (Birgiolas et
al. 2023): settle to rest, hyperpolarising steps for input resistance and
sag, rheobase by a search on 1 s steps, then 1 s steps at multiples of the
rheobase (which also give the F-I curve). All numbers are the constants
below; changing any of them is a new ``PROTOCOL_VERSION`` (cached results
of another version are never reused).

The protocol is a pure function of a ``Simulator`` (anything with ``rest``
and ``step``), so it runs the same on NEURON (``bnnsim.ephys.nrn``) and on
a synthetic cell in the tests. Units: ms, mV, nA.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, NamedTuple, Optional, Protocol, Tuple

import numpy as np

from bnnsim.ephys import features

PROTOCOL_VERSION = "ephys-2"  # 2: each sweep starts from the exact settled state
# (bnnsim.ephys.nrn.Snapshot); in ephys-1 it also carried what the sweep before it left

DT_MS = 0.025  # fixed step of the simulator (NEURON's default)
DT_FALLBACK_MS = 0.005  # a cell whose voltage goes non-finite at DT_MS is rerun at this step
DEFAULT_TEMPERATURE_C = 34.0  # when the model's network declares none (Allen's value)
SETTLE_MS = 1000.0  # run with no input before any measurement; the state is reused
REST_MS = 1000.0  # recorded after settling: resting potential, spontaneous firing
BASE_MS = 100.0  # baseline before each step (eFEL's voltage_base)
STEP_MS = 1000.0  # every depolarising step (rheobase search, multiples)
TAIL_MS = 100.0  # after each step
SAG_STEP_MS = 1000.0  # hyperpolarising steps

PROBE_NA = -0.01  # small hyperpolarising step: ohmic input resistance (linear range)
SAG_TARGET_MV = -15.0  # the sag step is sized to hyperpolarise about this much...
SAG_BOUNDS_NA = (-2.0, -0.005)  # ...within these amplitudes

RHEO_START_NA = 0.05  # the search doubles from here...
RHEO_MAX_NA = 12.8  # ...up to here (0.05 * 2**8); no spike by then: non-spiking
RHEO_REL_TOL = 0.02  # bisection stops when (hi - lo) <= max(RHEO_REL_TOL * hi, RHEO_ABS_TOL_NA)
RHEO_ABS_TOL_NA = 0.001

SUPRA_MULTIPLES = (1.5, 3.0)  # the standard suprathreshold steps (features, e-type)
FI_MULTIPLES = (1.0, 1.5, 2.0, 2.5, 3.0)  # F-I curve (includes SUPRA_MULTIPLES)


class Trace(NamedTuple):
    """One recorded sweep: time and somatic voltage, the stimulus window and amplitude."""

    t: np.ndarray  # [T] ms
    v: np.ndarray  # [T] mV
    amp: float  # nA
    start: float  # ms, stimulus onset (0 for the rest sweep)
    end: float  # ms, stimulus offset


class Simulator(Protocol):
    """A cell held at its settled state; every sweep starts from that state."""

    def rest(self, duration_ms: float) -> Trace:
        """No input for ``duration_ms``."""

    def step(self, amp_nA: float, duration_ms: float, first_spike: bool = False) -> Trace:
        """BASE_MS baseline, a ``duration_ms`` step of ``amp_nA``, TAIL_MS after. With
        ``first_spike`` it may stop as soon as the stimulus window holds a spike (the
        rheobase search asks only whether a step fires); the trace then ends there."""


@dataclasses.dataclass
class Characterisation:
    """What the protocol measured on one cell.

    ``outcome``: ``ok``; ``no_spikes`` (no spike up to RHEO_MAX_NA);
    ``spontaneous`` (fires with no input: no rheobase, the rest sweep is the
    suprathreshold record); ``block`` (the 1.5x rheobase step ends in
    depolarisation block, ``features.blocked``). Sweeps are keyed ``rest``, ``probe``, ``sag``,
    ``x1.0``, ``x1.5``, ... (multiples of rheobase).
    """

    outcome: str
    rheobase_nA: Optional[float]
    sweeps: Dict[str, Trace]
    fi: List[Tuple[float, float]]  # (amp nA, spikes per second of step)
    search: List[Tuple[float, int]]  # every rheobase trial (amp nA, spike count)
    dt_ms: float = DT_MS


def sweep_name(multiple: float) -> str:
    return f"x{multiple:.1f}"


def _sag_amplitude(probe: Trace) -> float:
    """Size the sag step from the probe's input resistance (clamped to SAG_BOUNDS_NA)."""
    rin = features.input_resistance(probe)  # MOhm
    if rin is None or not np.isfinite(rin) or rin <= 0:
        return SAG_BOUNDS_NA[0] / 10
    amp = SAG_TARGET_MV / rin  # mV / MOhm = nA
    return float(np.clip(amp, *SAG_BOUNDS_NA))


def find_rheobase(sim: Simulator) -> Tuple[Optional[float], List[Tuple[float, int]],
                                           Optional[Trace]]:
    """Smallest 1 s step that fires, to RHEO_REL_TOL -> (rheobase, trials, its sweep).

    Doubles from RHEO_START_NA until a step fires (None if none does up to
    RHEO_MAX_NA), then bisects between the last silent and first firing step.
    Trials stop at their first spike (``Simulator.step(first_spike=True)``), so a
    trial's spike count is what it saw until then: 0 or more means silent or fired.
    The sweep at the rheobase is then run whole (same state, same result).
    """
    trials: List[Tuple[float, int]] = []

    def fires(amp: float) -> Optional[Trace]:
        tr = sim.step(amp, STEP_MS, first_spike=True)
        n = features.spike_count(tr)
        trials.append((amp, n))
        return tr if n > 0 else None

    lo, hi, hi_trace = 0.0, RHEO_START_NA, None
    while hi <= RHEO_MAX_NA * (1 + 1e-9):
        hi_trace = fires(hi)
        if hi_trace is not None:
            break
        lo, hi = hi, hi * 2
    if hi_trace is None:
        return None, trials, None
    while hi - lo > max(RHEO_REL_TOL * hi, RHEO_ABS_TOL_NA):
        mid = 0.5 * (lo + hi)
        tr = fires(mid)
        if tr is None:
            lo = mid
        else:
            hi, hi_trace = mid, tr
    if hi_trace.t[-1] < BASE_MS + STEP_MS + TAIL_MS - 2 * (hi_trace.t[1] - hi_trace.t[0]):
        hi_trace = sim.step(hi, STEP_MS)  # the trial stopped at its first spike
    return hi, trials, hi_trace


def characterise(sim: Simulator, dt_ms: float = DT_MS) -> Characterisation:
    """Run the whole protocol on a settled cell."""
    sweeps: Dict[str, Trace] = {"rest": sim.rest(REST_MS)}
    sweeps["probe"] = sim.step(PROBE_NA, SAG_STEP_MS)
    sweeps["sag"] = sim.step(_sag_amplitude(sweeps["probe"]), SAG_STEP_MS)
    if features.spike_count(sweeps["rest"]) > 0:
        return Characterisation("spontaneous", None, sweeps, [], [], dt_ms)
    rheobase, search, at_rheobase = find_rheobase(sim)
    if rheobase is None:
        return Characterisation("no_spikes", None, sweeps, [], search, dt_ms)
    fi = []
    for m in FI_MULTIPLES:
        tr = at_rheobase if m == 1.0 else sim.step(m * rheobase, STEP_MS)
        sweeps[sweep_name(m)] = tr
        fi.append((tr.amp, features.spike_count(tr) / (STEP_MS / 1000.0)))
    outcome = "block" if features.blocked(sweeps[sweep_name(1.5)]) else "ok"
    return Characterisation(outcome, rheobase, sweeps, fi, search, dt_ms)


def fi_slope(fi: List[Tuple[float, float]]) -> Optional[float]:
    """Least-squares slope of the F-I curve, Hz/nA (None with fewer than 2 points)."""
    if len(fi) < 2:
        return None
    amp, rate = np.asarray(fi, dtype=np.float64).T
    return float(np.polyfit(amp, rate, 1)[0])
