"""Forward-Euler simulation of point neurons with pulse inputs, jit-compiled.

Step order follows jLEMS (jNeuroML's reference simulator): derivatives from
the current state and the input current set at the end of the previous step,
Euler update, time advances, then the spike/regime conditions are tested on
the new state and their assignments applied. All neurons of all families
step together; each family's update is selected with ``jnp.where``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from bnnsim.cells import FAMILY_INDEX, CellParams

IAF, IAF_REF = FAMILY_INDEX["iafCell"], FAMILY_INDEX["iafRefCell"]
IZH, ADEX = FAMILY_INDEX["izhikevich2007Cell"], FAMILY_INDEX["adExIaFCell"]
_MAX_EXP = 80.0  # AdEx exp argument cap: exp(80) is finite in float32; v is far past threshold


class PulseInputs(NamedTuple):
    """Square current pulses, up to P per neuron: [N, P] arrays (amplitude 0 = none)."""

    delay: np.ndarray  # ms
    duration: np.ndarray  # ms
    amplitude: np.ndarray  # pA


class SimResult(NamedTuple):
    spikes: np.ndarray  # [T, N] bool, spike detected in step t (from t*dt to (t+1)*dt)
    v: np.ndarray  # [T, N] mV after each step (after resets)
    dt: float  # ms

    def spike_times(self, neuron: int) -> np.ndarray:
        """Spike times (ms) of one neuron, stamped like jLEMS: the start of the step."""
        return np.flatnonzero(self.spikes[:, neuron]) * self.dt


def pulse_inputs(pulses: Sequence[Sequence[dict]]) -> PulseInputs:
    """Per neuron, a list of ``{"delay", "duration", "amplitude"}`` (ms, ms, pA)."""
    width = max([len(p) for p in pulses] + [1])
    arr = {k: np.zeros((len(pulses), width), np.float32) for k in PulseInputs._fields}
    for i, plist in enumerate(pulses):
        for j, p in enumerate(plist):
            for k in PulseInputs._fields:
                arr[k][i, j] = float(p[k])
    return PulseInputs(**arr)


class _State(NamedTuple):
    v: jnp.ndarray  # [N] mV
    u: jnp.ndarray  # [N] pA: Izhikevich u or AdEx w
    last_spike: jnp.ndarray  # [N] ms
    refractory: jnp.ndarray  # [N] bool
    i_in: jnp.ndarray  # [N] pA, input current set at the end of the previous step


def _input_current(inputs: PulseInputs, t) -> jnp.ndarray:
    on = (t >= inputs.delay) & (t < inputs.delay + inputs.duration)
    return jnp.sum(jnp.where(on, inputs.amplitude, 0.0), axis=-1)  # [N]


def _step(p: CellParams, inputs: PulseInputs, dt: float, state: _State, t):
    """One Euler step from time t to t + dt -> (new state, spiked [N])."""
    v, u, i = state.v, state.u, state.i_in
    fam = p.family
    # Derivatives (mV/ms and pA/ms) of every family, then pick by family.
    dv_iaf = (p.g * (p.E - v) + i) / p.C
    dv_izh = (p.k * (v - p.E) * (v - p.vt) - u + i) / p.C
    du_izh = p.a * (p.b * (v - p.E) - u)
    delT = jnp.where(fam == ADEX, p.delT, 1.0)
    expo = jnp.exp(jnp.minimum((v - p.vt) / delT, _MAX_EXP))
    dv_adex = (-p.g * (v - p.E) + p.g * p.delT * expo - u + i) / p.C
    du_adex = (p.a * (v - p.E) - u) / jnp.where(fam == ADEX, p.tauw, 1.0)
    dv = jnp.select([fam == IZH, fam == ADEX], [dv_izh, dv_adex], dv_iaf)
    du = jnp.select([fam == IZH, fam == ADEX], [du_izh, du_adex], 0.0)
    dv = jnp.where(state.refractory, 0.0, dv)  # v is held at reset while refractory
    v, u, t = v + dt * dv, u + dt * du, t + dt
    # Conditions on the new state.
    spiked = ~state.refractory & (v > p.thresh)
    to_refractory = spiked & ((fam == IAF_REF) | (fam == ADEX))
    v = jnp.where(spiked, p.reset, v)
    u = u + jnp.where(spiked & (fam == IZH), p.d, 0.0) + jnp.where(spiked & (fam == ADEX), p.b, 0.0)
    last = jnp.where(to_refractory, t, state.last_spike)
    refractory = (state.refractory & ~(t > last + p.refract)) | to_refractory
    new = _State(v=v, u=u, last_spike=last, refractory=refractory,
                 i_in=_input_current(inputs, t))
    return new, spiked


@functools.partial(jax.jit, static_argnames=("steps", "dt"))
def _run(p: CellParams, inputs: PulseInputs, dt: float, steps: int):
    n = p.family.shape[0]
    init = _State(v=p.v0, u=jnp.zeros(n), last_spike=jnp.full(n, -1e9),
                  refractory=jnp.zeros(n, bool), i_in=_input_current(inputs, 0.0))

    def body(state, k):
        new, spiked = _step(p, inputs, dt, state, k * dt)
        return new, (spiked, new.v)

    _, (spikes, v) = jax.lax.scan(body, init, jnp.arange(steps, dtype=jnp.float32))
    return spikes, v


def simulate(params: CellParams, inputs: PulseInputs, duration: float,
             dt: float = 0.025) -> SimResult:
    """Simulate ``duration`` ms in steps of ``dt`` ms; returns the spike raster and v."""
    if dt <= 0 or duration <= 0:
        raise ValueError(f"duration ({duration}) and dt ({dt}) must be positive")
    steps = int(round(duration / dt))
    p = jax.tree.map(jnp.asarray, params)
    spikes, v = _run(p, jax.tree.map(jnp.asarray, inputs), float(dt), steps)
    return SimResult(spikes=np.asarray(spikes), v=np.asarray(v), dt=float(dt))
