"""Edge-aware masked multi-head attention: a sparse and a dense path, same numbers.

For allowed pairs p = (j -> i) with edge key/value terms ek_p, ev_p (the
projected edge embedding of the pair's edge), per head::

    logit_p = <q_i, k_j + ek_p>           (q already scaled by 1/sqrt(d_h))
    a_p     = softmax of logit over the allowed pairs with receiver i
    out_i   = sum_p a_p (v_j + ev_p)

Self pairs (node n attending to itself) carry no edge and are computed
densely, without gathers; weights come back as ``AttentionWeights(edges [E, H],
self [N, H])``, aligned with the batch's edge arrays.

The sparse path works on the edge rows directly (segment softmax, O(P) memory);
the model calls it as ``projected_sparse_attention``, which takes the pairs' edge
embeddings and the two edge kernels and projects them itself, so its backward pass
can run the projections' gradients for keys and values as one dot each way; on a
CPU backend it runs as the C++ kernel of ``pair_kernel`` instead (same numbers).
The dense path computes <q_i, k_j> for all pairs of a block as one matmul and
adds the edge term as a scattered bias; several rows on the same (i, j) cell
(parallel synapses) enter through a log-sum-exp of their biases, so both paths
give the same distribution over rows. Receivers with no allowed row get a
zero output and zero weights, never NaN (finite sentinels and double-where,
so gradients stay finite too).
"""

from __future__ import annotations

from typing import NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from bgan_jax.bgan import pair_kernel
from bgan_jax.bgan.masks import DenseLayout, Pairs

_NEG = -1e30  # finite "minus infinity": exp(_NEG - x) underflows to 0 without NaN
_HIGHEST = jax.lax.Precision.HIGHEST  # full float32 matmuls, so dense == sparse on GPU too


class AttentionWeights(NamedTuple):
    """Weights of one mechanism, aligned with the batch: per edge row and per self pair."""

    edges: jnp.ndarray  # [E, H] weight of edge e's pair (0 where the edge is not used)
    self: jnp.ndarray  # [N, H] weight of node n attending to itself


def pair_softmax(edge_logits: jnp.ndarray, self_logits: jnp.ndarray,
                 pairs: Pairs) -> AttentionWeights:
    """Softmax per receiver over its allowed edge rows [E, H] and self pair [N, H].

    Numerically stable (per-receiver max); rows that are not allowed get 0, and
    a receiver with nothing allowed gets all zeros. jraph's ``segment_softmax``
    has no mask and gives NaN for empty segments, hence this one.
    """
    n, r = self_logits.shape[0], pairs.receivers
    ok_e, ok_s = pairs.allowed[:, None], pairs.self_allowed[:, None]  # [E, 1], [N, 1]
    peak = jnp.maximum(jax.ops.segment_max(jnp.where(ok_e, edge_logits, _NEG), r, n),
                       jnp.where(ok_s, self_logits, _NEG))
    peak = jax.lax.stop_gradient(peak)  # [N, H]; the softmax does not depend on it
    un_e = jnp.exp(jnp.where(ok_e, edge_logits - peak[r], 0.0)) * ok_e  # [E, H]
    un_s = jnp.exp(jnp.where(ok_s, self_logits - peak, 0.0)) * ok_s  # [N, H]
    total = jax.ops.segment_sum(un_e, r, n) + un_s
    total = jnp.where(total > 0, total, 1.0)
    return AttentionWeights(edges=un_e / total[r], self=un_s / total)


def sparse_attention(q, k, v, ek, ev, pairs: Pairs) -> Tuple[jnp.ndarray, AttentionWeights]:
    """q, k, v [N, H, D]; edge key/value terms ek, ev [P, H, D] of the pair rows
    -> out [N, H, D], weights (edges [P, H], self [N, H])."""
    out, w_edges, w_self = _edge_attention(q, k, v, ek, ev, pairs.senders, pairs.receivers,
                                           pairs.allowed, pairs.self_allowed)
    return out, AttentionWeights(edges=w_edges, self=w_self)


