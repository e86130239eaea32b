"""Training throughput: graphs/s of the BGAN train step on 1 and on N devices, padding
efficiency of the batches, and a PyTorch Geometric peer on the same batches.

Ours: ``bgan_jax.bgan.train`` train step (forward, backward, AdamW update) with one
BGAN block of the widths of bench/attention.py (hidden 128, 4 heads, edge 32),
jit on one device, ``jax.pmap`` over N devices (fake CPU devices via
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` on CPU; real ones on a
GPU/TPU host), each in a fresh process. One epoch of the default dataset's train
split compiles every bucket, then ``--repeats`` epochs are timed (median).

Peer (same run, same batches, one device): the same block built from PyG
``TransformerConv`` (bench/attention.py), forward + backward per batch (no
optimizer update, so the peer does slightly less work), each batch timed
``--repeats`` times after a warm-up (median), summed over the epoch.

    python bench/train.py [--quick] [--devices 1 4] [--data DIR] [--padding bucket|tight]
                          [--repeats 3] [--rounds 1]

``--rounds N`` runs every child N times, alternating, and keeps each one's fastest
round (the machine's slow phases; bench/attention.py, BENCHMARKS.md eighth pass).

The last line is ``speedup_vs_pyg=<our graphs/s on 1 device / PyG graphs/s>``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _data(path):
    if path:
        return Path(path)
    from bnnsim.dataset import default_dataset
    return default_dataset()


def _epoch(train, batch_size, devices, limit, padding):
    from bgan_jax.bgan import data as data_lib
    out = list(data_lib.batches(train, batch_size, seed=0, epoch=0, devices=devices,
                                padding=padding))
    return out[:limit] if limit else out


def child_ours(data_dir, batch_size: int, limit: int, padding: str, repeats: int) -> dict:
    import flax.jax_utils
    import jax

    import attention as att
    from bgan_jax.bgan import data as data_lib
    from bgan_jax.bgan.train import (TrainConfig, create_train_state, make_train_step,
                                     measure_stats)
    from graphs.batching import padding_efficiency

    devices = jax.local_device_count()
    model = att.config("sparse").replace(reconstruct=False)
    cfg = TrainConfig(model=model, batch_size=batch_size)
    task = data_lib.task_of(cfg.task)
    train = data_lib.load_splits(data_dir, cfg.task, ("train",))["train"]
    stats = measure_stats(cfg, [train], devices)  # as train.py measures it on the dataset
    steps = _epoch(train, batch_size, devices, limit, padding)
    state = create_train_state(cfg, steps[0][0], stats)
    rng = jax.random.PRNGKey(0)
    if devices > 1:
        fn = jax.pmap(make_train_step(task, "d"), axis_name="d")
        state, rng = flax.jax_utils.replicate(state), jax.random.split(rng, devices)
        inputs = [jax.tree.map(lambda *xs: np.stack(xs), *s) for s in steps]
    else:
        fn = jax.jit(make_train_step(task))
        inputs = [s[0] for s in steps]

    def epoch():
        nonlocal state
        for batch in inputs:
            state, stats = fn(state, batch, rng)
        jax.block_until_ready(stats)

    t0 = time.perf_counter()
    epoch()  # compiles every bucket
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    seconds = float(np.median(times))
    graphs = sum(int(np.sum(b.globals["valid"])) for s in steps for b in s)
    eff = [padding_efficiency(b) for s in steps for b in s if np.any(b.nodes["valid"])]
    return {"devices": devices, "platform": jax.devices()[0].platform, "steps": len(steps),
            "graphs": graphs, "seconds": seconds, "first_epoch_s": compile_s,
            "graphs_per_s": graphs / seconds,
            "node_fill": float(np.mean([e["node_fill"] for e in eff])),
            "edge_fill": float(np.mean([e["edge_fill"] for e in eff]))}


def peer_pyg(data_dir, batch_size: int, limit: int, padding: str, repeats: int) -> dict:
    import attention as att
    from bgan_jax.bgan import data as data_lib

    train = data_lib.load_splits(data_dir, "firing_pattern", ("train",))["train"]
    steps = _epoch(train, batch_size, 1, limit, padding)
    seconds = sum(att.run_torch(s[0], "pyg", reps=repeats)["time_s"] for s in steps)
    graphs = sum(int(np.sum(s[0].globals["valid"])) for s in steps)
    return {"graphs": graphs, "seconds": seconds, "graphs_per_s": graphs / seconds}


def in_child(args: list, env: dict) -> dict:
    """A child's result; ``env`` from ``allocator.child_env`` (the child calls ``keep_heap``)."""
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         env=env, timeout=3600)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="first 4 steps of the epoch only")
    ap.add_argument("--devices", type=int, nargs="*", default=[1, 4])
    ap.add_argument("--batch-size", type=int, default=8, help="graphs per device")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed epochs of ours and timed calls per batch of the peer (median)")
    from attention import positive
    ap.add_argument("--rounds", type=positive, default=1,
                    help="run every child this many times, alternating, and keep each one's "
                    "fastest epoch (as bench/attention.py --rounds)")
    ap.add_argument("--data")
    ap.add_argument("--malloc", choices=("tuned", "system"), default="tuned",
                    help="glibc malloc in every child (ours and the peer): as train.py sets it "
                    "(bgan_jax.runtime.allocator) or the system's")
    from bgan_jax.bgan.data import PADDING
    ap.add_argument("--padding", choices=sorted(PADDING), default="bucket",
                    help="batch padding (TrainConfig.padding), the same batches for both")
    ap.add_argument("--child", choices=("ours", "pyg"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    limit = 4 if args.quick else 0
    data_dir = _data(args.data)
    if args.child:
        from bgan_jax.runtime.allocator import keep_heap
        from bgan_jax.runtime.xla_cpu import set_flags
        keep_heap()  # as train.py does; a no-op under BGAN_JAX_MALLOC=system
        set_flags()  # likewise; not under BGAN_JAX_XLA_FLAGS=system
    if args.child == "ours":
        print(json.dumps(child_ours(data_dir, args.batch_size, limit, args.padding,
                                    args.repeats)))
        return
    if args.child == "pyg":
        print(json.dumps(peer_pyg(data_dir, args.batch_size, limit, args.padding,
                                  args.repeats)))
        return
    print(f"# data {data_dir}; {args.batch_size} graphs per device; {os.cpu_count()} CPU cores; "
          f"malloc {args.malloc}; padding {args.padding}; median of {args.repeats} timed epochs "
          "(ours) and calls per batch (PyG)")
    print(f"{'impl':>12}{'devices':>9}{'steps':>7}{'graphs':>8}{'epoch s':>9}{'1st epoch s':>12}"
          f"{'graphs/s':>10}{'node fill':>10}{'edge fill':>10}")
    common = ["--batch-size", str(args.batch_size), "--data", str(data_dir),
              "--padding", args.padding, "--repeats", str(args.repeats)] + \
        (["--quick"] if args.quick else [])
    from bgan_jax.runtime.allocator import child_env
    base_env = child_env(args.malloc, {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"})
    import jax
    from attention import fastest, rounds_text
    ours, peer = {}, None
    for rnd in range(args.rounds):  # alternating, each keeps its fastest round
        for d in args.devices:
            env = dict(base_env)
            if d > 1 and jax.default_backend() == "cpu":
                env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={d}"
            ours[d] = fastest(ours.get(d), in_child(["--child", "ours"] + common, env), "seconds")
        peer = fastest(peer, in_child(["--child", "pyg"] + common, base_env), "seconds")
    for d, r in ours.items():
        if "error" in r:
            print(f"{'bgan_jax':>12}{d:>9}  error: {r['error']}")
            continue
        print(f"{'bgan_jax':>12}{r['devices']:>9}{r['steps']:>7}{r['graphs']:>8}"
              f"{r['seconds']:>9.2f}{r['first_epoch_s']:>12.1f}{r['graphs_per_s']:>10.1f}"
              f"{r['node_fill']:>10.2f}{r['edge_fill']:>10.2f}{rounds_text(r, args.rounds, 1, 2)}",
              flush=True)
    ours1 = ours.get(1) if "seconds" in ours.get(1, {}) else None
    if "error" in peer:
        print(f"{'pyg':>12}  error: {peer['error']}")
        print("speedup_vs_pyg=nan")
        return
    print(f"{'pyg':>12}{1:>9}{'':>7}{peer['graphs']:>8}{peer['seconds']:>9.2f}{'':>12}"
          f"{peer['graphs_per_s']:>10.1f}{'':>20}{rounds_text(peer, args.rounds, 1, 2)}")
    speed = ours1["graphs_per_s"] / peer["graphs_per_s"] if ours1 else float("nan")
    print(f"speedup_vs_pyg={speed:.2f}")


if __name__ == "__main__":
    main()
