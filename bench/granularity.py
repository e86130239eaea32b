"""What segment granularity costs: graph sizes and BGAN training time of the same cells
built at section and at segment granularity (``python -m bnnsim cells ... --granularity``).

For each dataset: node and edge counts of the train split's graphs, then one epoch of
the efeatures train step (``TrainConfig`` defaults, ``padding='bucket'``) compiled
(first epoch) and timed (second epoch), in one process, one dataset after the other.

    python bench/granularity.py SECTION_DIR SEGMENT_DIR

The last line is ``segment_cost=<segment epoch s / section epoch s>``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def measure(data_dir, task_name: str = "efeatures", batch_size: int = 8) -> dict:
    import jax

    from bgan_jax.bgan import data as data_lib
    from bgan_jax.bgan.train import (TrainConfig, create_train_state, make_train_step,
                                     measure_stats)

    train = data_lib.load_splits(data_dir, task_name, ("train",))["train"]
    nodes = np.array([e.cg.n_nodes for e in train])  # [cells]
    edges = np.array([e.cg.n_edges for e in train])
    cfg = TrainConfig(task=task_name, batch_size=batch_size)
    stats = measure_stats(cfg, [train])
    steps = [s[0] for s in data_lib.batches(train, batch_size, seed=0, epoch=0)]
    state = create_train_state(cfg, steps[0], stats)
    step = jax.jit(make_train_step(data_lib.task_of(task_name)))
    rng = jax.random.PRNGKey(0)

    def epoch() -> float:
        nonlocal state
        t0 = time.perf_counter()
        for batch in steps:
            state, stats = step(state, batch, rng)
        jax.block_until_ready(stats)
        return time.perf_counter() - t0

    first = epoch()  # compiles every bucket
    return {"cells": len(train), "nodes_median": float(np.median(nodes)),
            "nodes_max": int(nodes.max()), "edges_median": float(np.median(edges)),
            "edges_max": int(edges.max()), "steps": len(steps), "first_epoch_s": first,
            "epoch_s": epoch()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("section", help="real-cell dataset built at section granularity")
    ap.add_argument("segment", help="the same cells built at segment granularity")
    args = ap.parse_args(argv)
    from bgan_jax.runtime.allocator import tune
    tune()  # malloc and the XLA CPU flag as train.py sets them
    print(f"{'granularity':>12}{'cells':>7}{'nodes med':>10}{'max':>7}{'edges med':>10}"
          f"{'max':>7}{'steps':>7}{'1st epoch s':>12}{'epoch s':>9}")
    out = {}
    for name in ("section", "segment"):
        r = out[name] = measure(getattr(args, name))
        print(f"{name:>12}{r['cells']:>7}{r['nodes_median']:>10.0f}{r['nodes_max']:>7}"
              f"{r['edges_median']:>10.0f}{r['edges_max']:>7}{r['steps']:>7}"
              f"{r['first_epoch_s']:>12.1f}{r['epoch_s']:>9.2f}", flush=True)
    print(json.dumps(out))
    print(f"segment_cost={out['segment']['epoch_s'] / out['section']['epoch_s']:.1f}")


if __name__ == "__main__":
    main()
