"""Firing class (e-type) of a characterised cell, by documented rules on its features.

Classes follow the Petilla terminology (Ascoli et al. 2008) for the steady
response to a suprathreshold step; the rules are tested in order, the first
that holds names the class:

1. ``non-spiking``: no spike on any step up to RHEO_MAX_NA (protocol outcome ``no_spikes``).
2. ``depolarisation block``: on the 1.5x rheobase step firing stops while the
   membrane stays depolarised (``features.blocked``; protocol outcome ``block``).
3. ``transient``: fewer than MIN_SPIKES spikes even at 3x rheobase (fires at
   onset only; Petilla's "transient" discharge).
4. ``bursting``: a burst is a run of >= 3 spikes at ISIs <= BURST_ISI_MS (an
   instantaneous rate of 100 Hz or more, the intraburst rates of intrinsically
   bursting neocortical cells, Connors & Gutnick 1990) followed within
   BURST_PAUSE_WITHIN ISIs by a pause >= BURST_GAP_RATIO x its mean ISI. One
   burst at the start of the step (IB) or repeated bursts (pyloric pacemakers)
   both count.
5. ``delayed``: first spike later than DELAY_MS after step onset and later than
   DELAY_ISI_RATIO x the mean ISI after it (the Petilla "delayed" onset; the
   2-ISI form is the Hippocampome.org delay criterion, Komendantov et al. 2019).
6. ``stuttering/irregular``: ISI CV > IRREGULAR_CV (eFEL ``ISI_CV``).
7. ``continuous adapting`` when eFEL ``adaptation_index2`` > ADAPTING_INDEX, else
   ``continuous non-adapting`` (Druckmann et al. 2013 use the same normalised ISI
   difference for adaptation).

Rules read the 1.5x rheobase step ("x1.5"), or the 3x step when 1.5x has fewer
than MIN_SPIKES spikes (too few ISIs to judge), or the rest sweep of a
spontaneously active cell (which has no onset, so is never ``delayed``). The numeric thresholds are ours (the sources above
name the patterns, not these cut-offs); changing one is a new RULES_VERSION.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from bnnsim.ephys import features
from bnnsim.ephys.protocol import Characterisation, sweep_name

RULES_VERSION = "etype-2"  # 2: no "delayed" for spontaneous activity (no onset)
ETYPES = ("non-spiking", "transient", "continuous non-adapting", "continuous adapting",
          "bursting", "stuttering/irregular", "delayed", "depolarisation block")

BURST_ISI_MS = 10.0
BURST_MIN_ISIS = 2  # a burst has at least 3 spikes
BURST_GAP_RATIO = 5.0
BURST_PAUSE_WITHIN = 3
DELAY_MS = 100.0
DELAY_ISI_RATIO = 2.0
IRREGULAR_CV = 0.5
ADAPTING_INDEX = 0.02
MIN_SPIKES = 4


def judged_sweep(ch: Characterisation) -> Optional[str]:
    """The sweep the rules read (see module docstring), or None for a silent cell."""
    if ch.outcome == "spontaneous":
        return "rest"
    if ch.outcome == "no_spikes":
        return None
    for m in (1.5, 3.0):
        name = sweep_name(m)
        if name in ch.sweeps and features.spike_count(ch.sweeps[name]) >= MIN_SPIKES:
            return name
    return sweep_name(3.0) if sweep_name(3.0) in ch.sweeps else sweep_name(1.5)


def has_burst(isi: np.ndarray) -> bool:
    """[S-1] ISIs (ms) -> whether a burst (>= BURST_MIN_ISIS consecutive ISIs <=
    BURST_ISI_MS) is followed, within BURST_PAUSE_WITHIN ISIs, by a pause >=
    BURST_GAP_RATIO x the burst's mean ISI."""
    i, n = 0, len(isi)
    while i < n:
        if isi[i] > BURST_ISI_MS:
            i += 1
            continue
        j = i
        while j < n and isi[j] <= BURST_ISI_MS:
            j += 1
        after = isi[j:j + BURST_PAUSE_WITHIN]
        if j - i >= BURST_MIN_ISIS and len(after) and \
                after.max() >= BURST_GAP_RATIO * isi[i:j].mean():
            return True
        i = j
    return False


