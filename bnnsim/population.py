"""A population of LIF neurons in communities whose coupling switches between regimes.

The test bed of TAVRNN (issue 8): ``n_neurons`` leaky integrate-and-fire cells
(``iafRefCell``, the LIF of ``bnnsim.generate``) split into ``n_communities``
equal communities. Every neuron gets private Poisson background; every
community has recurrent AMPA synapses (probability ``p_within``) and its own
shared Poisson drive, so its members fire together. Time is cut into segments
of ``segment_ms``; in each segment one *regime* is on:

* ``segregated``: every community is driven on its own;
* ``a+b``: communities a and b (adjacent pairs 0+1, 1+2, ...) also share a
  *bridge* drive (a common input to both), so they fire together in part of
  the bins while the other communities stay independent.

The bridge is a Poisson source whose spikes exist only in the segments of its
regime, so a single continuous simulation (``bnnsim.simulate``) produces
coupling that switches over time. Ground truth: community of every neuron and
regime of every segment.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from bnnsim.cells import cell_params
from bnnsim.generate import AMPA, LIF, poisson_train
from bnnsim.inputs import pulse_inputs, spike_sources
from bnnsim.simulate import simulate
from bnnsim.synapses import synapse_params


class PopulationConfig(NamedTuple):
    """Defaults: 60 neurons, 3 communities, 12 segments of 6 s (72 s of activity)."""

    n_neurons: int = 60
    n_communities: int = 3
    n_segments: int = 12
    segment_ms: float = 6000.0
    background_hz: float = 150.0
    """Private Poisson rate per neuron (AMPA synapses; with the drives ~7 Hz firing).
    Few, strong background events keep the simulation fast: the simulator scans every
    source's spike list each step."""
    background_weight: float = 2.0
    drive_hz: float = 10.0
    """Rate of each community's own shared drive."""
    bridge_hz: float = 20.0
    """Rate of an active bridge (the drive two coupled communities share)."""
    drive_weight: float = 5.0
    """A shared-drive spike makes many of its targets fire within a few ms: with the
    default windows (10 ms bins, 2 s, r >= 0.2) ~64% of the pairs inside a community
    are linked, 55-64% of the pairs between bridged communities, ~2% otherwise."""
    p_within: float = 0.2
    within_weight: float = 0.5
    dt: float = 0.25
    seed: int = 0


class Population(NamedTuple):
    times: np.ndarray  # [S] float64 spike times, ms
    ids: np.ndarray  # [S] int32 neuron of each spike
    n_neurons: int
    duration: float  # ms
    community: np.ndarray  # [N] int32
    regimes: tuple  # regime names; index = label
    segment_regime: np.ndarray  # [n_segments] int32 regime label of each segment
    segment_ms: float


def regime_names(n_communities: int) -> tuple:
    return ("segregated",) + tuple(f"{a}+{a + 1}" for a in range(n_communities - 1))


def _schedule(rng, n_segments: int, n_regimes: int) -> np.ndarray:
    """Every regime equally often (as far as n_segments allows), in random order, no
    regime twice in a row."""
    base = np.resize(np.arange(n_regimes), n_segments)
    for _ in range(1000):
        order = rng.permutation(base)
        if np.all(order[1:] != order[:-1]):
            return order.astype(np.int32)
    return base.astype(np.int32)  # 0, 1, 2, 0, ...: never repeats


def simulate_population(config: PopulationConfig = PopulationConfig()) -> Population:
    """Build the network, simulate it once and return its spikes with the ground truth."""
    c = config
    if c.n_neurons < c.n_communities or c.n_communities < 1 or c.n_segments < 1:
        raise ValueError(f"need n_neurons >= n_communities >= 1 and n_segments >= 1, got {c}")
    rng = np.random.default_rng(c.seed)
    n, k = c.n_neurons, c.n_communities
    community = (np.arange(n) * k // n).astype(np.int32)  # [N] equal blocks
    regimes = regime_names(k)
    schedule = _schedule(rng, c.n_segments, len(regimes))
    duration = c.n_segments * c.segment_ms

    # sources: N private, k community drives, k-1 bridges (spikes only in their segments)
    sources = [poisson_train(rng, c.background_hz, duration) for _ in range(n)]
    sources += [poisson_train(rng, c.drive_hz, duration) for _ in range(k)]
    for bridge in range(1, len(regimes)):
        train = []
        for seg in np.flatnonzero(schedule == bridge):
            t0 = seg * c.segment_ms
            train += [t0 + t for t in poisson_train(rng, c.bridge_hz, c.segment_ms)]
        sources.append(train)

    def source(j):
        return n + j

    conns = [dict(pre=source(i), post=i, synapse=AMPA, weight=c.background_weight)
             for i in range(n)]
    for i in range(n):
        conns.append(dict(pre=source(n + community[i]), post=i, synapse=AMPA,
                          weight=c.drive_weight))
        for a in range(k - 1):  # bridge a couples communities a and a+1
            if community[i] in (a, a + 1):
                conns.append(dict(pre=source(n + k + a), post=i, synapse=AMPA,
                                  weight=c.drive_weight))
    same = community[:, None] == community[None, :]
    pre, post = np.nonzero(same & (rng.uniform(size=(n, n)) < c.p_within) & ~np.eye(n, dtype=bool))
    conns += [dict(pre=int(a), post=int(b), synapse=AMPA, weight=c.within_weight, delay=1.0)
              for a, b in zip(pre, post)]

    cells = cell_params([dict(LIF)] * n)
    result = simulate(cells, pulse_inputs([[]] * n), duration, dt=c.dt,
                      synapses=synapse_params(conns), sources=spike_sources(sources))
    steps, ids = np.nonzero(result.spikes)
    order = np.lexsort((ids, steps))
    return Population(times=steps[order] * c.dt, ids=ids[order].astype(np.int32), n_neurons=n,
                      duration=duration, community=community, regimes=regimes,
                      segment_regime=schedule, segment_ms=c.segment_ms)


def save_population(pop: Population, path) -> Path:
    """One ``.npz`` that ``bgan_jax.tavrnn.spikes.read_spikes`` reads (times, ids, n_neurons,
    duration) plus the ground truth (community, segment_regime, segment_ms, regimes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, times=pop.times, ids=pop.ids, n_neurons=pop.n_neurons,
                        duration=pop.duration, community=pop.community,
                        segment_regime=pop.segment_regime, segment_ms=pop.segment_ms,
                        regimes=np.asarray(pop.regimes))
    tmp.replace(path)  # complete or absent, never half written
    return path


def default_population(cache_dir=None, config: PopulationConfig = PopulationConfig()) -> Path:
    """The default TAVRNN recording (simulated once, ~30 s on 2 CPU cores, then cached)."""
    from bnnsim.dataset import default_cache_dir

    import hashlib
    name = f"population-{hashlib.sha1(repr(tuple(config)).encode()).hexdigest()[:10]}.npz"
    path = Path(cache_dir or default_cache_dir()) / name
    if not path.is_file():
        print(f"simulating the default population ({config.n_neurons} neurons, "
              f"{config.n_segments * config.segment_ms / 1e3:g} s) -> {path}", flush=True)
        save_population(simulate_population(config), path)
    return path
