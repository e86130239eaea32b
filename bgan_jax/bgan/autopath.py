"""``attention='auto'``: per size bucket, the faster of the sparse and dense paths.

Why: which path is faster depends on the device and on a bucket's graph sizes. On XLA
CPU the sparse path was faster at every size measured (one block and a training batch;
docs/performance.md), so there 'auto' is the sparse path with no trial. On an accelerator the first batch of each bucket runs
one training step in each path (on a copy of the state, after a compiling call) and
the faster is kept for the rest of the run, unless the dense tensors of the bucket
would exceed ``DENSE_TRIAL_BYTES``. Both paths compute the same function of the same
parameters (tests/bgan_jax/bgan/test_model.py), so the choice changes speed, never
results. Each choice and its timings go to metrics.jsonl. Evaluation, analysis and
``jax.pmap`` runs use the sparse path.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from bgan_jax.bgan.config import BGANConfig

DENSE_TRIAL_BYTES = 4 * 2 ** 30  # skip the dense trial above this estimate
Shape = Tuple[int, int]  # (node slots, edge slots) of a padded batch


def batch_shape(batch) -> Shape:
    return int(batch.nodes["kind"].shape[0]), int(batch.edges["kind"].shape[0])


def dense_bytes(config: BGANConfig, n_graphs: int, block: int) -> float:
    """Rough peak of the dense path: ~6 live [G, H, M, M] float32 tensors per mechanism."""
    return 4.0 * 6 * 4 * n_graphs * config.heads * float(block) ** 2


def time_step(step: Callable, state, batch, rng, timer: Callable[[], float] = time.perf_counter
              ) -> float:
    """Seconds of one ``step(state, batch, rng)`` call after a first (compiling) one, each
    on a copy of ``state`` (the step may donate it)."""
    copy = lambda: jax.tree.map(jnp.copy, state)  # noqa: E731
    jax.block_until_ready(step(copy(), batch, rng))
    fresh = copy()
    jax.block_until_ready(fresh)
    t0 = timer()
    jax.block_until_ready(step(fresh, batch, rng))
    return timer() - t0


def choose(steps: Dict[str, Callable], state, batch, rng,
           timer: Callable[[], float] = time.perf_counter) -> Tuple[str, Dict[str, float]]:
    """(the path whose step is fastest on this batch, ms of each path)."""
    ms = {path: 1e3 * time_step(step, state, batch, rng, timer) for path, step in steps.items()}
    return min(ms, key=ms.get), ms


def make_auto_step(step_for: Callable[[BGANConfig], Callable], config: BGANConfig,
                   blocks: Dict[Shape, int], measure: bool,
                   log: Optional[Callable[[Dict], None]] = None,
                   timer: Callable[[], float] = time.perf_counter) -> Callable:
    """``(state, batch, rng) -> (state, stats)`` choosing the path per batch shape.

    ``step_for(model_config)`` returns a jitted train step for that model config;
    ``blocks`` is ``data.bucket_shapes`` of the examples the batches come from; ``measure``
    False (XLA CPU) takes the sparse path without a trial; ``log`` gets one entry per
    bucket (its shape, the path, and the trial times)."""
    chosen: Dict[Shape, Callable] = {}
    sparse = step_for(config.replace(attention="sparse"))

    def pick(state, batch, rng) -> Callable:
        shape = batch_shape(batch)
        block = blocks.get(shape)
        n_graphs = int(batch.n_node.shape[0])
        entry: Dict = {"bucket": list(shape), "attention": "sparse"}
        if not measure:
            entry["why"] = "sparse is faster on this backend at every size measured"
        elif block is None:
            entry["why"] = "no dense block size known for this shape"
        elif dense_bytes(config, n_graphs, block) > DENSE_TRIAL_BYTES:
            entry["why"] = f"dense [G={n_graphs}, M={block}] over the trial memory limit"
        else:
            steps = {"sparse": sparse, "dense": step_for(config.replace(
                attention="dense", dense_graph_nodes=block))}
            path, ms = choose(steps, state, batch, rng, timer)
            entry.update(attention=path, dense_block=block,
                         **{f"{p}_ms": round(v, 3) for p, v in ms.items()})
            chosen[shape] = steps[path]
        chosen.setdefault(shape, sparse)
        if log is not None:
            log(entry)
        return chosen[shape]

    def step(state, batch, rng):
        fn = chosen.get(batch_shape(batch)) or pick(state, batch, rng)
        return fn(state, batch, rng)

    return step


def measures_here() -> bool:
    """Whether 'auto' runs trials on this backend (not on XLA CPU; see module docstring)."""
    return jax.default_backend() != "cpu"
