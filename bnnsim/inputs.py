"""External drive as arrays: square current pulses and predetermined spike trains."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np


class PulseInputs(NamedTuple):
    """Square current pulses, up to P per neuron: [N, P] arrays (amplitude 0 = none)."""

    delay: np.ndarray  # ms
    duration: np.ndarray  # ms
    amplitude: np.ndarray  # pA


def pulse_inputs(pulses: Sequence[Sequence[dict]]) -> PulseInputs:
    """Per neuron, a list of ``{"delay", "duration", "amplitude"}`` (ms, ms, pA)."""
    width = max([len(p) for p in pulses] + [1])
    arr = {k: np.zeros((len(pulses), width), np.float32) for k in PulseInputs._fields}
    for i, plist in enumerate(pulses):
        for j, p in enumerate(plist):
            for k in PulseInputs._fields:
                arr[k][i, j] = float(p[k])
    return PulseInputs(**arr)


class SpikeSources(NamedTuple):
    """Predetermined spike trains (NeuroML spikeArray): [K, M] times in ms, +inf padded.

    Source k is presynaptic unit N + k for synapses (after the N neurons).
    """

    times: np.ndarray


def spike_sources(trains: Sequence[Sequence[float]]) -> SpikeSources:
    """Per source, its spike times (ms), any order."""
    width = max([len(t) for t in trains] + [1])
    times = np.full((len(trains), width), np.inf, np.float32)
    for k, train in enumerate(trains):
        times[k, :len(train)] = np.sort(np.asarray(train, np.float32))
    return SpikeSources(times)


def input_current(inputs: PulseInputs, t) -> jnp.ndarray:
    """[N] pA of the pulses that are on at time t (inside jit)."""
    on = (t >= inputs.delay) & (t < inputs.delay + inputs.duration)
    return jnp.sum(jnp.where(on, inputs.amplitude, 0.0), axis=-1)  # [N]


def source_steps(sources: SpikeSources, dt: float) -> np.ndarray:
    """A source spikes in the first step whose end reaches its time (integer, so no
    spike is lost to float rounding of t)."""
    t = np.asarray(sources.times, np.float64)
    return np.where(np.isfinite(t), np.ceil(t / dt - 1e-6) - 1, -1).astype(np.int32)
