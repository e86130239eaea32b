"""Forward-Euler simulation of point-neuron networks, jit-compiled.

Step order follows jLEMS (jNeuroML's reference simulator): derivatives from
the current state (synaptic and gap currents from the current synapse states
and potentials, input current set at the end of the previous step), Euler
update, time advances, then the spike/regime conditions are tested on the new
state and their assignments applied; synapses then step and receive the events
that have arrived. All neurons of all families step together; each family's
update is selected with ``jnp.where``. Rows are compartments: a point neuron
is one row, a multi-compartment cell one ``hhCompartment`` row per segment
(``bnnsim.morphology``), its axial coupling passed as gap conductances.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bnnsim.cells import FAMILY_INDEX, CellParams, cell_params
from bnnsim.inputs import (
    PulseInputs,
    SpikeSources,
    input_current,
    source_steps,
    spike_sources,
)
from bnnsim.synapses import (
    ALPHA,
    EXP1,
    EXP2,
    GapParams,
    SynapseParams,
    gap_params,
    synapse_params,
)

IAF, IAF_REF = FAMILY_INDEX["iafCell"], FAMILY_INDEX["iafRefCell"]
IZH, ADEX = FAMILY_INDEX["izhikevich2007Cell"], FAMILY_INDEX["adExIaFCell"]
HH = FAMILY_INDEX["hhCompartment"]
_MAX_EXP = 80.0  # AdEx exp argument cap: exp(80) is finite in float32; v is far past threshold


class SimResult(NamedTuple):
    spikes: np.ndarray  # [T, N] bool, spike detected in step t (from t*dt to (t+1)*dt)
    v: np.ndarray  # [T, N] mV after each step (after resets)
    dt: float  # ms
    g: np.ndarray | None = None  # [T, S] nS synaptic conductances, if recorded
    weights: np.ndarray | None = None  # [S] connection weights at the end (STDP)

    def spike_times(self, neuron: int) -> np.ndarray:
        """Spike times (ms) of one neuron, stamped like jLEMS: the start of the step."""
        return np.flatnonzero(self.spikes[:, neuron]) * self.dt


class Network(NamedTuple):
    """Everything one simulation needs, as arrays."""

    cells: CellParams
    inputs: PulseInputs
    synapses: SynapseParams
    gaps: GapParams
    source_steps: np.ndarray  # [K, M] int32, step in which each source spike fires (-1: none)


class _State(NamedTuple):
    v: jnp.ndarray  # [N] mV
    u: jnp.ndarray  # [N] pA: Izhikevich u or AdEx w
    gates: jnp.ndarray  # [3, N] HH m, h, n (steady state at v0; unused by other families)
    last_spike: jnp.ndarray  # [N] ms
    refractory: jnp.ndarray  # [N] bool
    i_in: jnp.ndarray  # [N] pA, input current set at the end of the previous step
    x1: jnp.ndarray  # [S] expTwo A (1) or alpha A (nS); unused for expOne
    x2: jnp.ndarray  # [S] expOne g (nS), expTwo B (1) or alpha g (nS)
    R: jnp.ndarray  # [S] STP resources
    U: jnp.ndarray  # [S] STP release probability
    w: jnp.ndarray  # [S] connection weight (changes under STDP)
    x_pre: jnp.ndarray  # [S] STDP presynaptic trace
    y_post: jnp.ndarray  # [S] STDP postsynaptic trace
    history: jnp.ndarray  # [L, N + K] bool, spikes of neurons and sources, last L steps


def _conductance(syn: SynapseParams, state: _State) -> jnp.ndarray:
    return jnp.where(syn.kind == EXP2, syn.gbase * (state.x2 - state.x1), state.x2)  # [S] nS


def _synaptic_current(net: Network, state: _State) -> jnp.ndarray:
    """[N] pA from every synapse instance and gap junction, at the current state."""
    syn, gap, v = net.synapses, net.gaps, state.v
    n = v.shape[0]
    g = _conductance(syn, state)  # [S] nS
    i_syn = jax.ops.segment_sum(g * (syn.erev - v[syn.post]), syn.post, n)
    flow = gap.weight * gap.conductance * (v[gap.b] - v[gap.a])  # [G] pA into a
    return i_syn + jax.ops.segment_sum(flow, gap.a, n) - jax.ops.segment_sum(flow, gap.b, n)


def _exp_linear(x):
    """x / (1 - exp(-x)), 1 at x = 0 (NeuroML HHExpLinearRate)."""
    small = jnp.abs(x) < 1e-6
    safe = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 + x / 2, safe / -jnp.expm1(-safe))


def hh_rates(v):
    """[3, N] opening and closing rates (1/ms) of the HH squid gates m, h, n at v (mV):
    the rate forms and constants of NeuroML's NML2_SingleCompHHCell channels."""
    alpha = jnp.stack([1.0 * _exp_linear((v + 40.0) / 10.0),
                       0.07 * jnp.exp((v + 65.0) / -20.0),
                       0.1 * _exp_linear((v + 55.0) / 10.0)])
    beta = jnp.stack([4.0 * jnp.exp((v + 65.0) / -18.0),
                      1.0 / (1.0 + jnp.exp(-(v + 35.0) / 10.0)),
                      0.125 * jnp.exp((v + 65.0) / -80.0)])
    return alpha, beta


