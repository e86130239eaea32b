"""Synthetic cells and sweeps with known answers, for the protocol and the e-type rules."""

from __future__ import annotations

import numpy as np

from bnnsim.ephys import protocol

DT = 0.025
V_REST = -70.0


def spike_trace(times, amp=0.1, start=protocol.BASE_MS, end=None, total=None, dt=DT,
                v_base=V_REST, v_plateau=None) -> protocol.Trace:
    """A sweep with a 1 ms triangular action potential (peak +30 mV) at each time (ms)."""
    end = start + protocol.STEP_MS if end is None else end
    total = end + protocol.TAIL_MS if total is None else total
    t = np.arange(0.0, total, dt)
    v = np.full_like(t, v_base)
    if v_plateau is not None:
        v[(t >= start) & (t < end)] = v_plateau
    for s in times:
        w = np.abs(t - s) < 0.5
        v[w] = np.maximum(v[w], 30.0 - 2 * (30.0 - v_base) * np.abs(t[w] - s))
    return protocol.Trace(t, v, float(amp), float(start), float(end))


class SyntheticCell:
    """A protocol.Simulator with a known answer: passive below ``rheobase`` (input
    resistance ``r_in`` MOhm, tau 10 ms; depolarisation saturates at -30 mV), regular firing at ``gain * (I - rheobase)``
    Hz (at least one spike) from ``rheobase`` on; ``rest_rate`` Hz with no input."""

    def __init__(self, rheobase=0.3, gain=100.0, r_in=100.0, rest_rate=0.0, fires=True):
        self.rheobase, self.gain, self.r_in = rheobase, gain, r_in
        self.rest_rate, self.fires = rest_rate, fires
        self.steps = []

    def _passive(self, amp, start, end, total):
        t = np.arange(0.0, total, DT)
        dv = self.r_in * amp  # MOhm * nA = mV
        if dv > 0:  # depolarisation saturates below the spike threshold (-20 mV)
            dv = 40.0 * np.tanh(dv / 40.0)
        on = (t >= start) & (t < end)
        v = np.full_like(t, V_REST)
        v[on] += dv * (1 - np.exp(-(t[on] - start) / 10.0))
        off = t >= end
        v[off] += dv * (1 - np.exp(-(end - start) / 10.0)) * np.exp(-(t[off] - end) / 10.0)
        return t, v

    def rest(self, duration_ms):
        if self.rest_rate > 0:
            times = np.arange(5.0, duration_ms, 1000.0 / self.rest_rate)
            return spike_trace(times, 0.0, 0.0, duration_ms, duration_ms)
        t, v = self._passive(0.0, 0.0, duration_ms, duration_ms)
        return protocol.Trace(t, v, 0.0, 0.0, float(duration_ms))

    def step(self, amp_nA, duration_ms, first_spike=False):
        """With ``first_spike`` a firing step ends 2 ms after its first spike, as
        NEURON's does (``nrn.NeuronCell``)."""
        self.steps.append(amp_nA)
        start = protocol.BASE_MS
        end, total = start + duration_ms, start + duration_ms + protocol.TAIL_MS
        if self.fires and amp_nA >= self.rheobase:
            rate = max(self.gain * (amp_nA - self.rheobase), 1.0)
            times = start + 5.0 + np.arange(0, duration_ms - 10.0, 1000.0 / rate)
            tr = spike_trace(times, amp_nA, start, end, total)
            if first_spike:
                keep = tr.t <= times[0] + 2.0
                tr = tr._replace(t=tr.t[keep], v=tr.v[keep])
            return tr
        t, v = self._passive(amp_nA, start, end, total)
        return protocol.Trace(t, v, float(amp_nA), start, end)
