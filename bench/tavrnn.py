"""TAVRNN training step: ours (JAX, one jitted lax.scan over all windows) vs a PyTorch
Geometric peer (the same equations with PyG ``GCNConv`` and a Python loop over
windows, as the reference VGRNN code is written).

One step = forward over every window, ELBO, backward through time, Adam update,
for the three variants (tavrnn, vgrnn, vgae). Recordings: synthetic spike trains
of N neurons in 3 communities with shared events (numpy, no simulation), 72 s,
default windows (10 ms bins, 2 s every 1 s: 71 windows). Time = median of 5
steps after 2 warm-up steps.

    python bench/tavrnn.py [--neurons 60 240] [--quick]

The last line is ``speedup_vs_pyg=<geometric mean over rows of peer s / ours s>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def synthetic(n: int, seed: int = 0, duration: float = 72000.0):
    """Spike trains: each neuron fires at 5 Hz alone plus on 60% of its community's
    10 Hz shared events."""
    from bgan_jax.tavrnn.spikes import from_arrays

    rng = np.random.default_rng(seed)
    times, ids = [], []
    community = np.arange(n) * 3 // n
    events = [rng.uniform(0, duration, int(10 * duration / 1e3)) for _ in range(3)]
    for i in range(n):
        own = rng.uniform(0, duration, rng.poisson(5 * duration / 1e3))
        shared = events[community[i]][rng.uniform(size=events[community[i]].size) < 0.6]
        t = np.concatenate([own, shared + rng.uniform(0, 3, shared.size)])
        t = t[t < duration]
        times.append(t)
        ids.append(np.full(t.size, i))
    return from_arrays(np.concatenate(times), np.concatenate(ids), n, duration)


def time_steps(step, warmup=2, reps=5) -> float:
    for _ in range(warmup):
        step()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def ours(prep, variant: str, n: int) -> float:
    import jax
    import jax.numpy as jnp

    from bgan_jax.tavrnn import model as T
    from bgan_jax.tavrnn import train as temporal

    cfg = temporal.TemporalConfig(model=T.TAVRNNConfig(variant=variant))
    model = T.create_tavrnn(cfg.model, n)
    graphs = jax.tree.map(jnp.asarray, prep.graphs)
    adj, mask = jnp.asarray(prep.adjacency), jnp.asarray(prep.loss_mask)
    opt = temporal.make_optimizer(cfg)
    params = temporal.init_params(model, graphs, 0)
    state = [params, opt.init(params)]
    step_fn = temporal.make_train_step(model, opt)
    key = jax.random.key(1)

    def step():
        p, o, stats = step_fn(state[0], state[1], graphs, adj, mask, key)
        jax.block_until_ready(stats["loss"])
        state[:] = [p, o]

    return time_steps(step)


def peer(prep, variant: str, n: int) -> float:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch_geometric.nn import GCNConv

    torch.manual_seed(0)
    h_dim, l_dim, span = 32, 8, 8
    recurrent, attention = variant != "vgae", variant == "tavrnn"
    g = prep.graphs
    feats = torch.tensor(np.asarray(g.nodes))  # [T, P, F]
    edges = [torch.tensor(np.stack([g.senders[t][:g.n_edge[t][0]], g.receivers[t][:g.n_edge[t][0]]]),
                          dtype=torch.long) for t in range(feats.shape[0])]
    adj = torch.tensor(prep.adjacency)
    mask = torch.tensor(prep.loss_mask)

    class Peer(nn.Module):
        def __init__(self):
            super().__init__()
            f = feats.shape[-1]
            self.phi_x = nn.Linear(f, h_dim)
            self.enc = GCNConv(2 * h_dim if recurrent else h_dim, h_dim)
            self.mean, self.std = GCNConv(h_dim, l_dim), GCNConv(h_dim, l_dim)
            self.prior = nn.Linear(h_dim, h_dim)
            self.prior_mean, self.prior_std = nn.Linear(h_dim, l_dim), nn.Linear(h_dim, l_dim)
            self.phi_z = nn.Linear(l_dim, h_dim)
            self.gx = nn.ModuleList([GCNConv(2 * h_dim, h_dim) for _ in range(3)])
            self.gh = nn.ModuleList([GCNConv(h_dim, h_dim, bias=False) for _ in range(3)])
            self.q, self.k, self.v = (nn.Linear(h_dim, h_dim) for _ in range(3))

        def forward(self):
            p = feats.shape[1]
            h = torch.zeros(p, h_dim)
            memory = torch.zeros(span, n, h_dim)
            loss = 0.0
            for t in range(feats.shape[0]):
                e = edges[t]
                x = F.relu(self.phi_x(feats[t]))
                if attention:
                    filled = torch.arange(span) >= span - t
                    s = torch.einsum("nh,snh->ns", self.q(h[:n]), self.k(memory)) / h_dim ** 0.5
                    w = torch.softmax(s.masked_fill(~filled[None], -1e9), -1) * filled[None]
                    c = torch.einsum("ns,snh->nh", w, self.v(memory))
                    h = torch.tanh(h + torch.cat([c, c, torch.zeros(p - 2 * n, h_dim)]))
                enc = F.relu(self.enc(torch.cat([x, h], -1) if recurrent else x, e))
                mu, std = self.mean(enc, e), F.softplus(self.std(enc, e)) + 1e-4
                if recurrent:
                    pr = F.relu(self.prior(h))
                    mu0, std0 = self.prior_mean(pr), F.softplus(self.prior_std(pr)) + 1e-4
                else:
                    mu0, std0 = torch.zeros_like(mu), torch.ones_like(std)
                z = mu + std * torch.randn_like(std)
                if recurrent:
                    xin = torch.cat([x, F.relu(self.phi_z(z))], -1)
                    r = torch.sigmoid(self.gx[0](xin, e) + self.gh[0](h, e))
                    u = torch.sigmoid(self.gx[1](xin, e) + self.gh[1](h, e))
                    cand = torch.tanh(self.gx[2](xin, e) + self.gh[2](r * h, e))
                    h = u * h + (1 - u) * cand
                    memory = torch.cat([memory[1:], h[None, n:2 * n]])
                zc = z[:n]
                labels = torch.maximum(adj[t], torch.eye(n))
                m = mask[t]
                pairs, pos = m.sum(), (labels * m).sum()
                logits = zc @ zc.T
                bce = F.binary_cross_entropy_with_logits(
                    logits, labels, weight=m, pos_weight=(pairs - pos) / pos.clamp(min=1),
                    reduction="sum")
                kl = (2 * torch.log(std0[:n]) - 2 * torch.log(std[:n])
                      + (std[:n] ** 2 + (mu[:n] - mu0[:n]) ** 2) / std0[:n] ** 2 - 1)
                loss = loss + pairs / (2 * (pairs - pos)) * bce / pairs \
                    + 0.5 / n * kl.sum(-1).mean()
            return loss

    model = Peer()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step():
        opt.zero_grad()
        model().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()

    return time_steps(step)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--neurons", type=int, nargs="+", default=[60, 240])
    p.add_argument("--quick", action="store_true", help="60 neurons only")
    args = p.parse_args(argv)
    from bgan_jax.tavrnn import train as temporal

    sizes = [60] if args.quick else args.neurons
    print("| neurons | windows | variant | ours s/step | PyG peer s/step | speedup |")
    print("|---:|---:|---|---:|---:|---:|")
    ratios = []
    for n in sizes:
        prep = temporal.prepare(synthetic(n), temporal.TemporalConfig())
        for variant in ("tavrnn", "vgrnn", "vgae"):
            a, b = ours(prep, variant, n), peer(prep, variant, n)
            ratios.append(b / a)
            print(f"| {n} | {prep.data.starts.size} | {variant} | {a:.4f} | {b:.4f} | "
                  f"{b / a:.2f} |", flush=True)
    print(f"speedup_vs_pyg={float(np.exp(np.mean(np.log(ratios)))):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