def hh_steady_state(v):
    """[3, N] gate values at rest: alpha / (alpha + beta) (jLEMS starts gates there)."""
    alpha, beta = hh_rates(v)
    return alpha / (alpha + beta)


def _cell_step(p: CellParams, state: _State, i, dt: float, t):
    """One Euler step of every neuron -> (v, u, gates, last_spike, refractory, spiked)."""
    v, u, fam = state.v, state.u, p.family
    # Derivatives (mV/ms and pA/ms) of every family, then pick by family.
    dv_iaf = (p.g * (p.E - v) + i) / p.C
    m, h, n = state.gates
    i_ion = p.gna * m ** 3 * h * (p.ena - v) + p.gk * n ** 4 * (p.ek - v)
    dv_hh = dv_iaf + i_ion / p.C
    alpha, beta = hh_rates(v)
    dgates = alpha * (1.0 - state.gates) - beta * state.gates
    dv_izh = (p.k * (v - p.E) * (v - p.vt) - u + i) / p.C
    du_izh = p.a * (p.b * (v - p.E) - u)
    delT = jnp.where(fam == ADEX, p.delT, 1.0)
    expo = jnp.exp(jnp.minimum((v - p.vt) / delT, _MAX_EXP))
    dv_adex = (-p.g * (v - p.E) + p.g * p.delT * expo - u + i) / p.C
    du_adex = (p.a * (v - p.E) - u) / jnp.where(fam == ADEX, p.tauw, 1.0)
    hh = fam == HH
    dv = jnp.select([fam == IZH, fam == ADEX, hh], [dv_izh, dv_adex, dv_hh], dv_iaf)
    du = jnp.select([fam == IZH, fam == ADEX], [du_izh, du_adex], 0.0)
    # v is held at reset while refractory; for HH "refractory" means "above threshold"
    dv = jnp.where(state.refractory & ~hh, 0.0, dv)
    v, u, gates, t = v + dt * dv, u + dt * du, state.gates + dt * dgates, t + dt
    # Conditions on the new state. HH (jLEMS): a spike when v first exceeds spikeThresh.
    spiked = ~state.refractory & (v > p.thresh)
    to_refractory = spiked & ((fam == IAF_REF) | (fam == ADEX))
    v = jnp.where(spiked & ~hh, p.reset, v)
    u = u + jnp.where(spiked & (fam == IZH), p.d, 0.0) + jnp.where(spiked & (fam == ADEX), p.b, 0.0)
    last = jnp.where(to_refractory, t, state.last_spike)
    refractory = (state.refractory & ~(t > last + p.refract)) | to_refractory
    refractory = jnp.where(hh, v > p.thresh, refractory)
    return v, u, gates, last, refractory, spiked


def _stdp_step(syn: SynapseParams, state: _State, arrived, post_spiked, dt: float):
    """Pair-based STDP: traces decay, pre events depress, post spikes potentiate."""
    x = state.x_pre * (1.0 - dt / syn.tau_plus)
    y = state.y_post * (1.0 - dt / syn.tau_minus)
    w = state.w - jnp.where(arrived & syn.stdp, syn.a_minus * y, 0.0)
    x = x + arrived.astype(x.dtype)
    w = w + jnp.where(post_spiked & syn.stdp, syn.a_plus * x, 0.0)
    y = y + post_spiked.astype(y.dtype)
    return jnp.where(syn.stdp, jnp.clip(w, 0.0, syn.w_max), state.w), x, y


def _synapse_step(syn: SynapseParams, state: _State, arrived, dt: float):
    """Euler step of synapse and STP states, then the events that arrived -> x1, x2, R, U."""
    x1, x2, R, U = state.x1, state.x2, state.R, state.U
    alpha = syn.kind == ALPHA
    dx1 = -x1 / jnp.where(alpha, syn.tau_decay, syn.tau_rise)
    dx2 = jnp.where(alpha, (np.e * x1 - x2), -x2) / syn.tau_decay
    dR = (1.0 - R) / syn.tau_rec
    dU = jnp.where(syn.stp == 2, (syn.u0 - U) / syn.tau_fac, 0.0)
    x1, x2, R, U = x1 + dt * dx1, x2 + dt * dx2, R + dt * dR, U + dt * dU
    # Events: the release factor R*U (1 without STP) scales each event.
    release = jnp.where(syn.stp > 0, R * U, 1.0)
    amount = jnp.where(arrived, state.w * release, 0.0)  # [S]
    x1 = x1 + jnp.select([syn.kind == EXP2, alpha], [amount * syn.factor, amount * syn.gbase], 0.0)
    x2 = x2 + jnp.where(syn.kind == EXP2, amount * syn.factor,
                        jnp.where(syn.kind == EXP1, amount * syn.gbase, 0.0))
    R = jnp.where(arrived & (syn.stp > 0), R * (1.0 - U), R)
    U = jnp.where(arrived & (syn.stp == 2), U + syn.u0 * (1.0 - U), U)
    return x1, x2, R, U


