"""Spike-train agreement, the criterion used against jNeuroML."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class Agreement(NamedTuple):
    count_ref: int
    count_ours: int
    count_error: float  # |ours - ref| / max(ref, 1)
    matched: float  # fraction of reference spikes with an unused spike of ours within tol


def match_spikes(ref: Sequence[float], ours: Sequence[float], tol: float = 2.0) -> Agreement:
    """Greedy one-to-one matching in time order; ``tol`` in the times' unit (ms)."""
    ref, ours = np.sort(np.asarray(ref, float)), np.sort(np.asarray(ours, float))
    used = np.zeros(len(ours), bool)
    hits = 0
    for t in ref:
        free = np.flatnonzero(~used & (np.abs(ours - t) <= tol))
        if free.size:
            used[free[np.argmin(np.abs(ours[free] - t))]] = True
            hits += 1
    n = len(ref)
    return Agreement(n, len(ours), abs(len(ours) - n) / max(n, 1), hits / n if n else
                     float(len(ours) == 0))
