"""Edge-aware masked multi-head attention: a sparse and a dense path, same numbers.

For allowed pairs p = (j -> i) with edge embedding keys/values ek_p, ev_p
(zero on self rows), per head::

    logit_p = <q_i, k_j + ek_p>           (q already scaled by 1/sqrt(d_h))
    a_p     = softmax of logit over the allowed rows with receiver i
    out_i   = sum_p a_p (v_j + ev_p)

The sparse path works on the P rows directly (segment softmax, O(P) memory).
The dense path computes <q_i, k_j> for all pairs of a block as one matmul and
adds the edge term as a scattered bias; several rows on the same (i, j) cell
(parallel synapses) enter through a log-sum-exp of their biases, so both paths
give the same distribution over rows. Receivers with no allowed row get a
zero output and zero weights, never NaN (finite sentinels and double-where,
so gradients stay finite too).
"""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp

from bgan_jax.masks import DenseLayout, Pairs

_NEG = -1e30  # finite "minus infinity": exp(_NEG - x) underflows to 0 without NaN
_HIGHEST = jax.lax.Precision.HIGHEST  # full float32 matmuls, so dense == sparse on GPU too


def segment_softmax(logits: jnp.ndarray, segment_ids: jnp.ndarray, allowed: jnp.ndarray,
                    num_segments: int) -> jnp.ndarray:
    """Softmax of ``logits`` [P, H] over rows sharing a segment id; 0 where not allowed.

    jraph's ``segment_softmax`` has no mask and gives NaN for empty segments;
    here an empty segment simply has no weight.
    """
    ok = allowed[:, None]  # [P, 1]
    masked = jnp.where(ok, logits, _NEG)
    peak = jax.lax.stop_gradient(jax.ops.segment_max(masked, segment_ids, num_segments))
    unnorm = jnp.exp(jnp.where(ok, logits - peak[segment_ids], 0.0)) * ok  # [P, H]
    total = jax.ops.segment_sum(unnorm, segment_ids, num_segments)  # [S, H]
    return unnorm / jnp.where(total > 0, total, 1.0)[segment_ids]


def _with_self_rows(x: jnp.ndarray, num_nodes: int) -> jnp.ndarray:
    """[E, H, D] edge terms -> [E + N, H, D] with zeros on the self rows."""
    return jnp.concatenate([x, jnp.zeros((num_nodes,) + x.shape[1:], x.dtype)])


def sparse_attention(q, k, v, ek, ev, pairs: Pairs) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """q, k, v [N, H, D]; ek, ev [E, H, D] -> (out [N, H, D], weights [P, H])."""
    n = q.shape[0]
    ek, ev = _with_self_rows(ek, n), _with_self_rows(ev, n)  # [P, H, D]
    s, r = pairs.senders, pairs.receivers
    logits = jnp.sum(q[r] * (k[s] + ek), axis=-1)  # [P, H]
    weights = segment_softmax(logits, r, pairs.allowed, n)  # [P, H]
    out = jax.ops.segment_sum(weights[..., None] * (v[s] + ev), r, n)  # [N, H, D]
    return out, weights


def to_dense(x: jnp.ndarray, layout: DenseLayout) -> jnp.ndarray:
    """[N, ...] -> [B, M, ...]; nodes outside the blocks are dropped."""
    out = jnp.zeros((layout.num_blocks, layout.size) + x.shape[1:], x.dtype)
    return out.at[layout.block, layout.pos].set(x, mode="drop")


def from_dense(x: jnp.ndarray, layout: DenseLayout) -> jnp.ndarray:
    """[B, M, ...] -> [N, ...]; nodes outside the blocks read 0."""
    return x.at[layout.block, layout.pos].get(mode="fill", fill_value=0)


def dense_attention(q, k, v, ek, ev, pairs: Pairs,
                    layout: DenseLayout) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """Same contract as ``sparse_attention``, with [B, H, M, M] score matrices."""
    n, h = q.shape[0], q.shape[1]
    ek, ev = _with_self_rows(ek, n), _with_self_rows(ev, n)  # [P, H, D]
    s, r, ok = pairs.senders, pairs.receivers, pairs.allowed[:, None]  # ok [P, 1]
    cell = (layout.block[r], slice(None), layout.pos[r], layout.pos[s])  # -> [P, H]
    shape = (layout.num_blocks, h, layout.size, layout.size)
    # Edge bias per row, and its log-sum-exp over rows sharing one (i, j) cell.
    bias = jnp.sum(q[r] * ek, axis=-1)  # [P, H]
    top = jnp.full(shape, _NEG, q.dtype).at[cell].max(jnp.where(ok, bias, _NEG), mode="drop")
    top = jax.lax.stop_gradient(top)  # [B, H, M, M]
    rel = jnp.where(ok, bias - top.at[cell].get(mode="fill", fill_value=0), 0.0)  # [P, H]
    mass = jnp.zeros(shape, q.dtype).at[cell].add(jnp.exp(rel) * ok, mode="drop")
    has = mass > 0  # [B, H, M, M] the mask: cells with at least one allowed row
    cell_bias = jnp.where(has, top + jnp.log(jnp.where(has, mass, 1.0)), 0.0)
    qd, kd, vd = to_dense(q, layout), to_dense(k, layout), to_dense(v, layout)  # [B, M, H, D]
    scores = jnp.einsum("bihd,bjhd->bhij", qd, kd, precision=_HIGHEST) + cell_bias
    peak = jax.lax.stop_gradient(jnp.max(jnp.where(has, scores, _NEG), -1, keepdims=True))
    unnorm = jnp.exp(jnp.where(has, scores - peak, 0.0)) * has
    total = jnp.sum(unnorm, -1, keepdims=True)
    attn = unnorm / jnp.where(total > 0, total, 1.0)  # [B, H, M, M]
    out = from_dense(jnp.einsum("bhij,bjhd->bihd", attn, vd, precision=_HIGHEST), layout)
    # Split each cell's weight back over its rows, then add the edge-value term.
    share = jnp.exp(jnp.where(ok, bias - cell_bias.at[cell].get(mode="fill", fill_value=0), 0.0))
    weights = attn.at[cell].get(mode="fill", fill_value=0) * share * ok  # [P, H]
    out = out + jax.ops.segment_sum(weights[..., None] * ev, r, n)  # [N, H, D]
    return out, weights