def classify(ch: Characterisation) -> Dict[str, object]:
    """-> {"etype": class, "sweep": the sweep judged, "rule": why} (see module docstring)."""
    name = judged_sweep(ch)
    if name is None:
        return {"etype": "non-spiking", "sweep": None, "rule": "no spike up to the max step"}
    tr = ch.sweeps[name]
    if ch.outcome == "block":
        return {"etype": "depolarisation block", "sweep": sweep_name(1.5),
                "rule": "silent and depolarised for the end of the 1.5x step"}
    isi = features.isis(tr)
    if ch.outcome != "spontaneous" and len(isi) + 1 < MIN_SPIKES:
        return {"etype": "transient", "sweep": name,
                "rule": f"{len(isi) + 1} spikes (< {MIN_SPIKES}) even at 3x rheobase"}
    if has_burst(isi):
        return {"etype": "bursting", "sweep": name,
                "rule": f">= 3 spikes at ISI <= {BURST_ISI_MS} ms, then a pause "
                        f">= {BURST_GAP_RATIO}x their ISI"}
    t = features.spike_times(tr, window=True)
    if len(t) and ch.outcome != "spontaneous":  # with no step there is no onset to delay
        latency = t[0] - tr.start
        mean_isi = float(np.mean(isi)) if len(isi) else np.inf
        if latency > DELAY_MS and (not len(isi) or latency > DELAY_ISI_RATIO * mean_isi):
            return {"etype": "delayed", "sweep": name,
                    "rule": f"first spike at {latency:.0f} ms > {DELAY_MS} ms and "
                            f"> {DELAY_ISI_RATIO} mean ISIs"}
    f = features.efel_features(tr, ["ISI_CV", "adaptation_index2"])
    if f["ISI_CV"] is not None and f["ISI_CV"] > IRREGULAR_CV:
        return {"etype": "stuttering/irregular", "sweep": name,
                "rule": f"ISI CV {f['ISI_CV']:.2f} > {IRREGULAR_CV}"}
    ai = f["adaptation_index2"]
    if ai is not None and ai > ADAPTING_INDEX:
        return {"etype": "continuous adapting", "sweep": name,
                "rule": f"adaptation_index2 {ai:.3f} > {ADAPTING_INDEX}"}
    return {"etype": "continuous non-adapting", "sweep": name,
            "rule": f"adaptation_index2 {ai if ai is None else round(ai, 3)} <= {ADAPTING_INDEX}"}


# The Petilla names (Ascoli et al. 2008) as Blue Brain's e-types write them (Markram et al.
# 2015): an onset letter, c(ontinuous) / b(urst) / d(elayed), then the steady state, AC
# (accommodating; ACint on interneurons) / NAC (non-accommodating) / STUT (stuttering) / IR
# (irregular); cADpyr is the continuous accommodating pyramidal type. Our classes are one axis: the rules above
# name a burst or a delay at onset before they look at the steady state, so each Petilla
# name has one class of ours it corresponds to.
PETILLA_ONSET = {"c": "continuous", "b": "burst", "d": "delayed"}
PETILLA_STEADY = {"AC": "accommodating", "ACint": "accommodating", "NAC": "non-accommodating", "STUT": "stuttering",
                  "IR": "irregular", "ADpyr": "accommodating"}
_STEADY_CLASS = {"accommodating": "continuous adapting",
                 "non-accommodating": "continuous non-adapting",
                 "stuttering": "stuttering/irregular", "irregular": "stuttering/irregular"}


def petilla(bbp_etype: str) -> tuple:
    """'bNAC' -> ('burst', 'non-accommodating'); ValueError for a name outside the scheme."""
    onset, steady = bbp_etype[:1], bbp_etype[1:]
    if onset not in PETILLA_ONSET or steady not in PETILLA_STEADY:
        raise ValueError(f"{bbp_etype!r} is not a Petilla e-type (onset {sorted(PETILLA_ONSET)} "
                         f"x steady state {sorted(PETILLA_STEADY)})")
    return PETILLA_ONSET[onset], PETILLA_STEADY[steady]


def expected_class(bbp_etype: str) -> str:
    """The class of ``ETYPES`` our rules should give a cell of a declared Petilla e-type."""
    onset, steady = petilla(bbp_etype)
    if onset == "burst":
        return "bursting"
    if onset == "delayed":
        return "delayed"
    return _STEADY_CLASS[steady]
