"""One BGAN block, forward + backward, against PyTorch peers doing the same block.

Ours: ``bgan_jax`` with ``num_blocks=1`` (node/edge embedding, NSA = GANlow +
GANup + gated top-down, BMSA = MaskA + MaskB heads, MLP, final LayerNorm),
jit-compiled ``value_and_grad`` of a scalar loss, in the sparse and in the
dense attention path; the masks are derived inside the step from edge kinds,
as in training.

Peers (same run, same graph, same hidden size, heads and edge-embedding size,
same block layout and the same allowed pairs per mechanism, given to them
precomputed):
* ``pyg``: PyTorch Geometric ``TransformerConv`` (edge_dim, no root weight) for
  each of the four attentions; edge features enter keys and values.
* ``bgan_masked``: ours without ``bgan_jax.compaction``, every
  mechanism over all N nodes and E edge rows with a mask (what compacting each
  mechanism's rows and nodes saves);
* ``bgan_chunked``: ours with compaction and ``pair_chunk = 65536`` (each
  mechanism's per-pair work in chunks, recomputed in the backward pass: less
  memory for some more time);
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` with a boolean
  [N, N] mask per mechanism (dense); a boolean mask cannot carry edge features,
  so this peer does less work than ours.

Graph: a single synthetic CG of N nodes (CLS, neurons with soma + 3-dendrite
chains, one synapse node per neuron, gap junctions added until there are ~10
edges per node). Every (implementation, size) runs in a fresh process so its
peak RSS growth is its own. Dense runs are skipped above ``--dense-max``.

    python bench/attention.py            # 1k .. 64k nodes
    python bench/attention.py --quick    # 500 and 1k nodes, under a minute
    python bench/attention.py --sizes 1000 4000 16000 --impls bgan_sparse pyg --rounds 3

``--rounds N`` measures every implementation N times, alternating, and keeps each one's
fastest round (every round's time is printed): this shared machine goes through slow
phases of several seconds in which the same step takes ~1.6x as long, and a single run
can put one implementation in one (BENCHMARKS.md, eighth pass).

The last line is ``speedup_vs_pyg=<PyG time / our sparse time>`` at the
largest size both ran (above 1 means bgan_jax is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]

HIDDEN, HEADS, EDGE_HIDDEN = 128, 4, 32
IMPLS = ("bgan_sparse", "bgan_masked", "bgan_chunked", "bgan_dense", "pyg", "sdpa")
PAIR_CHUNK = 1 << 16  # bgan_chunked: Backend.pair_chunk


def synthetic_graph(n_nodes: int, edges_per_node: float = 10.0, seed: int = 0):
    """A padded one-graph batch of about ``n_nodes`` nodes (numpy, built vectorized)."""
    from graphs import batch_and_pad
    from graphs.cg import CG
    from graphs.schema import EDGE_COLUMNS, NODE_COLUMNS, EdgeKind, NodeKind

    rng = np.random.default_rng(seed)
    k = max((n_nodes - 1) // 6, 2)  # neurons: 5 nodes each + 1 synapse node
    base = 1 + 5 * np.arange(k)  # neuron node index
    kind = np.concatenate([[NodeKind.CLS], np.tile([NodeKind.NEURON, NodeKind.SOMA] +
                                                   [NodeKind.DENDRITE] * 3, k),
                           np.full(k, NodeKind.SYNAPSE)]).astype(np.int32)
    n = kind.shape[0]
    nid = np.full(n, -1, np.int32)
    nid[1:1 + 5 * k] = np.repeat(base, 5)
    comp = base[:, None] + np.arange(1, 5)  # [k, 4] soma, d1, d2, d3
    syn = 1 + 5 * k + np.arange(k)
    post = comp[rng.integers(0, k, k), rng.integers(0, 4, k)]
    edges = []  # (senders, receivers, kind, forward)

    def pair(a, b, kind_, a_fwd):
        edges.append((a, b, np.full(a.shape, kind_), np.full(a.shape, a_fwd)))
        edges.append((b, a, np.full(a.shape, kind_), np.full(a.shape, not a_fwd)))

    pair(base, np.zeros(k, int), EdgeKind.CLS, True)
    for c in range(4):
        pair(comp[:, c], base, EdgeKind.MEMBERSHIP, True)
    for c in range(1, 4):  # dendrite chain towards the soma
        pair(comp[:, c], comp[:, c - 1], EdgeKind.AXIAL, True)
    edges.append((comp[:, 0], syn, np.full(k, EdgeKind.SYNAPTIC), np.ones(k, bool)))
    edges.append((syn, post, np.full(k, EdgeKind.SYNAPTIC), np.ones(k, bool)))
    so_far = sum(e[0].shape[0] for e in edges)
    gaps = max(int((edges_per_node * n - so_far) // 2), 0)
    a = comp.reshape(-1)[rng.integers(0, 4 * k, gaps)]
    b = comp.reshape(-1)[rng.integers(0, 4 * k, gaps)]
    edges.append((a, b, np.full(gaps, EdgeKind.GAP), np.ones(gaps, bool)))
    edges.append((b, a, np.full(gaps, EdgeKind.GAP), np.ones(gaps, bool)))
    snd, rcv, ekind, fwd = (np.concatenate([np.asarray(e[i]) for e in edges]) for i in range(4))
    ne = snd.shape[0]
    known = (rng.uniform(size=(n, len(NODE_COLUMNS))) < 0.3).astype(np.float32)
    ef = rng.normal(size=(ne, len(EDGE_COLUMNS))).astype(np.float32)
    cg = CG(node_features=rng.normal(size=known.shape).astype(np.float32) * known,
            node_feature_mask=known, node_kind=kind, neuron_id=nid,
            node_name=np.array([""] * n), senders=snd.astype(np.int32),
            receivers=rcv.astype(np.int32), edge_kind=ekind.astype(np.int32),
            edge_forward=fwd.astype(np.int32), edge_features=ef,
            edge_feature_mask=np.ones_like(ef))
    return batch_and_pad([cg])


def config(path: str):
    import bgan_jax
    return bgan_jax.BGANConfig(hidden=HIDDEN, heads=HEADS, num_blocks=1, edge_hidden=EDGE_HIDDEN,
                               attention=path, reconstruct=False)


def run_ours(batch, path: str, reps: int, compact: bool = True, chunk=None) -> dict:
    import jax
    import jax.numpy as jnp

    import bgan_jax
    cfg = config(path).replace(backend=bgan_jax.Backend(pair_chunk=chunk))
    stats = bgan_jax.DatasetStats(  # each mechanism on its own rows and nodes, as training sets them
        compaction=bgan_jax.compaction([batch], cfg) if compact else None)
    batch = jax.device_put(batch)
    model = bgan_jax.create_model(cfg, stats)
    params = jax.jit(model.init)(jax.random.key(0), batch)

    @jax.jit
    def step(params, batch):
        def loss(p):
            return jnp.mean(jnp.square(model.apply(p, batch)["node_embedding"]))
        return jax.value_and_grad(loss)(params)

    def once():
        jax.block_until_ready(step(params, batch))

    return time_it(once, reps, device_peak=_jax_peak)


def _jax_peak():
    import jax
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def mechanism_pairs(batch):
    """Allowed (senders, receivers, rows) of the four mechanisms as numpy, self pairs
    included (row E + n = node n attending to itself, which has no edge)."""
    from bgan_jax.bgan import masks
    kinds = config("sparse").signal_edge_kinds
    e = batch.senders.shape[0]
    out = {}
    for name, fn in (("ganlow", masks.ganlow_pairs), ("ganup", masks.ganup_pairs),
                     ("mask_a", lambda g: masks.forward_pairs(g, kinds)),
                     ("mask_b", lambda g: masks.backward_pairs(g, kinds))):
        p = fn(batch)
        ok, me = np.flatnonzero(np.asarray(p.allowed)), np.flatnonzero(np.asarray(p.self_allowed))
        out[name] = (np.concatenate([np.asarray(p.senders)[ok], me]),
                     np.concatenate([np.asarray(p.receivers)[ok], me]),
                     np.concatenate([ok, e + me]))
    return out


def run_torch(batch, impl: str, reps: int) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n = batch.nodes["kind"].shape[0]
    pairs = mechanism_pairs(batch)
    x_in = torch.tensor(np.concatenate([batch.nodes["features"] * batch.nodes["feature_mask"],
                                        batch.nodes["feature_mask"]], -1), device=dev)
    e_in = torch.tensor(np.concatenate([batch.edges["features"], batch.edges["feature_mask"]], -1),
                        device=dev)
    nid = torch.tensor(np.maximum(batch.nodes["neuron_id"], 0), device=dev, dtype=torch.long)
    is_comp = torch.tensor(np.isin(batch.nodes["kind"], [2, 3, 4]), device=dev)[:, None]

    def tensors(name):
        s, r, row = pairs[name]
        return (torch.tensor(np.stack([s, r]), device=dev, dtype=torch.long),
                torch.tensor(row, device=dev, dtype=torch.long))

    graph = {name: tensors(name) for name in pairs}

    class PygAttention(nn.Module):
        def __init__(self, heads):
            super().__init__()
            from torch_geometric.nn import TransformerConv
            self.conv = TransformerConv(HIDDEN, HIDDEN // HEADS, heads=heads, edge_dim=EDGE_HIDDEN,
                                        root_weight=False)

        def forward(self, x, edge_emb, name):
            index, row = graph[name]
            return self.conv(x, index, edge_emb[row])

    class SdpaAttention(nn.Module):
        def __init__(self, heads):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(HIDDEN, 3 * heads * (HIDDEN // HEADS))

        def forward(self, x, edge_emb, name):
            q, k, v = self.qkv(x).view(n, 3, self.heads, -1).permute(1, 2, 0, 3)
            out = torch.nn.functional.scaled_dot_product_attention(
                q[None], k[None], v[None], attn_mask=masks[name])
            return out[0].permute(1, 0, 2).reshape(n, -1)

    masks = {}
    if impl == "sdpa":
        for name, (index, _) in graph.items():
            m = torch.zeros(n, n, dtype=torch.bool, device=dev)
            m[index[1], index[0]] = True
            masks[name] = m
    attention = PygAttention if impl == "pyg" else SdpaAttention

    class Mechanism(nn.Module):
        def __init__(self, heads):
            super().__init__()
            self.attn, self.out = attention(heads), nn.Linear(heads * (HIDDEN // HEADS), HIDDEN,
                                                              bias=False)

        def forward(self, x, edge_emb, name):
            return self.out(self.attn(x, edge_emb, name))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.node_embed = nn.Linear(x_in.shape[1], HIDDEN)
            self.edge_embed = nn.Linear(e_in.shape[1], EDGE_HIDDEN)
            self.ln = nn.ModuleList([nn.LayerNorm(HIDDEN) for _ in range(4)])
            self.low, self.up = Mechanism(HEADS), Mechanism(HEADS)
            self.gate, self.down = nn.Linear(2 * HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN, bias=False)
            self.a, self.b = attention(HEADS // 2), attention(HEADS - HEADS // 2)
            self.mix = nn.Linear(HIDDEN, HIDDEN, bias=False)
            self.mlp = nn.Sequential(nn.Linear(HIDDEN, 2 * HIDDEN), nn.GELU(), nn.Linear(2 * HIDDEN, HIDDEN))

        def forward(self):
            h = self.node_embed(x_in)
            edge_emb = nn.functional.gelu(self.edge_embed(e_in))
            edge_emb = torch.cat([edge_emb, edge_emb.new_zeros(n, EDGE_HIDDEN)])  # self rows
            y = self.ln[0](h)
            x = y + self.low(y, edge_emb, "ganlow")
            up = self.up(x, edge_emb, "ganup")
            parent = torch.where(is_comp, (x + up)[nid], 0.0)
            gate = torch.sigmoid(self.gate(torch.cat([x, parent], -1)))
            h = h + (x - y) + up + torch.where(is_comp, gate * self.down(parent), 0.0)
            y = self.ln[1](h)
            h = h + self.mix(torch.cat([self.a(y, edge_emb, "mask_a"), self.b(y, edge_emb, "mask_b")], -1))
            h = h + self.mlp(self.ln[2](h))
            return self.ln[3](h)

    block = Block().to(dev)

    def once():
        block.zero_grad(set_to_none=True)
        loss = block().square().mean()
        loss.backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def peak():
        return torch.cuda.max_memory_allocated() if dev.type == "cuda" else None

    return time_it(once, reps, device_peak=peak)


def time_it(once, reps: int, device_peak) -> dict:
    t0 = time.perf_counter()
    once()  # compile / warm-up
    first = time.perf_counter() - t0
    once()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return {"time_s": float(np.median(times)), "first_call_s": first,
            "device_peak_bytes": device_peak()}


def child(impl: str, n_nodes: int, reps: int) -> dict:
    """One measurement in this (fresh) process: time, RSS growth, device peak."""
    from bgan_jax.runtime import allocator, xla_cpu
    allocator.keep_heap()  # as train.py does; a no-op under BGAN_JAX_MALLOC=system
    xla_cpu.set_flags()  # likewise; not under BGAN_JAX_XLA_FLAGS=system
    batch = synthetic_graph(n_nodes)
    rss0 = _current_rss_mb()
    if impl == "bgan_masked":  # every mechanism over all E rows with a mask (no compaction)
        res = run_ours(batch, "sparse", reps, compact=False)
    elif impl == "bgan_chunked":  # + per-pair work in chunks, recomputed in the backward
        res = run_ours(batch, "sparse", reps, chunk=PAIR_CHUNK)
    elif impl.startswith("bgan"):
        res = run_ours(batch, impl.split("_")[1], reps)
    else:
        res = run_torch(batch, impl, reps)
    res.update(nodes=int(np.sum(batch.nodes["valid"])), edges=int(np.sum(batch.edges["valid"])),
               rss_growth_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0)
    return res


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def in_child(impl: str, n_nodes: int, reps: int, timeout: float, malloc: str = "tuned") -> dict:
    """One measurement in a fresh process; ``malloc`` as ``allocator.child_env`` (ours
    and the peers' alike)."""
    from bgan_jax.runtime.allocator import child_env
    try:
        out = subprocess.run([sys.executable, __file__, "--child", impl, str(n_nodes), str(reps)],
                             capture_output=True, text=True, timeout=timeout,
                             env=child_env(malloc))
    except subprocess.TimeoutExpired:
        return {"error": f"timeout {timeout:.0f}s"}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["killed"])[-1]
        return {"error": f"exit {out.returncode}: {tail[:80]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def fastest(kept: Optional[dict], res: dict, key: str = "time_s") -> dict:
    """Of two rounds' results for one (implementation, size), the faster (smaller
    ``key``), with every round's ``key`` in ``round_times_s`` (an error only when no
    round has one). bench/train.py keeps its epochs' rounds with it too."""
    times = (kept or {}).get("round_times_s", []) + ([res[key]] if key in res else [])
    best = min((r for r in (kept, res) if r and key in r), key=lambda r: r[key], default=res)
    return {**best, "round_times_s": times} if times else best


def rounds_text(res: dict, rounds: int, scale: float = 1e3, digits: int = 1) -> str:
    """Every round's time (seconds x ``scale``), when there was more than one round."""
    if rounds < 2:
        return ""
    return "  rounds " + " / ".join(f"{t * scale:.{digits}f}" for t in res["round_times_s"])


def positive(text: str) -> int:
    """argparse type of ``--rounds``: an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def dense_bytes(n: int) -> float:
    """Rough peak of the dense path on one graph of ``n`` nodes (the estimate
    ``attention='auto'`` uses to skip its dense trial)."""
    from bgan_jax.bgan.autopath import dense_bytes as estimate
    return estimate(config("dense"), 1, n)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="500 and 1k nodes only")
    ap.add_argument("--sizes", type=int, nargs="*", help="node counts to run")
    ap.add_argument("--impls", nargs="*", default=list(IMPLS), choices=IMPLS)
    ap.add_argument("--dense-max-gb", type=float, default=8.0,
                    help="skip dense runs whose estimated peak exceeds this")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--rounds", type=positive, default=1,
                    help="measure every implementation this many times, alternating, and keep "
                    "each one's fastest round (this shared machine has slow phases lasting "
                    "seconds; a single run can land one implementation in one)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", help="also write every measurement to this JSON file")
    ap.add_argument("--malloc", choices=("tuned", "system"), default="tuned",
                    help="glibc malloc in every child (ours and peers): as train.py sets it "
                    "(bgan_jax.runtime.allocator) or the system's")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        impl, n, reps = args.child
        print(json.dumps(child(impl, int(n), int(reps))))
        return
    sizes = args.sizes or ([500, 1000] if args.quick else [1000, 4000, 16000, 64000])
    reps = args.reps or (3 if args.quick else 5)
    import jax
    import torch
    print(f"# one BGAN block fwd+bwd, hidden {HIDDEN}, heads {HEADS}, edge hidden {EDGE_HIDDEN}, "
          f"~10 edges/node; jax {jax.__version__} on {jax.devices()[0].device_kind}, torch "
          f"{torch.__version__}, {os.cpu_count()} CPU cores, malloc {args.malloc}")
    print(f"{'impl':<12}{'nodes':>9}{'edges':>10}{'ms':>11}{'first s':>9}{'RSS+ MB':>9}"
          f"{'dev MB':>9}  vs ours sparse")
    results = {}
    for n, rnd, impl in ((n, rnd, impl) for n in sizes for rnd in range(args.rounds)
                         for impl in args.impls):
        dense = impl in ("bgan_dense", "sdpa")
        if dense and dense_bytes(n) > args.dense_max_gb * 2 ** 30:
            res = {"error": "skipped (dense estimate over --dense-max-gb)"}
        else:
            res = in_child(impl, n, reps, args.timeout, args.malloc)
        results[(impl, n)] = res = fastest(results.get((impl, n)), res)
        if args.json:  # after every measurement, so a run stopped early keeps its rows
            Path(args.json).write_text(json.dumps(
                [dict(impl=i, size=m, **r) for (i, m), r in results.items()], indent=1))
        if rnd < args.rounds - 1:
            continue
        ours = results.get(("bgan_sparse", n), {}).get("time_s")
        if "error" in res:
            print(f"{impl:<12}{n:>9}  {res['error']}", flush=True)
            continue
        dev = res["device_peak_bytes"]
        ratio = f"{res['time_s'] / ours:.2f}x" if ours else "-"
        print(f"{impl:<12}{res['nodes']:>9}{res['edges']:>10}{res['time_s'] * 1e3:>11.1f}"
              f"{res['first_call_s']:>9.1f}{res['rss_growth_mb']:>9.0f}"
              f"{(dev / 2 ** 20 if dev else float('nan')):>9.0f}  {ratio}"
              f"{rounds_text(res, args.rounds)}", flush=True)
    common = [n for n in sizes if "time_s" in results.get(("pyg", n), {})
              and "time_s" in results.get(("bgan_sparse", n), {})]
    if common:
        n = common[-1]
        speedup = results[("pyg", n)]["time_s"] / results[("bgan_sparse", n)]["time_s"]
        print(f"speedup_vs_pyg={speedup:.2f}")
    else:
        print("speedup_vs_pyg=nan")


if __name__ == "__main__":
    main()
