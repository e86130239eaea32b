"""Read a TAVRNN-family run out: embedding trajectories, attention over time,
reconstructed vs observed connectivity, as figures, CSV and a report.

Everything is computed from the checkpoint on a recording (the one the run
trained on unless another is given), never from training-time files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from bgan_jax.runs.workdir import RunDirError, read_config, read_data_path
from bgan_jax.tavrnn.model import create_tavrnn, edge_probabilities
from bgan_jax.tavrnn.train import (TemporalConfig, cluster_connectivity, cluster_count, clusters,
                                   embed, evaluate, load_recording, load_temporal_run, prepare,
                                   window_regimes)


def pca2(x: np.ndarray) -> np.ndarray:
    """[M, D] -> [M, 2] principal-component scores (zeros if x has no spread)."""
    x = x - x.mean(axis=0)
    if not np.any(x):
        return np.zeros((x.shape[0], 2))
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    out = u[:, :2] * s[:2]
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


def attention_by_lag(attention: np.ndarray) -> np.ndarray:
    """[T, N, K] weights by lag -> [K] mean weight on the state 1..K steps back, over
    the steps that have that many predecessors."""
    steps, _, span = attention.shape
    return np.array([attention[lag + 1:, :, lag].mean() if steps > lag + 1 else 0.0
                     for lag in range(span)])


def _figures(out: Path, mu, attention, adjacency, regimes, names, community, found, starts,
             between):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    cmap = plt.get_cmap("tab10")

    # 1. trajectories: each window's population readout, and the neurons' embeddings
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    xy = pca2(between)
    a.plot(xy[:, 0], xy[:, 1], color="0.8", lw=0.8, zorder=1)
    for r in np.unique(regimes):
        m = regimes == r
        label = names[r] if 0 <= r < len(names) else "straddles / unknown"
        a.scatter(xy[m, 0], xy[m, 1], s=18, color=cmap(r) if r >= 0 else "0.6", label=label,
                  zorder=2)
    a.scatter(*xy[0], marker="*", s=120, color="k", label="first window", zorder=3)
    a.set(title="windows over time: decoded links between embedding clusters (PCA)",
          xlabel="PC 1", ylabel="PC 2")
    a.legend(fontsize=8)
    nxy = pca2(mu.mean(axis=0))
    groups = community if community is not None and community.min() >= 0 else found
    for c in np.unique(groups):
        m = groups == c
        b.scatter(nxy[m, 0], nxy[m, 1], s=22, color=cmap(c), label=f"community {c}")
    b.set(title="neurons: time-averaged embedding (PCA)", xlabel="PC 1", ylabel="PC 2")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figs / "embedding_trajectories.png", dpi=120)
    plt.close(fig)

    # 2. attention over time
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    span = attention.shape[2]
    im = a.imshow(attention.mean(axis=1), origin="lower", aspect="auto", cmap="viridis",
                  extent=(0.5, span + 0.5, starts[0] / 1e3, starts[-1] / 1e3))
    a.set(title="temporal attention (mean over neurons)", xlabel="windows back",
          ylabel="current window start (s)")
    fig.colorbar(im, ax=a, label="weight")
    lag = attention_by_lag(attention)
    b.bar(np.arange(1, span + 1), lag, color="C0")
    b.set(title="mean weight by lag", xlabel="windows back", ylabel="mean attention weight")
    fig.tight_layout()
    fig.savefig(figs / "attention_over_time.png", dpi=120)
    plt.close(fig)

    # 3. observed vs reconstructed connectivity, one window per regime (or 3 windows)
    order = np.argsort(groups, kind="stable")
    picks = [int(np.flatnonzero(regimes == r)[len(np.flatnonzero(regimes == r)) // 2])
             for r in np.unique(regimes) if r >= 0] or \
        list(np.linspace(0, len(starts) - 1, 3).astype(int))
    prob = np.asarray(edge_probabilities(jnp.asarray(mu[picks])))
    fig, axes = plt.subplots(2, len(picks), figsize=(3.6 * len(picks), 7), squeeze=False)
    for j, t in enumerate(picks):
        title = names[regimes[t]] if 0 <= regimes[t] < len(names) else ""
        axes[0, j].imshow(adjacency[t][np.ix_(order, order)], cmap="Greys", vmin=0, vmax=1)
        axes[0, j].set_title(f"observed, {starts[t] / 1e3:g} s {title}", fontsize=9)
        im = axes[1, j].imshow(prob[j][np.ix_(order, order)], cmap="magma", vmin=0, vmax=1)
        axes[1, j].set_title("reconstructed sigmoid(mu mu^T)", fontsize=9)
        for a in axes[:, j]:
            a.set(xlabel="neuron (sorted by community)", ylabel="neuron")
    fig.colorbar(im, ax=axes[1, :].tolist(), label="link probability", shrink=0.8)
    fig.savefig(figs / "connectivity.png", dpi=120)
    plt.close(fig)
    return ["embedding_trajectories.png", "attention_over_time.png", "connectivity.png"]


def analyze_temporal(workdir, out, recording=None) -> Dict:
    """Write the report of a TAVRNN/VGRNN/VGAE run to ``out``; returns the summary."""
    workdir, out = Path(workdir), Path(out)
    config = read_config(workdir, TemporalConfig)
    if recording is None:
        recording = read_data_path(workdir)
        if recording is None:
            raise RunDirError(f"{workdir}: no data.json; pass --data SPIKEFILE")
    trains, truth = load_recording(recording)
    prep = prepare(trains, config)
    graphs = jax.tree.map(jnp.asarray, prep.graphs)
    run = load_temporal_run(workdir, trains.n_neurons, graphs)
    result = embed(create_tavrnn(config.model, trains.n_neurons), run.params, graphs)
    mu, attention = result.mu, result.attention  # [T, N, L], [T, N, K]
    starts = prep.data.starts
    regimes = window_regimes(starts, config.windows.window_ms, truth)
    found = clusters(mu, cluster_count(truth, trains.n_neurons), config.seed)
    metrics = evaluate(mu, prep, truth, config.seed, found)
    out.mkdir(parents=True, exist_ok=True)
    between = cluster_connectivity(mu, found)  # [T, k(k-1)/2]
    figures = _figures(out, mu, attention, prep.data.adjacency, regimes, truth.regimes,
                       truth.community, found, starts, between)
    a, b = np.triu_indices(int(found.max()) + 1, 1)
    with (out / "windows.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["window", "start_ms", "regime", "observed_links", "attention_entropy"]
                   + [f"link_prob_cluster{i}_{j}" for i, j in zip(a, b)])
        for t in range(len(starts)):
            p = attention[t]  # [N, K]
            ent = float(np.mean(-np.sum(p * np.log(np.maximum(p, 1e-12)), axis=-1)))
            name = truth.regimes[regimes[t]] if regimes[t] >= 0 and truth.regimes else ""
            w.writerow([t, starts[t], name, int(prep.data.adjacency[t].sum() // 2),
                        round(ent, 4)] + [round(float(v), 4) for v in between[t]])
    with (out / "neurons.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["neuron", "community", "cluster"] + [f"mu{j}" for j in range(mu.shape[2])])
        for i in range(mu.shape[1]):
            c = int(truth.community[i]) if truth.community is not None else -1
            w.writerow([i, c, int(found[i])] + [round(float(v), 4) for v in mu.mean(0)[i]])
    lag = attention_by_lag(attention)
    summary = dict(workdir=str(workdir), recording=str(recording), variant=config.model.variant,
                   step=run.step, windows=int(len(starts)), neurons=trains.n_neurons,
                   metrics=metrics, attention_by_lag=[round(float(v), 4) for v in lag],
                   figures=figures)
    (out / "analysis.json").write_text(json.dumps(summary, indent=1))
    (out / "report.md").write_text(_report(summary, lag))
    return summary


def _report(s: Dict, lag: np.ndarray) -> str:
    lines = [f"# {s['variant'].upper()} analysis", "",
             f"Run `{s['workdir']}` (step {s['step']}) on `{s['recording']}`: "
             f"{s['neurons']} neurons, {s['windows']} windows.", "", "## Metrics", ""]
    lines += [f"- {k}: {v:.3f}" for k, v in s["metrics"].items()]
    if s["variant"] == "tavrnn":
        top = int(np.argmax(lag))
        lines += ["", f"Temporal attention puts most weight, on average, {top + 1} window(s) "
                  f"back ({lag[top]:.3f}; by lag 1..{len(lag)}: "
                  + ", ".join(f"{v:.2f}" for v in lag) + ")."]
    lines += ["", "## Figures", ""]
    lines += [f"![{f}](figures/{f})" for f in s["figures"]]
    lines += ["", "Tables: `windows.csv` (per window: regime, observed links, attention "
              "entropy, decoded link probability between embedding clusters), `neurons.csv` "
              "(time-averaged embedding, cluster, true community)."]
    return "\n".join(lines) + "\n"