def _step(net: Network, lag: jnp.ndarray, dt: float, state: _State, k):
    """One step from t = k*dt -> (new state, spiked [N])."""
    t = k * dt
    i = state.i_in + _synaptic_current(net, state)
    v, u, gates, last, refractory, spiked = _cell_step(net.cells, state, i, dt, t)
    src = jnp.any(net.source_steps == k.astype(jnp.int32), axis=-1)  # [K]
    size = state.history.shape[0]
    slot = k.astype(jnp.int32) % size
    history = state.history.at[slot].set(jnp.concatenate([spiked, src]))
    syn = net.synapses
    arrived = history[(slot - lag) % size, syn.pre]  # [S]
    x1, x2, R, U = _synapse_step(syn, state, arrived, dt)
    w, x_pre, y_post = _stdp_step(syn, state, arrived, spiked[syn.post], dt)
    new = _State(v=v, u=u, gates=gates, last_spike=last, refractory=refractory,
                 i_in=input_current(net.inputs, t + dt), x1=x1, x2=x2, R=R, U=U,
                 w=w, x_pre=x_pre, y_post=y_post, history=history)
    return new, spiked


def _scan(net: Network, lag, dt: float, steps: int, history: int, record_g: bool):
    """The whole run of one network: lax.scan over steps -> (spikes, v, g or None, w)."""
    n, s = net.cells.family.shape[0], net.synapses.pre.shape[0]
    units = n + net.source_steps.shape[0]
    v0 = net.cells.v0
    init = _State(v=v0, u=jnp.zeros(n), gates=hh_steady_state(v0),
                  last_spike=jnp.full(n, -1e9),
                  refractory=jnp.zeros(n, bool), i_in=input_current(net.inputs, 0.0),
                  x1=jnp.zeros(s), x2=jnp.zeros(s), R=jnp.ones(s), U=net.synapses.u0,
                  w=net.synapses.weight, x_pre=jnp.zeros(s), y_post=jnp.zeros(s),
                  history=jnp.zeros((history, units), bool))

    def body(state, k):
        new, spiked = _step(net, lag, dt, state, k)
        return new, (spiked, new.v, _conductance(net.synapses, new) if record_g else None)

    final, out = jax.lax.scan(body, init, jnp.arange(steps, dtype=jnp.float32))
    return out + (final.w,)


_run = jax.jit(_scan, static_argnames=("steps", "dt", "history", "record_g"))


@functools.partial(jax.jit, static_argnames=("steps", "dt", "history"))
def _run_many(batch: Network, lags, dt: float, steps: int, history: int):
    return jax.vmap(lambda net, lag: _scan(net, lag, dt, steps, history, False))(batch, lags)


# A spike detected in step k reaches its synapses after round(delay / dt) steps
# plus this many (matches jNeuroML's event timing; see tests/test_bnnsim.py).
EVENT_LAG = 0


class Model(NamedTuple):
    """One network's arrays, as ``simulate`` takes them."""

    cells: CellParams
    inputs: PulseInputs
    synapses: SynapseParams | None = None
    gaps: GapParams | None = None
    sources: SpikeSources | None = None


def _checked(model: Model) -> Model:
    synapses = synapse_params([]) if model.synapses is None else model.synapses
    gaps = gap_params([]) if model.gaps is None else model.gaps
    sources = spike_sources([]) if model.sources is None else model.sources
    n, k = model.cells.family.shape[0], sources.times.shape[0]
    for name, idx, limit in (("synapse pre", synapses.pre, n + k), ("synapse post", synapses.post, n),
                             ("gap", np.concatenate([gaps.a, gaps.b]), n)):
        if idx.size and (idx.min() < 0 or idx.max() >= limit):
            raise ValueError(f"{name} index out of range for {n} neurons and {k} sources")
    return Model(model.cells, model.inputs, synapses, gaps, sources)


def _steps(duration: float, dt: float) -> int:
    if dt <= 0 or duration <= 0:
        raise ValueError(f"duration ({duration}) and dt ({dt}) must be positive")
    return int(round(duration / dt))


