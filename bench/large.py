"""Large networks: the Potjans-Diesmann microcircuit in NeuroML HDF5 -> CG, and one BGAN
block on graphs of 10^5..10^6 nodes.

Conversion (``graphs.convert_file`` of an ``.nml.h5`` written by
``graphs.synthetic.write_microcircuit`` at 1 %, 10 %, 100 % of the model's 77,169
neurons; connection probabilities kept, so connections grow as scale^2: ~28 k, 2.9 M,
285 M) in both synapse modes. Peer (same run, same file): libNeuroML's own HDF5 reader
``NeuroMLHdf5Loader.load(optimized=True)``, which reads the datasets into numpy and
builds nothing; ``vs peer`` = our conversion time / its load time.

Model: one BGAN block (bench/attention.py's block and synthetic graph, ~10 edges per
node; and the microcircuit's own CG) forward, and forward + backward, sparse path with
compaction, jitted, at 100 k and 1 M nodes; both also with ``pair_chunk`` (the
per-pair work in chunks, recomputed in the backward pass: what a 1 M-node graph needs
to fit). Peer: PyTorch Geometric's TransformerConv block of bench/attention.py on the
same graph (forward + backward); ``vs ours`` = its time / ours for the same pass. Every measurement
runs in a fresh process, so its peak RSS is its own; runs estimated to need more than
``--max-gb`` are skipped and say so.

    python bench/large.py                    # everything (about an hour on 2 cores)
    python bench/large.py --quick            # 1 % and 10 %, model at 100 k nodes
    python bench/large.py --only convert     # or: --only model

HDF5 files are kept in ``--data`` (default ``$BGAN_JAX_CACHE/microcircuit``) and
reused. The last line is ``largest_forward_nodes=<N> largest_backward_nodes=<M>`` (the
largest graphs one block ran forward, and forward + backward, on).
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

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def h5_path(data: Path, scale: float) -> Path:
    return data / f"pd_{scale:g}.nml.h5"


def ensure_file(data: Path, scale: float) -> dict:
    """Write the microcircuit at ``scale`` unless it is there (``.partial`` until done)."""
    from graphs.synthetic import write_microcircuit

    path = h5_path(data, scale)
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        return json.loads(meta.read_text())
    data.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    t0 = time.perf_counter()
    counts = write_microcircuit(tmp, scale, complevel=1)
    counts.update(write_s=time.perf_counter() - t0, bytes=tmp.stat().st_size)
    os.replace(tmp, path)
    meta.write_text(json.dumps(counts))
    return counts


# -- children ----------------------------------------------------------------------------
def child_convert(path: str, mode: str) -> dict:
    from graphs import convert_file
    from graphs.units import unit_table

    unit_table()
    base = _rss_mb()
    t0 = time.perf_counter()
    cg = convert_file(path, synapses=mode)
    dt = time.perf_counter() - t0
    nbytes = sum(getattr(cg, a).nbytes for a in ("node_features", "node_feature_mask",
                                                  "edge_features", "edge_feature_mask",
                                                  "senders", "receivers", "node_name"))
    return {"time_s": dt, "rss_growth_mb": _peak_mb() - base, "nodes": cg.n_nodes,
            "edges": cg.n_edges, "synapse_nodes": cg.nodes_by_kind()["synapse"],
            "cg_mb": nbytes / 2 ** 20}


def child_peer(path: str) -> dict:
    import logging

    from neuroml.loaders import NeuroMLHdf5Loader

    logging.getLogger("neuroml").setLevel(logging.ERROR)
    base = _rss_mb()
    t0 = time.perf_counter()
    doc = NeuroMLHdf5Loader.load(path, optimized=True)
    dt = time.perf_counter() - t0
    n = sum(len(p.connections) for net in doc.networks for p in net.projections)
    return {"time_s": dt, "rss_growth_mb": _peak_mb() - base, "connections_read": n}


def _model_batch(graph: str):
    """``synth:<N>`` (bench/attention.py's graph) or an ``.nml.h5`` path (type mode)."""
    from attention import synthetic_graph

    if graph.startswith("synth:"):
        return synthetic_graph(int(graph.split(":")[1]))
    from graphs import batch_and_pad, convert_file, load_cg, save_cg

    cached = Path(graph).with_suffix(".type.npz")  # converting 285 M connections: minutes
    if not cached.is_file():
        save_cg(convert_file(graph, synapses="type"), cached)
    return batch_and_pad([load_cg(cached)])


def child_model(graph: str, impl: str, backward: bool, chunk=None) -> dict:
    import jax
    import jax.numpy as jnp

    batch = _model_batch(graph)
    base = _rss_mb()
    nodes, edges = int(np.sum(batch.nodes["valid"])), int(np.sum(batch.edges["valid"]))
    if impl == "pyg":
        from attention import run_torch
        res = run_torch(batch, "pyg", 1)
    else:
        import bgan_jax
        from attention import config, time_it

        cfg = config("sparse").replace(backend=bgan_jax.Backend(pair_chunk=chunk))
        stats = bgan_jax.DatasetStats(compaction=bgan_jax.compaction([batch], cfg))
        batch = jax.device_put(batch)
        model = bgan_jax.create_model(cfg, stats)
        params = jax.jit(model.init)(jax.random.key(0), batch)

        def loss(p, b):
            return jnp.mean(jnp.square(model.apply(p, b)["node_embedding"]))

        step = jax.jit(jax.value_and_grad(loss) if backward else loss)
        res = time_it(lambda: jax.block_until_ready(step(params, batch)), 1,
                      device_peak=lambda: None)
    res.update(nodes=nodes, edges=edges, rss_growth_mb=_peak_mb() - base)
    return res


def in_child(args, timeout: float) -> dict:
    from bgan_jax.runtime.allocator import child_env
    env = child_env() if args["kind"] == "model" else None  # malloc as train.py sets it
    try:
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)],
                             capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout {timeout:.0f}s"}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
        return {"error": f"exit {out.returncode}: {tail[:100]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- phases ------------------------------------------------------------------------------
def convert_phase(args, results: list) -> None:
    print(f"{'scale':>6}{'neurons':>9}{'connections':>13}{'file MB':>9}  {'what':<18}"
          f"{'nodes':>11}{'edges':>11}{'s':>9}{'RSS+ MB':>9}  vs peer")
    per_node = {}  # mode -> RSS MB per node at the largest scale done
    for scale in args.scales:
        counts = ensure_file(args.data, scale)
        path = str(h5_path(args.data, scale))
        head = (f"{scale:>6g}{counts['neurons']:>9}{counts['connections']:>13}"
                f"{counts['bytes'] / 2 ** 20:>9.0f}  ")
        peer = in_child({"kind": "peer", "path": path}, args.timeout)
        results.append(dict(phase="convert", scale=scale, what="libneuroml", **counts, **peer))
        if "error" in peer:
            print(head + f"{'libNeuroML load':<18}  {peer['error']}", flush=True)
        else:
            print(head + f"{'libNeuroML load':<18}{'':>11}{'':>11}{peer['time_s']:>9.2f}"
                  f"{peer['rss_growth_mb']:>9.0f}", flush=True)
        for mode in args.modes:
            # connection mode holds a node per connection: ~2 + connections nodes
            expect = (counts["connections"] if mode == "connection" else 0) + 3 * counts["neurons"]
            need = per_node.get(mode, 0) * expect / 1024
            if need > args.max_gb:
                res = {"error": f"skipped: needs ~{need:.0f} GB by the {mode} mode's RSS "
                       f"per node at the last scale (> --max-gb {args.max_gb:g})"}
            else:
                res = in_child({"kind": "convert", "path": path, "mode": mode}, args.timeout)
            results.append(dict(phase="convert", scale=scale, what=mode, **counts, **res))
            if "error" in res:
                print(head + f"{mode:<18}  {res['error']}", flush=True)
                continue
            per_node[mode] = res["rss_growth_mb"] / res["nodes"]
            ratio = res["time_s"] / peer["time_s"] if "time_s" in peer else float("nan")
            print(head + f"{mode:<18}{res['nodes']:>11}{res['edges']:>11}{res['time_s']:>9.2f}"
                  f"{res['rss_growth_mb']:>9.0f}  {ratio:.2f}x", flush=True)


def model_phase(args, results: list) -> dict:
    print(f"{'graph':<22}{'impl':<18}{'pass':<9}{'nodes':>10}{'edges':>11}{'s':>9}"
          f"{'first s':>9}{'RSS+ MB':>9}  vs ours")
    graphs = [f"synth:{n}" for n in args.model_sizes]
    if 1.0 in args.scales and h5_path(args.data, 1.0).is_file():
        graphs.insert(0, str(h5_path(args.data, 1.0)))
    runs = (("bgan", False, None), ("bgan", False, args.pair_chunk), ("bgan", True, None),
            ("bgan", True, args.pair_chunk), ("pyg", True, None))
    per_node = {}  # run -> RSS MB per node at the last graph it ran on
    largest = {}  # pass -> nodes of the largest graph it ran on
    for graph in graphs:
        name = "PD 100% (type)" if graph.endswith(".h5") else f"synthetic {graph[6:]}"
        nodes = int(graph[6:]) if graph.startswith("synth:") else 0
        ours = {}
        for impl, backward, chunk in runs:
            label = impl + (f" chunk {chunk}" if chunk else "")
            what = "fwd+bwd" if backward else "fwd"
            need = per_node.get((impl, backward, chunk), 0) * nodes / 1024
            if need > args.max_gb:
                res = {"error": f"skipped: needs ~{need:.0f} GB at its RSS per node on the "
                       f"previous graph (> --max-gb {args.max_gb:g})"}
            else:
                res = in_child({"kind": "model", "graph": graph, "impl": impl,
                                "backward": backward, "chunk": chunk}, args.timeout)
            results.append(dict(phase="model", graph=name, impl=label, backward=backward, **res))
            if "error" in res:
                print(f"{name:<22}{label:<18}{what:<9}  {res['error']}", flush=True)
                continue
            per_node[(impl, backward, chunk)] = res["rss_growth_mb"] / res["nodes"]
            if impl == "bgan":
                ours.setdefault(what, res["time_s"])
                largest[what] = max(largest.get(what, 0), res["nodes"])
            ratio = (f"{res['time_s'] / ours[what]:.2f}x" if impl == "pyg" and what in ours
                     else "-")
            print(f"{name:<22}{label:<18}{what:<9}{res['nodes']:>10}{res['edges']:>11}"
                  f"{res['time_s']:>9.2f}{res['first_call_s']:>9.1f}"
                  f"{res['rss_growth_mb']:>9.0f}  {ratio}", flush=True)
    return largest


def main(argv=None) -> None:
    from bnnsim.dataset import default_cache_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 %% and 10 %%, model at 100 k")
    ap.add_argument("--scales", type=float, nargs="*")
    ap.add_argument("--modes", nargs="*", default=["connection", "type"],
                    choices=["connection", "type"])
    ap.add_argument("--model-sizes", type=int, nargs="*")
    ap.add_argument("--only", choices=["convert", "model"])
    ap.add_argument("--data", type=Path, default=default_cache_dir() / "microcircuit")
    ap.add_argument("--max-gb", type=float, default=20.0,
                    help="skip runs estimated to need more (from the previous size)")
    ap.add_argument("--pair-chunk", type=int, default=1 << 19,
                    help="pairs per chunk of the chunked forward run (Backend.pair_chunk)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", help="also write every measurement to this JSON file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        c = json.loads(args.child)
        if c["kind"] == "model":
            from bgan_jax.runtime.allocator import keep_heap
            from bgan_jax.runtime.xla_cpu import set_flags
            keep_heap()  # malloc and the XLA CPU flag as train.py sets them
            set_flags()
        out = (child_convert(c["path"], c["mode"]) if c["kind"] == "convert" else
               child_peer(c["path"]) if c["kind"] == "peer" else
               child_model(c["graph"], c["impl"], c["backward"], c.get("chunk")))
        print(json.dumps(out))
        return
    args.scales = args.scales or ([0.01, 0.1] if args.quick else [0.01, 0.1, 1.0])
    args.model_sizes = args.model_sizes or ([100_000] if args.quick else [100_000, 1_000_000])
    import jax
    print(f"# jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30:.0f} GB memory")
    results: list = []
    largest: dict = {}
    if args.only in (None, "convert"):
        convert_phase(args, results)
    if args.only in (None, "model"):
        largest = model_phase(args, results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"largest_forward_nodes={largest.get('fwd', 0)} "
          f"largest_backward_nodes={largest.get('fwd+bwd', 0)}")


if __name__ == "__main__":
    main()