def projected_sparse_attention(q, k, v, edge_emb, w_key, w_value, pairs: Pairs,
                               cpu_kernel: bool = False
                               ) -> Tuple[jnp.ndarray, AttentionWeights]:
    """``sparse_attention`` with the edge key/value projections inside: edge_emb [P, de]
    the pairs' edge embeddings, w_key, w_value [de, H * D]. Same numbers; its backward
    pass runs each projection's two gradient dots once for keys and values together
    (half the dots of differentiating the projections outside, each about as fast).
    ``cpu_kernel``: on a CPU backend, run it as ``pair_kernel.attention`` (the C++
    kernel: same numbers, faster on CPU) when the kernel builds."""
    fn = pair_kernel.attention if pair_kernel.usable(cpu_kernel) else _projected
    out, w_edges, w_self = fn(q, k, v, edge_emb, w_key, w_value,
                              jnp.asarray(pairs.senders, jnp.int32),
                              jnp.asarray(pairs.receivers, jnp.int32),
                              jnp.asarray(pairs.allowed, bool),
                              jnp.asarray(pairs.self_allowed, bool))
    return out, AttentionWeights(edges=w_edges, self=w_self)


def chunked_sparse_attention(q, k, v, edge_emb, rows, w_key, w_value, pairs: Pairs,
                             chunk: int) -> Tuple[jnp.ndarray, AttentionWeights]:
    """``sparse_attention`` with the per-pair work done ``chunk`` pairs at a time, for
    graphs whose [P, H, D] pair tensors do not fit in memory (10^7 pairs: 5 GB each).

    q, k, v [C, H, D]; edge_emb [E, de] with ``rows`` [P] the edge row of each pair;
    w_key, w_value [de, H * D] the edge key/value projections, applied per chunk. Two
    scans over the chunks: logits [P, H] (kept; small), then the weighted values; the
    softmax between them is ``pair_softmax`` itself, so the numbers are the unchunked
    ones up to summation order. Each chunk's work is under ``jax.checkpoint``: under
    ``jax.grad`` the backward pass recomputes a chunk's gathers and projections instead
    of keeping them, so memory stays O(chunk) per pair tensor in both passes."""
    n, h, d = q.shape
    p = pairs.senders.shape[0]
    m = max(-(-p // chunk), 1)
    pad = m * chunk - p

    def split(a):  # [P, ...] -> [m, chunk, ...], padded with inert rows
        a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
        return a.reshape((m, chunk) + a.shape[1:])

    s, r, e = split(pairs.senders), split(pairs.receivers), split(rows)

    @jax.checkpoint
    def chunk_logits(q, k, emb, w_key, s_c, r_c, e_c):  # -> [chunk, H]
        ek = (emb[e_c] @ w_key).reshape(chunk, h, d)  # [chunk, H, D]
        return jnp.sum(q[r_c] * (k[s_c] + ek), axis=-1)

    @jax.checkpoint
    def chunk_values(v, emb, w_value, s_c, r_c, e_c, w_c):  # -> [N, H, D]
        ev = (emb[e_c] @ w_value).reshape(chunk, h, d)
        return jax.ops.segment_sum(w_c[..., None] * (v[s_c] + ev), r_c, n)

    _, edge_logits = jax.lax.scan(
        lambda _, xs: (None, chunk_logits(q, k, edge_emb, w_key, *xs)), None, (s, r, e))
    w = pair_softmax(edge_logits.reshape(m * chunk, h)[:p], jnp.sum(q * k, axis=-1), pairs)
    # The sum stays outside the checkpointed chunk, so no accumulator is kept per chunk.
    out, _ = jax.lax.scan(
        lambda acc, xs: (acc + chunk_values(v, edge_emb, w_value, *xs), None),
        w.self[..., None] * v, (s, r, e, split(w.edges)))
    return out, w


def _attend(q, k, v, ek, ev, s, r, ok, ok_self):
    n = q.shape[0]
    rows = Pairs(senders=s, receivers=r, allowed=ok, self_allowed=ok_self)
    w = pair_softmax(jnp.sum(q[r] * (k[s] + ek), axis=-1), jnp.sum(q * k, axis=-1), rows)
    out = jax.ops.segment_sum(w.edges[..., None] * (v[s] + ev), r, n) + w.self[..., None] * v
    return out, w.edges, w.self  # [N, H, D], [P, H], [N, H]


@jax.custom_vjp
def _edge_attention(q, k, v, ek, ev, s, r, ok, ok_self):
    """The sparse path with a hand-written backward pass: XLA's autodiff of the masked
    segment softmax keeps and re-reads several [P, H, D] intermediates; this backward
    keeps only the inputs and the weights and recomputes the gathers it needs, so it
    holds less memory (docs/performance.md)."""
    return _attend(q, k, v, ek, ev, s, r, ok, ok_self)


def _edge_attention_fwd(q, k, v, ek, ev, s, r, ok, ok_self):
    out, w_e, w_s = _attend(q, k, v, ek, ev, s, r, ok, ok_self)
    return (out, w_e, w_s), (q, k, v, ek, ev, s, r, ok, ok_self, w_e, w_s)


def _edge_attention_bwd(res, cotangents):
    q, k, v, ek, ev, s, r, ok, ok_self, w_e, w_s = res
    dq, dk, dv, d_kv = _backward(q, k, v, ek, ev, s, r, w_e, w_s, cotangents)
    d_ek, d_ev = (x.reshape(ek.shape) for x in jnp.split(d_kv, 2, axis=1))
    return (dq, dk, dv, d_ek, d_ev) + _no_grads(s, r, ok, ok_self)


def _backward(q, k, v, ek, ev, s, r, w_e, w_s, cotangents):
    """(dq, dk, dv [N, H, D], d(ek, ev) [P, 2 H D]) of ``_attend``'s outputs."""
    g_out, g_we, g_ws = cotangents  # [N, H, D], [P, H], [N, H]
    # The barrier keeps XLA from merging this pass's gathers (q[r], k[s] + ek, v[s] + ev)
    # with the forward pass's identical ones: merged, each is written out as a [P, H, D]
    # tensor in the forward pass and kept for this one, where apart each is fused into
    # the op that reads it, which is faster (docs/performance.md).
    q, k, v, ek, ev = jax.lax.optimization_barrier((q, k, v, ek, ev))
    n = q.shape[0]
    g_r = g_out[r]  # [P, H, D]
    # d loss / d weight, then through the softmax: dl = w (dw - sum_receiver w dw).
    dw_e = jnp.sum(g_r * (v[s] + ev), axis=-1) + g_we  # [P, H]
    dw_s = jnp.sum(g_out * v, axis=-1) + g_ws  # [N, H]
    centre = jax.ops.segment_sum(w_e * dw_e, r, n) + w_s * dw_s  # [N, H]
    dl_e, dl_s = w_e * (dw_e - centre[r]), w_s * (dw_s - centre)  # 0 where not allowed
    # Key and value cotangents side by side: one array, one scatter to the senders and
    # (``_projected_bwd``) one dot each way through the edge projections.
    p, hd = r.shape[0], q.shape[1] * q.shape[2]
    d_kv = jnp.concatenate([(dl_e[..., None] * q[r]).reshape(p, hd),
                            (w_e[..., None] * g_r).reshape(p, hd)], -1)  # [P, 2 H D]
    dq = jax.ops.segment_sum(dl_e[..., None] * (k[s] + ek), r, n) + dl_s[..., None] * k
    d_nodes = jax.ops.segment_sum(d_kv, s, n).reshape((n, 2) + q.shape[1:])  # [N, 2, H, D]
    dk = d_nodes[:, 0] + dl_s[..., None] * q
    dv = d_nodes[:, 1] + w_s[..., None] * g_out
    return dq, dk, dv, d_kv


def _no_grads(*index_arrays):
    return tuple(np.zeros(a.shape, jax.dtypes.float0) for a in index_arrays)


_edge_attention.defvjp(_edge_attention_fwd, _edge_attention_bwd)


def _project(emb, w_key, w_value, h):  # [P, de] -> ek, ev [P, H, D]
    shape = (emb.shape[0], h, w_key.shape[1] // h)  # explicit: P may be 0
    return (emb @ w_key).reshape(shape), (emb @ w_value).reshape(shape)


@jax.custom_vjp
def _projected(q, k, v, emb, w_key, w_value, s, r, ok, ok_self):
    return _projected_fwd(q, k, v, emb, w_key, w_value, s, r, ok, ok_self)[0]


def _projected_fwd(q, k, v, emb, w_key, w_value, s, r, ok, ok_self):
    ek, ev = _project(emb, w_key, w_value, q.shape[1])
    out = _attend(q, k, v, ek, ev, s, r, ok, ok_self)
    return out, (q, k, v, emb, w_key, w_value, ek, ev, s, r, ok, ok_self) + out[1:]


def _projected_bwd(res, cotangents):
    q, k, v, emb, w_key, w_value, ek, ev, s, r, ok, ok_self, w_e, w_s = res
    dq, dk, dv, d_kv = _backward(q, k, v, ek, ev, s, r, w_e, w_s, cotangents)
    width = w_key.shape[1]
    d_emb = d_kv @ jnp.concatenate([w_key, w_value], 1).T  # [P, de]
    d_w = emb.T @ d_kv  # [de, 2 H D]
    return (dq, dk, dv, d_emb, d_w[:, :width], d_w[:, width:]) + _no_grads(s, r, ok, ok_self)


_projected.defvjp(_projected_fwd, _projected_bwd)


def to_dense(x: jnp.ndarray, layout: DenseLayout) -> jnp.ndarray:
    """[N, ...] -> [B, M, ...]; nodes outside the blocks are dropped. (Each node has
    its own cell, so an add is a set, with a linear derivative: see ``compaction.expand``.)"""
    out = jnp.zeros((layout.num_blocks, layout.size) + x.shape[1:], x.dtype)
    return out.at[layout.block, layout.pos].add(x, mode="drop")


def from_dense(x: jnp.ndarray, layout: DenseLayout) -> jnp.ndarray:
    """[B, M, ...] -> [N, ...]; nodes outside the blocks read 0."""
    return x.at[layout.block, layout.pos].get(mode="fill", fill_value=0)


def dense_attention(q, k, v, ek, ev, pairs: Pairs,
                    layout: DenseLayout) -> Tuple[jnp.ndarray, AttentionWeights]:
    """Same contract as ``sparse_attention``, with [B, H, M, M] score matrices."""
    n, h, e = q.shape[0], q.shape[1], ek.shape[0]
    nodes = jnp.arange(n, dtype=jnp.int32)
    # All rows (edges, then self pairs) as one list of (receiver, sender) cells.
    s = jnp.concatenate([pairs.senders, nodes])  # [P]
    r = jnp.concatenate([pairs.receivers, nodes])
    ok = jnp.concatenate([pairs.allowed, pairs.self_allowed])[:, None]  # [P, 1]
    cell = (layout.block[r], slice(None), layout.pos[r], layout.pos[s])  # -> [P, H]
    shape = (layout.num_blocks, h, layout.size, layout.size)
    # Edge bias per row (0 on self rows), and its log-sum-exp over rows sharing a cell.
    bias = jnp.concatenate([jnp.sum(q[pairs.receivers] * ek, axis=-1),
                            jnp.zeros((n, h), q.dtype)])  # [P, H]
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
    rows = attn.at[cell].get(mode="fill", fill_value=0) * share * ok  # [P, H]
    w = AttentionWeights(edges=rows[:e], self=rows[e:])
    out = out + jax.ops.segment_sum(w.edges[..., None] * ev, pairs.receivers, n)  # [N, H, D]
    return out, w