def _lags(synapses: SynapseParams, dt: float) -> np.ndarray:
    """[S] int32 steps from a presynaptic spike to its arrival at the synapse."""
    return np.rint(np.asarray(synapses.delay) / dt).astype(np.int32) + EVENT_LAG


def _network(m: Model, dt: float) -> Network:
    return Network(m.cells, m.inputs, m.synapses, m.gaps, source_steps(m.sources, dt))


def _results(spikes, v, g, w, dt) -> SimResult:
    return SimResult(spikes=np.asarray(spikes), v=np.asarray(v), dt=float(dt),
                     g=None if g is None else np.asarray(g), weights=np.asarray(w))


def simulate(cells: CellParams, inputs: PulseInputs, duration: float, dt: float = 0.025,
             synapses: SynapseParams | None = None, gaps: GapParams | None = None,
             sources: SpikeSources | None = None,
             record_conductance: bool = False) -> SimResult:
    """Simulate ``duration`` ms in steps of ``dt`` ms; returns the spike raster, v and,
    if asked, every synapse's conductance after each step."""
    steps = _steps(duration, dt)
    m = _checked(Model(cells, inputs, synapses, gaps, sources))
    lag = _lags(m.synapses, dt)
    history = int(lag.max(initial=0)) + 1
    net = jax.tree.map(jnp.asarray, _network(m, dt))
    out = _run(net, jnp.asarray(lag), float(dt), steps, history, record_conductance)
    return _results(*out, dt)


def _pad_rows(x: np.ndarray, rows: int, fill) -> np.ndarray:
    pad = np.full((rows - x.shape[0],) + x.shape[1:], fill, x.dtype)
    return np.concatenate([x, pad])


def _pad_model(m: Model, n: int, s: int, g: int, k: int, width: int, pulses: int) -> Model:
    """Pad to n neurons (silent), s synapses and g gaps (zero conductance), k sources of
    ``width`` spikes (none) and ``pulses`` pulses per neuron (zero amplitude)."""
    n0 = m.cells.family.shape[0]
    silent = cell_params([dict(family="iafCell", C=1.0, leak_conductance=1.0, leak_reversal=0.0,
                               thresh=1e9, reset=0.0)])
    cells = CellParams(*(np.concatenate([a, np.repeat(b, n - n0)]) for a, b in zip(m.cells, silent)))
    inputs = PulseInputs(*(np.pad(_pad_rows(a, n, 0), ((0, 0), (0, pulses - a.shape[1])))
                           for a in m.inputs))
    syn = m.synapses._replace(pre=np.where(m.synapses.pre >= n0, m.synapses.pre - n0 + n,
                                           m.synapses.pre).astype(np.int32))
    dummy = synapse_params([dict(pre=0, post=0, weight=0.0, synapse=dict(
        kind="expOneSynapse", gbase=0.0, erev=0.0, tauDecay=1.0))])
    syn = SynapseParams(*(np.concatenate([a, np.repeat(b, s - a.shape[0])])
                          for a, b in zip(syn, dummy)))
    gaps = GapParams(*(np.concatenate([a, np.zeros(g - a.shape[0], a.dtype)]) for a in m.gaps))
    times = np.full((k, width), np.inf, np.float32)
    times[:m.sources.times.shape[0], :m.sources.times.shape[1]] = m.sources.times
    return Model(cells, inputs, syn, gaps, SpikeSources(times))


def simulate_many(models: Sequence[Model], duration: float, dt: float = 0.025,
                  round_to: int = 8) -> list[SimResult]:
    """Simulate many networks at once: padded to common sizes (rounded up to multiples
    of ``round_to`` so batches share compilations) and vmapped over the networks."""
    steps = _steps(duration, dt)
    models = [_checked(m) for m in models]
    if not models:
        return []

    def size(values):
        return max(1, -(-max(values) // round_to) * round_to)

    n = size([m.cells.family.shape[0] for m in models])
    s = size([m.synapses.pre.shape[0] for m in models])
    g = size([m.gaps.a.shape[0] for m in models])
    k = size([m.sources.times.shape[0] for m in models])
    width = size([m.sources.times.shape[1] for m in models])
    pulses = max(m.inputs.amplitude.shape[1] for m in models)
    padded = [_pad_model(m, n, s, g, k, width, pulses) for m in models]
    lags = np.stack([_lags(p.synapses, dt) for p in padded])
    history = size([int(lags.max(initial=0)) + 1])
    batch = jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *(_network(p, dt) for p in padded))
    spikes, v, _, w = _run_many(batch, jnp.asarray(lags), float(dt), steps, history)
    out = []
    for i, m in enumerate(models):
        n0, s0 = m.cells.family.shape[0], m.synapses.pre.shape[0]
        out.append(_results(spikes[i, :, :n0], v[i, :, :n0], None, w[i, :s0], dt))
    return out

