"""Spike trains -> a sequence of functional graphs (the input of TAVRNN).

Pipeline (every step a small pure function)::

    SpikeTrains (times ms, neuron ids)            read_spikes / from_arrays / from_raster
      -> counts [B, N] in bins of bin_ms             bin_counts
      -> windows of window_ms every stride_ms        window_starts
      -> per window: Pearson correlation [N, N]      correlation (silent neuron: r = 0)
         -> functional graph: r >= threshold         functional_adjacency
            (or each neuron's top_k partners, symmetrised)
      -> per window a graph of 2N nodes              window_graph
         rows 0..N-1: the neurons in this window, rows N..2N-1: one *history node*
         per neuron (the same neuron in the previous window, linked to it both
         ways; its edges are the previous window's functional graph)
      -> padded jraph.GraphsTuples of one shape      window_graphs
    (functional_windows + window_graphs = dynamic_graphs)

Node features: the neuron's spike counts in the window's bins, z-scored over
the window (zeros for a silent neuron), then log1p(rate in Hz) and a
history-node flag. The first window's history nodes are silent. Nothing is
divided by a zero variance: empty windows and silent neurons give graphs
without their edges, never NaN.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import NamedTuple, Optional

import jraph
import numpy as np

from bnnsim.lems import read_event_file


class SpikeDataError(ValueError):
    """Spike data (CSV, npz, LEMS event file or arrays) that cannot be used; names the
    file (or the arrays' source) and the problem."""

    def __init__(self, file, message: str):
        self.file, self.detail = str(file), message
        super().__init__(f"{file}: {message}")


class SpikeTrains(NamedTuple):
    times: np.ndarray  # [S] float64 ms
    ids: np.ndarray  # [S] int32 neuron index in [0, n_neurons)
    n_neurons: int
    duration: float  # ms; spikes lie in [0, duration)


@dataclasses.dataclass(frozen=True)
class WindowConfig:
    """How spike trains become functional graphs. Defaults: 10 ms bins, 2 s windows
    every 1 s, an edge where Pearson r >= 0.2. Checked on construction."""

    bin_ms: float = 10.0
    window_ms: float = 2000.0
    stride_ms: float = 1000.0
    threshold: float = 0.2
    """Edge where the correlation is at least this (ignored when top_k is set)."""
    top_k: Optional[int] = None
    """Instead of a threshold: each neuron's k most correlated partners (r > 0),
    symmetrised (an edge if either end chose it)."""

    def __post_init__(self):
        check_windows(self)


class DynamicGraphs(NamedTuple):
    """A recording as a sequence of T window graphs, all padded to one shape."""

    graphs: list  # T jraph.GraphsTuple: nodes [P, F], senders/receivers [Q], 2 graphs
    adjacency: np.ndarray  # [T, N, N] bool observed functional graphs (symmetric, no diagonal)
    features: np.ndarray  # [T, 2N, F] float32 node features (neurons, then history nodes)
    starts: np.ndarray  # [T] window start, ms
    config: WindowConfig


FEATURES_EXTRA = ("log1p_rate_hz", "is_history")


def from_arrays(times, ids, n_neurons: Optional[int] = None, duration: Optional[float] = None,
                source: str = "<arrays>") -> SpikeTrains:
    """Validated SpikeTrains from spike times (ms) and neuron ids; ``source`` names the
    data in errors."""
    times = np.asarray(times, np.float64).reshape(-1)
    ids = np.asarray(ids).reshape(-1)
    if times.shape != ids.shape:
        raise SpikeDataError(source, f"{times.size} spike times but {ids.size} neuron ids")
    if not np.all(np.isfinite(times)) or (times.size and times.min() < 0):
        raise SpikeDataError(source, "spike times must be finite and >= 0 (ms)")
    if ids.size and (not np.all(np.equal(np.mod(ids, 1), 0)) or ids.min() < 0):
        raise SpikeDataError(source, "neuron ids must be non-negative integers")
    ids = ids.astype(np.int32)
    n = int(n_neurons) if n_neurons is not None else int(ids.max(initial=-1)) + 1
    if n < 1:
        raise SpikeDataError(source, "no neurons (no spikes and no n_neurons given)")
    if ids.size and ids.max() >= n:
        raise SpikeDataError(source, f"neuron id {ids.max()} >= n_neurons {n}")
    end = float(duration) if duration is not None else float(np.floor(times.max(initial=0)) + 1)
    if times.size and times.max() >= end:
        raise SpikeDataError(source, f"spike at {times.max()} ms is not before duration {end} ms")
    order = np.lexsort((ids, times))
    return SpikeTrains(times[order], ids[order], n, end)


def from_raster(spikes: np.ndarray, dt: float) -> SpikeTrains:
    """[T, N] bool raster (e.g. ``bnnsim.SimResult.spikes``) with steps of dt ms."""
    steps, ids = np.nonzero(np.asarray(spikes))
    return from_arrays(steps * float(dt), ids, spikes.shape[1], spikes.shape[0] * float(dt))


_TIME_COLUMNS = ("time_ms", "time", "t", "t_ms", "spike_time")
_ID_COLUMNS = ("neuron", "neuron_id", "id", "unit", "cell", "channel")


def _read_csv(path: Path) -> SpikeTrains:
    """A header naming a time column (ms) and a neuron column, or two bare columns
    ``time_ms,neuron``."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].lstrip().startswith("#")]
    if not rows:
        raise SpikeDataError(path, "no rows")
    head = [c.strip().lower() for c in rows[0]]
    t_col = next((head.index(c) for c in _TIME_COLUMNS if c in head), None)
    i_col = next((head.index(c) for c in _ID_COLUMNS if c in head), None)
    if t_col is None or i_col is None:
        try:
            [float(c) for c in rows[0][:2]]
        except ValueError:
            raise SpikeDataError(path, f"header {rows[0]} names no time column {_TIME_COLUMNS} "
                                 f"and neuron column {_ID_COLUMNS}") from None
        t_col, i_col, body = 0, 1, rows
    else:
        body = rows[1:]
    try:
        times = [float(r[t_col]) for r in body]
        ids = [float(r[i_col]) for r in body]
    except (ValueError, IndexError) as err:
        raise SpikeDataError(path, f"bad row: {err}") from None
    return from_arrays(times, ids, source=str(path))


def _read_lems_events(path: Path) -> SpikeTrains:
    """LEMS/jNeuroML EventOutputFile, default format ID_TIME: ``id time_s`` per line."""
    try:
        ids, times = read_event_file(path)
    except ValueError as err:
        raise SpikeDataError(path, str(err)) from None
    return from_arrays(times, ids, source=str(path))


def _read_npz(path: Path) -> SpikeTrains:
    """Arrays ``times`` (ms) and ``ids``, optional ``n_neurons`` and ``duration``."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("times", "ids") if k not in z.files]
        if missing:
            raise SpikeDataError(path, f"missing arrays {missing} (has {z.files})")
        n = int(z["n_neurons"]) if "n_neurons" in z.files else None
        d = float(z["duration"]) if "duration" in z.files else None
        return from_arrays(z["times"], z["ids"], n, d, source=str(path))


def read_spikes(path) -> SpikeTrains:
    """Spike trains from ``.csv`` (time ms, neuron), ``.npz`` (times, ids, optional
    n_neurons, duration) or a LEMS event file (``.spikes``/``.dat``/``.txt``: id, time s)."""
    path = Path(path)
    if not path.is_file():
        raise SpikeDataError(path, "no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return _read_csv(path)
        if suffix == ".npz":
            return _read_npz(path)
        if suffix in (".spikes", ".dat", ".txt"):
            return _read_lems_events(path)
    except (OSError, ValueError) as err:  # SpikeDataError is neither: it passes through
        raise SpikeDataError(path, f"cannot read: {err}") from None
    raise SpikeDataError(path, f"unknown spike file type {suffix!r} (.csv, .npz, .spikes)")


def bin_counts(trains: SpikeTrains, bin_ms: float) -> np.ndarray:
    """[B, N] float32 spike counts in consecutive bins; B = floor(duration / bin_ms)."""
    n_bins = int(trains.duration // bin_ms)
    counts = np.zeros((n_bins, trains.n_neurons), np.float32)
    b = (trains.times // bin_ms).astype(np.int64)
    keep = b < n_bins
    np.add.at(counts, (b[keep], trains.ids[keep]), 1.0)
    return counts


def check_windows(config: WindowConfig) -> None:
    """ValueError naming the problem: windows and stride must be whole numbers of bins."""
    if min(config.bin_ms, config.window_ms, config.stride_ms) <= 0:
        raise ValueError(f"bin, window and stride must be positive, got {config}")
    for name in ("window_ms", "stride_ms"):
        bins = getattr(config, name) / config.bin_ms
        if abs(bins - round(bins)) > 1e-6:
            raise ValueError(f"{name} ({getattr(config, name)}) must be a multiple of bin_ms "
                             f"({config.bin_ms})")
    if config.window_ms < 2 * config.bin_ms:
        raise ValueError(f"a window needs at least 2 bins, got {config}")
    if config.top_k is not None and config.top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {config.top_k}")


def window_starts(duration: float, config: WindowConfig) -> np.ndarray:
    """[T] start times (ms) of the windows that fit in the recording."""
    check_windows(config)
    last = duration - config.window_ms
    if last < 0:
        return np.zeros(0)
    return np.arange(0.0, last + 1e-9, config.stride_ms)


def zscore(x: np.ndarray) -> np.ndarray:
    """Columns of [W, N] with mean 0 and std 1; constant columns become 0."""
    x = x - x.mean(axis=0)
    std = x.std(axis=0)
    return np.where(std > 0, x / np.where(std > 0, std, 1.0), 0.0)


def correlation(counts: np.ndarray) -> np.ndarray:
    """[N, N] Pearson correlation of the columns of [W, N]; 0 where a neuron is silent
    (or constant) and on the diagonal."""
    z = zscore(np.asarray(counts, np.float64))
    r = z.T @ z / max(z.shape[0], 1)
    np.fill_diagonal(r, 0.0)
    return r


def functional_adjacency(r: np.ndarray, threshold: float = 0.2,
                         top_k: Optional[int] = None) -> np.ndarray:
    """[N, N] bool symmetric graph without self-loops from a correlation matrix."""
    r = np.asarray(r, np.float64)
    if top_k is None:
        adj = r >= threshold
    else:
        k = min(int(top_k), r.shape[0] - 1)
        adj = np.zeros(r.shape, bool)
        if k > 0:
            best = np.argsort(-r, axis=1, kind="stable")[:, :k]
            np.put_along_axis(adj, best, np.take_along_axis(r, best, axis=1) > 0, axis=1)
        adj |= adj.T
    np.fill_diagonal(adj, False)
    return adj


def window_features(counts: np.ndarray, window_ms: float) -> np.ndarray:
    """[N, W + 1] per neuron: z-scored bin counts and log1p(rate in Hz)."""
    rate = counts.sum(axis=0) / (window_ms / 1e3)
    return np.concatenate([zscore(counts).T, np.log1p(rate)[:, None]], axis=1).astype(np.float32)


def window_graph(adjacency: np.ndarray, previous: np.ndarray) -> tuple:
    """(senders, receivers) of one window graph: functional edges among the neurons,
    the previous window's among the history nodes, neuron <-> its history node."""
    n = adjacency.shape[0]
    s, r = np.nonzero(adjacency)
    hs, hr = np.nonzero(previous)
    link = np.arange(n)
    senders = np.concatenate([s, hs + n, link, link + n])
    receivers = np.concatenate([r, hr + n, link + n, link])
    return senders.astype(np.int32), receivers.astype(np.int32)


def pad_size(n: int, multiple: int = 64) -> int:
    return -(-max(int(n), 1) // multiple) * multiple


class Windows(NamedTuple):
    """A recording's windows before graph building (what held-out links are drawn from)."""

    adjacency: np.ndarray  # [T, N, N] bool functional graphs
    features: np.ndarray  # [T, 2N, F] float32 (neurons, then history nodes)
    starts: np.ndarray  # [T] ms
    config: WindowConfig


def functional_windows(trains: SpikeTrains, config: WindowConfig = WindowConfig()) -> Windows:
    """Bin, window, correlate: every window's functional graph and node features."""
    starts = window_starts(trains.duration, config)
    if starts.size == 0:
        raise SpikeDataError("<spikes>", f"recording of {trains.duration} ms is shorter than "
                             f"one window ({config.window_ms} ms)")
    counts = bin_counts(trains, config.bin_ms)
    w = int(round(config.window_ms / config.bin_ms))
    s = int(round(config.stride_ms / config.bin_ms))
    n = trains.n_neurons
    adjacency, current = [], []
    for t in range(starts.size):
        c = counts[t * s:t * s + w]
        adjacency.append(functional_adjacency(correlation(c), config.threshold, config.top_k))
        current.append(window_features(c, config.window_ms))
    current = np.stack(current)  # [T, N, W + 1]
    history = np.concatenate([np.zeros_like(current[:1]), current[:-1]])
    flag = np.concatenate([np.zeros((n, 1)), np.ones((n, 1))])[None].repeat(starts.size, 0)
    features = np.concatenate([np.concatenate([current, history], axis=1), flag],
                              axis=2).astype(np.float32)  # [T, 2N, W + 2]
    return Windows(np.stack(adjacency), features, starts, config)


def window_graphs(windows: Windows, hide: Optional[np.ndarray] = None,
                  pad_nodes: Optional[int] = None,
                  pad_edges: Optional[int] = None) -> DynamicGraphs:
    """The window graphs. ``hide`` ([T, N, N] bool, symmetric) removes pairs from the
    *input* graphs (held-out links); ``adjacency`` keeps them. Every graph is padded
    to the same ``pad_nodes`` / ``pad_edges`` (default: the largest, rounded up to a
    multiple of 64) plus jraph's padding graph."""
    adjacency, features = windows.adjacency, windows.features
    n = adjacency.shape[1]
    if hide is not None and hide.shape != adjacency.shape:
        raise ValueError(f"hide has shape {hide.shape}, the windows {adjacency.shape}")
    seen = adjacency & ~hide if hide is not None else adjacency
    edges = [window_graph(seen[t], seen[t - 1] if t else np.zeros_like(seen[0]))
             for t in range(len(seen))]
    n_edge = max(e[0].size for e in edges)
    pad_n = pad_nodes or pad_size(2 * n + 1)
    pad_e = pad_edges or pad_size(n_edge + 1)
    if pad_n < 2 * n + 1 or pad_e < n_edge + 1:
        raise ValueError(f"padding ({pad_n} nodes, {pad_e} edges) below the largest graph "
                         f"({2 * n} nodes, {n_edge} edges) + 1")
    graphs = []
    for t, (snd, rcv) in enumerate(edges):
        g = jraph.GraphsTuple(nodes=features[t], edges=np.ones((snd.size, 1), np.float32),
                              senders=snd, receivers=rcv, globals=np.zeros((1, 1), np.float32),
                              n_node=np.array([2 * n]), n_edge=np.array([snd.size]))
        graphs.append(jraph.pad_with_graphs(g, pad_n, pad_e, 2))
    return DynamicGraphs(graphs, adjacency, features, windows.starts, windows.config)


def dynamic_graphs(trains: SpikeTrains, config: WindowConfig = WindowConfig(),
                   hide: Optional[np.ndarray] = None, pad_nodes: Optional[int] = None,
                   pad_edges: Optional[int] = None) -> DynamicGraphs:
    """``window_graphs(functional_windows(trains, config), hide, pad_nodes, pad_edges)``."""
    return window_graphs(functional_windows(trains, config), hide, pad_nodes, pad_edges)


def stack_graphs(graphs) -> jraph.GraphsTuple:
    """T same-shape GraphsTuples -> one with a leading time axis (for ``lax.scan``)."""
    return jraph.GraphsTuple(*(np.stack(fields) if fields[0] is not None else None
                               for fields in zip(*graphs)))
