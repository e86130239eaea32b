"""The e-features a model learns and the ground truth is measured on: one definition.

Each target is a stored e-feature (``run_cell.summary_features`` key) and a
transform that makes it roughly symmetric across the corpus: rheobase, rates,
widths and resistances span decades between cell types, so they are learnt
and regressed in log10. A target is missing (masked, never imputed) where the
protocol does not define it: a spontaneously active cell has no rheobase and
its rate comes from the rest sweep, which is a different quantity, so the
1.5x-rheobase targets read that step only and the spontaneous rate (rest sweep,
no input) is a target of its own, defined only for spontaneously active cells
(the pyloric pacemakers): what their variants change is scored against it.
The subthreshold targets (input resistance, sag) assume a quiet membrane: on a
cell that fires at rest the hyperpolarising steps ride on spikes and bursts, and
their "resistance" is noise (from -2.1 to +3.6 GOhm across the 53 such rows of
the corpus with two variants per cell), so they are undefined there too.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple, Optional, Tuple

import numpy as np


class Target(NamedTuple):
    name: str  # the name tables and figures show
    key: str  # the e-feature it reads
    transform: str  # "log10" (positive only) or "identity"
    quiet: bool = False  # subthreshold: defined only on a cell that is silent at rest


EFEATURE_TARGETS: Tuple[Target, ...] = (
    Target("log_rheobase", "rheobase_nA", "log10"),
    Target("log_rate_1.5x", "x1.5/mean_frequency", "log10"),
    Target("adaptation_1.5x", "x1.5/adaptation_index2", "identity"),
    Target("log_ap_width_1.5x", "x1.5/AP_width", "log10"),
    Target("log_input_resistance", "ohmic_input_resistance", "log10", quiet=True),
    Target("sag_ratio", "sag_ratio1", "identity", quiet=True),
    Target("log_fi_slope", "fi_slope_hz_per_nA", "log10"),
    Target("log_rate_rest", "rest/mean_frequency", "log10"),
)
TARGET_NAMES: Tuple[str, ...] = tuple(t.name for t in EFEATURE_TARGETS)
REST_SPIKES = "rest/spike_count"  # stored only for a spontaneously active cell


def spontaneous(efeatures: Mapping[str, Optional[float]]) -> bool:
    """Whether the cell fired in the rest sweep (no input)."""
    n = (efeatures or {}).get(REST_SPIKES)
    return n is not None and math.isfinite(float(n)) and n > 0


def target_value(efeatures: Mapping[str, Optional[float]], target: Target) -> Optional[float]:
    """One target of a cell, or None where it is undefined (missing, <= 0 for log10, or
    a subthreshold target of a spontaneously active cell)."""
    if target.quiet and spontaneous(efeatures):
        return None
    v = (efeatures or {}).get(target.key)
    if v is None or not math.isfinite(float(v)):
        return None
    if target.transform == "log10":
        return math.log10(v) if v > 0 else None
    return float(v)


def target_vector(efeatures: Mapping[str, Optional[float]]) -> Tuple[np.ndarray, np.ndarray]:
    """([T] float32 values, [T] bool defined) of every ``EFEATURE_TARGETS`` entry."""
    values = [target_value(efeatures, t) for t in EFEATURE_TARGETS]
    mask = np.array([v is not None for v in values], bool)
    return np.array([0.0 if v is None else v for v in values], np.float32), mask
