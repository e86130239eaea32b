"""Random networks of canonical neurons and synapses, as plain dicts.

``random_network(seed, ...)`` returns a ``NetworkSpec``: the neuron, synapse,
gap-junction, pulse and spike-source dicts that both
``bnnsim.canonical.network_model`` (NeuroML) and ``bnnsim.simulate`` read, so
the file in the dataset and the simulation that labels it are the same model.

Families (published parameter sets with +-``jitter`` relative noise on every
parameter except potentials): Izhikevich 2007 RS/IB/CH (excitatory) and LTS
(inhibitory), AdEx (Naud 2008) firing types, LIF (iafCell / iafRefCell), and
``hh``: Hodgkin-Huxley cells as NeuroML ``<cell>``s, excitatory ball-and-stick
(active soma, passive 4-segment dendrite and axon; excitatory synapses land on
a random dendrite segment) and inhibitory single-compartment cells.
Synapses: excitatory expTwo (AMPA-like, some with Tsodyks-Markram STP) or
expOne, inhibitory alpha (GABA-like); pair-based STDP on half of the E -> E
synapses; gap junctions between inhibitory neurons. Connectivity: ``random`` (Erdos-Renyi), ``small_world``
(Watts-Strogatz), ``distance`` (exponential fall-off with distance in a
500 um cube), with a connection probability drawn from ``P_CONNECT``.
Coupling strength is drawn log-uniformly. Drive, drawn per
network: ``pulse`` (a step current per neuron around its type's published
current, so intrinsic patterns show) or ``poisson`` (independent Poisson
spike trains through AMPA-like synapses, log-uniform 30-1500 Hz).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from bnnsim.canonical import (
    ADEX_NAUD_2008,
    FAMILIES,
    IZHIKEVICH_2007,
    adex_cell,
    ball_and_stick_cell,
    hh_single_cell,
    izhikevich_cell,
)

CONNECTIVITY = ("random", "small_world", "distance")
DRIVES = ("pulse", "poisson")
# connection probability, drawn per network: sparse networks tend to fire
# asynchronously, dense strongly coupled ones in synchronous population bursts
P_CONNECT = (0.05, 0.1, 0.2, 0.3, 0.5)
_POTENTIALS = {"vr", "vt", "vpeak", "c", "v0", "EL", "VT", "reset", "thresh", "leak_reversal",
               "erev"}
LIF = dict(family="iafRefCell", C=200.0, leak_conductance=10.0, leak_reversal=-70.0,
           thresh=-50.0, reset=-65.0, refract=2.0)
AMPA = dict(kind="expTwoSynapse", gbase=1.0, erev=0.0, tauRise=0.5, tauDecay=5.0)
GABA = dict(kind="alphaSynapse", gbase=2.0, erev=-80.0, tau=8.0)
# pair-based STDP on half of the E -> E synapses (Song, Miller & Abbott 2000 style,
# slightly depression-dominated), weights bounded to [0, 2]
STDP = dict(A_plus=0.01, A_minus=0.0105, tau_plus=20.0, tau_minus=20.0, w_max=2.0)


class NetworkSpec(NamedTuple):
    cells: list[dict]
    types: list[str]  # e.g. "izhikevich/RS", "adex/bursting", "lif"
    inhibitory: np.ndarray  # [N] bool
    positions: np.ndarray  # [N, 3] um
    connections: list[dict]
    gaps: list[dict]
    pulses: list[list[dict]]
    sources: list[list[float]]  # Poisson trains (ms); source k is presynaptic unit N + k
    meta: dict


def _jittered(cell: dict, rng, jitter: float) -> dict:
    out = dict(cell)
    for k, v in cell.items():
        if k != "family" and k not in _POTENTIALS and isinstance(v, (int, float)) and v != 0:
            out[k] = float(v) * float(np.clip(1 + jitter * rng.normal(), 0.5, 1.5))
    return out


def _neuron(rng, family: str, inhibitory: bool, jitter: float):
    """(cell dict, type name, the step current (pA) that shows its pattern)."""
    def jit(v):
        return round(float(v) * float(np.clip(1 + jitter * rng.normal(), 0.5, 1.5)), 4)

    if family == "hh":
        dens = dict(gna=jit(120.0), gk=jit(36.0), gl=jit(0.3))
        if inhibitory:
            area = jit(1000.0)
            return hh_single_cell(area_um2=area, **dens), "hh/single", 0.1 * area
        return (ball_and_stick_cell(soma_diam=jit(20.0), dend_length=jit(400.0),
                                    dend_diam=jit(2.0), gl_dend=jit(0.3), **dens),
                "hh/ball_and_stick", 300.0)
    if family == "izhikevich":
        kind = "LTS" if inhibitory else str(rng.choice(["RS", "IB", "CH"]))
        return (_jittered(izhikevich_cell(kind), rng, jitter), f"izhikevich/{kind}",
                IZHIKEVICH_2007[kind]["current"])
    if family == "adex":
        kind = str(rng.choice(sorted(ADEX_NAUD_2008)))
        return (_jittered(adex_cell(kind), rng, jitter), f"adex/{kind}",
                ADEX_NAUD_2008[kind]["current"])
    return _jittered(dict(LIF), rng, jitter), "lif", 300.0


def _edges(rng, n: int, kind: str, p: float, positions: np.ndarray) -> np.ndarray:
    """[M, 2] directed (pre, post) pairs without self-connections."""
    if kind == "random":
        mask = rng.uniform(size=(n, n)) < p
    elif kind == "small_world":
        import networkx as nx
        k = max(2, int(round(p * (n - 1))) // 2 * 2)
        g = nx.watts_strogatz_graph(n, min(k, n - 1 - (n - 1) % 2), 0.1,
                                    seed=int(rng.integers(2 ** 31)))
        mask = np.zeros((n, n), bool)
        for a, b in g.edges():
            mask[(a, b) if rng.uniform() < 0.5 else (b, a)] = True
    elif kind == "distance":
        d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
        lam = 150.0
        mask = rng.uniform(size=(n, n)) < np.minimum(1.0, p * np.exp(-d / lam) / np.exp(-250 / lam))
    else:
        raise ValueError(f"connectivity must be one of {CONNECTIVITY}, got {kind!r}")
    np.fill_diagonal(mask, False)
    return np.argwhere(mask)


def poisson_train(rng, rate_hz: float, duration: float) -> list[float]:
    """Poisson spike times (ms) in (0, duration), rounded to 1 us."""
    n = rng.poisson(rate_hz * duration / 1e3)
    return np.round(np.sort(rng.uniform(0, duration, n)), 3).tolist()


def random_network(seed: int, n_neurons: int | None = None, families: Sequence[str] = FAMILIES,
                   neuron_range: tuple[int, int] = (10, 60),
                   connectivity: str | None = None, drive: str | None = None,
                   frac_inhibitory: float = 0.2, p_connect: float | None = None,
                   coupling: float | None = None, drive_rate: float | None = None,
                   duration: float = 1000.0, jitter: float = 0.1) -> NetworkSpec:
    """A random canonical network; unspecified choices are drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(n_neurons or rng.integers(neuron_range[0], neuron_range[1] + 1))
    connectivity = connectivity or str(rng.choice(CONNECTIVITY))
    drive = drive or str(rng.choice(DRIVES))
    if drive not in DRIVES:
        raise ValueError(f"drive must be one of {DRIVES}, got {drive!r}")
    family = str(rng.choice(list(families)))
    p_connect = float(p_connect if p_connect is not None else rng.choice(P_CONNECT))
    coupling = float(coupling if coupling is not None else np.exp(rng.uniform(np.log(0.2),
                                                                              np.log(5.0))))
    inhibitory = np.arange(n) >= int(round(n * (1 - frac_inhibitory)))
    positions = rng.uniform(0, 500, (n, 3))
    cells, types, currents = zip(*(_neuron(rng, family, bool(inh), jitter) for inh in inhibitory))
    # keep the input per neuron in range as n grows
    scale = coupling / max(p_connect * n, 1.0) ** 0.5
    stp = dict(kind="tsodyksMarkramDepFacMechanism", initReleaseProb=0.5, tauRec=200.0,
               tauFac=50.0)
    connections = []
    for pre, post in _edges(rng, n, connectivity, p_connect, positions):
        if inhibitory[pre]:
            syn = dict(GABA, gbase=round(float(GABA["gbase"] * 8 * scale), 4))
        else:
            syn = dict(AMPA, gbase=round(float(AMPA["gbase"] * 6 * scale), 4))
            if rng.uniform() < 0.3:
                syn["stp"] = stp
            if not inhibitory[post] and rng.uniform() < 0.5:
                syn["stdp"] = STDP
        conn = dict(pre=int(pre), post=int(post), synapse=syn,
                    weight=round(float(rng.uniform(0.5, 1.5)), 3),
                    delay=round(float(rng.uniform(0.5, 5.0)), 2))
        segs = cells[post].get("segments", ())
        if not inhibitory[pre] and len(segs) > 1:  # excitatory input on the dendrite
            dend = [k for k, seg in enumerate(segs) if seg[1] == "dendrite"]
            conn["post_segment"] = int(rng.choice(dend))
        connections.append(conn)
    inh = np.flatnonzero(inhibitory)
    gaps = [dict(a=int(a), b=int(b), conductance=0.5) for a, b in
            (rng.choice(inh, 2, replace=False) for _ in range(len(inh) // 2)) if a != b] \
        if inh.size >= 2 else []
    pulses, sources, rate = [[] for _ in range(n)], [], 0.0
    if drive == "poisson":
        rate = float(drive_rate if drive_rate is not None else
                     np.exp(rng.uniform(np.log(30.0), np.log(1500.0))))
        sources = [poisson_train(rng, rate, duration) for _ in range(n)]
        syn = dict(AMPA, gbase=3.0)
        connections += [dict(pre=n + k, post=k, synapse=syn, weight=1.0, delay=0.0)
                        for k in range(n)]
    else:
        level = float(rng.uniform(0.3, 1.5))  # network-wide: from mostly silent to strong
        pulses = [[dict(delay=0.0, duration=duration,
                        amplitude=round(float(c * level * rng.uniform(0.8, 1.2)), 2))]
                  for c in currents]
    meta = dict(seed=int(seed), n_neurons=n, family=family, connectivity=connectivity,
                drive=drive, frac_inhibitory=float(frac_inhibitory), p_connect=float(p_connect),
                coupling=coupling, drive_rate_hz=rate, duration_ms=float(duration))
    return NetworkSpec(list(cells), list(types), inhibitory, positions, connections, gaps,
                       pulses, sources, meta)
