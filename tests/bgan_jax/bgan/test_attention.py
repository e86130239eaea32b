"""The two attention paths: same numbers, weights that are distributions, no NaN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bgan_jax.bgan.attention import dense_attention, pair_softmax, sparse_attention
from bgan_jax.bgan.masks import Pairs, dense_layout
from bgan_jax.bgan.masks import DenseLayout

H, D = 2, 4


def random_problem(seed, n=9, e=20, p_allowed=0.7, parallel=True):
    """(q, k, v, ek, ev) and a pair list with repeated (i, j) cells and lonely receivers."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, n - 2, e)  # the last two nodes never send
    r = rng.integers(0, n - 2, e)  # ... nor receive: they have no allowed pair
    if parallel:
        s[1], r[1] = s[0], r[0]
    pairs = Pairs(jnp.asarray(s, jnp.int32), jnp.asarray(r, jnp.int32),
                  jnp.asarray(rng.uniform(size=e) < p_allowed), jnp.arange(n) < n - 2)
    keys = jax.random.split(jax.random.key(seed), 5)
    q, k, v = (jax.random.normal(keys[i], (n, H, D)) for i in range(3))
    ek, ev = (jax.random.normal(keys[i], (e, H, D)) for i in (3, 4))
    return (q, k, v, ek, ev), pairs


def both_paths(args, pairs, layout):
    return sparse_attention(*args, pairs), dense_attention(*args, pairs, layout)


@pytest.mark.parametrize("seed", range(4))
def test_dense_equals_sparse_including_parallel_edges(seed):
    args, pairs = random_problem(seed)
    n = args[0].shape[0]
    (out_s, w_s), (out_d, w_d) = both_paths(args, pairs, DenseLayout(
        jnp.zeros(n, jnp.int32), jnp.arange(n, dtype=jnp.int32), 1, n))
    np.testing.assert_allclose(out_d, out_s, rtol=1e-5, atol=1e-6)
    for a, b in zip(w_s, w_d):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_dense_equals_sparse_gradients():
    args, pairs = random_problem(7)
    n = args[0].shape[0]
    layout = DenseLayout(jnp.zeros(n, jnp.int32), jnp.arange(n, dtype=jnp.int32), 1, n)

    def loss(fn, *extra):
        def f(args):
            out, w = fn(*args, pairs, *extra)
            return jnp.sum(jnp.sin(out)) + jnp.sum(w.edges ** 2) + jnp.sum(w.self ** 2)
        return jax.grad(f)(args)

    gs, gd = loss(sparse_attention), loss(dense_attention, layout)
    for a, b in zip(gs, gd):
        assert np.all(np.isfinite(b))
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def test_weights_sum_to_one_over_each_receivers_allowed_rows():
    args, pairs = random_problem(3)
    n = args[0].shape[0]
    _, w = sparse_attention(*args, pairs)
    total = jax.ops.segment_sum(w.edges, pairs.receivers, n) + w.self  # [N, H]
    np.testing.assert_allclose(total[: n - 2], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(total[n - 2:], 0.0)
    np.testing.assert_array_equal(np.asarray(w.edges)[~np.asarray(pairs.allowed)], 0.0)


@pytest.mark.parametrize("path", ["sparse", "dense"])
def test_nothing_allowed_gives_zero_output_and_finite_gradients(path):
    args, pairs = random_problem(1)
    pairs = pairs._replace(allowed=jnp.zeros_like(pairs.allowed),
                           self_allowed=jnp.zeros_like(pairs.self_allowed))
    n = args[0].shape[0]
    layout = DenseLayout(jnp.zeros(n, jnp.int32), jnp.arange(n, dtype=jnp.int32), 1, n)
    fn = sparse_attention if path == "sparse" else (lambda *a: dense_attention(*a, layout))
    out, w = fn(*args, pairs)
    assert np.all(np.asarray(out) == 0)
    assert np.all(np.asarray(w.edges) == 0) and np.all(np.asarray(w.self) == 0)
    grads = jax.grad(lambda a: jnp.sum(fn(*a, pairs)[0]))(args)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_pair_softmax_is_stable_for_huge_logits():
    edge_logits = jnp.array([[1e4], [1e4 - 1.0], [-1e4]])  # three rows into node 0
    pairs = Pairs(jnp.array([1, 1, 1]), jnp.array([0, 0, 0]), jnp.ones(3, bool),
                  jnp.array([False, True]))  # node 1 only attends to itself
    w = pair_softmax(edge_logits, jnp.array([[5e4], [3.0]]), pairs)
    e = np.exp(-1.0)
    np.testing.assert_allclose(np.asarray(w.edges)[:, 0], [1 / (1 + e), e / (1 + e), 0.0],
                               rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(w.self)[:, 0], [0.0, 1.0])


def test_per_graph_dense_blocks_equal_one_big_block():
    args, pairs = random_problem(5, n=12, e=30)
    import jraph
    # two graphs of 5 nodes + a padding graph of 2; pairs must stay inside graphs
    graph_of = np.repeat([0, 1, 2], [5, 5, 2])
    s, r = np.asarray(pairs.senders), np.asarray(pairs.receivers)
    pairs = pairs._replace(allowed=pairs.allowed & jnp.asarray(graph_of[s] == graph_of[r]),
                           self_allowed=pairs.self_allowed & jnp.asarray(graph_of < 2))
    g = jraph.GraphsTuple(nodes={"kind": jnp.zeros(12, jnp.int32)}, edges=None, senders=None,
                          receivers=None, n_node=jnp.array([5, 5, 2]), n_edge=None,
                          globals={"valid": jnp.array([True, True, False])})
    whole = dense_attention(*args, pairs, dense_layout(g))
    blocks = dense_attention(*args, pairs, dense_layout(g, 5))
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(blocks)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_too_small_dense_block_is_a_clear_error():
    import jraph
    g = jraph.GraphsTuple(nodes={"kind": jnp.zeros(12, jnp.int32)}, edges=None, senders=None,
                          receivers=None, n_node=jnp.array([8, 2, 2]), n_edge=None,
                          globals={"valid": jnp.array([True, True, False])})
    with pytest.raises(ValueError, match="dense_graph_nodes=5 is smaller than the largest graph"):
        dense_layout(g, 5)


@pytest.mark.parametrize("seed", range(3))
def test_hand_written_backward_equals_autodiff(seed):
    """The sparse path's custom VJP == jax.grad of the same forward pass, for a loss on
    the outputs and on the weights (the analysis differentiates both), with parallel
    rows, rows not allowed and receivers with nothing allowed."""
    from bgan_jax.bgan.attention import _attend
    args, pairs = random_problem(seed)
    rng = np.random.default_rng(seed)
    c_out, c_we, c_ws = (jnp.asarray(rng.normal(size=x.shape), jnp.float32) for x in (
        args[0], args[3][..., 0], args[0][..., 0]))

    def loss(fn):
        def f(a):
            out, we, ws = fn(*a)
            return jnp.sum(c_out * out) + jnp.sum(c_we * we) + jnp.sum(c_ws * ws)
        return f

    mask = (pairs.senders, pairs.receivers, pairs.allowed, pairs.self_allowed)
    ours = jax.grad(loss(lambda *a: tuple(jax.tree.leaves(sparse_attention(*a, pairs)))))(args)
    reference = jax.grad(loss(lambda *a: _attend(*a, *mask)))(args)
    out, w = sparse_attention(*args, pairs)
    np.testing.assert_allclose(out, _attend(*args, *mask)[0], rtol=1e-6, atol=1e-6)
    for got, want in zip(ours, reference):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_projected_path_equals_projecting_outside(seed):
    """``projected_sparse_attention`` (edge projections inside, the model's sparse path)
    == projecting the edge embeddings first and calling ``sparse_attention``: outputs,
    weights, and gradients for every input and both kernels, with a loss on the outputs
    and on the weights, parallel rows and receivers with nothing allowed."""
    from bgan_jax.bgan.attention import projected_sparse_attention
    (q, k, v, _, _), pairs = random_problem(seed)
    e, de = pairs.senders.shape[0], 3
    keys = jax.random.split(jax.random.key(100 + seed), 3)
    emb = jax.random.normal(keys[0], (e, de))
    w_key, w_value = (jax.random.normal(x, (de, H * D)) for x in keys[1:])
    rng = np.random.default_rng(seed)
    c_out, c_we = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((q.shape), (e, H)))

    def outside(q, k, v, emb, w_key, w_value):
        ek, ev = ((emb @ w).reshape(e, H, D) for w in (w_key, w_value))
        return sparse_attention(q, k, v, ek, ev, pairs)

    def inside(q, k, v, emb, w_key, w_value):
        return projected_sparse_attention(q, k, v, emb, w_key, w_value, pairs)

    def loss(fn):
        def f(*a):
            out, w = fn(*a)
            return jnp.sum(c_out * out) + jnp.sum(c_we * w.edges) + jnp.sum(w.self ** 2)
        return jax.grad(f, argnums=tuple(range(6)))

    args = (q, k, v, emb, w_key, w_value)
    (out_i, w_i), (out_o, w_o) = inside(*args), outside(*args)
    np.testing.assert_allclose(out_i, out_o, rtol=1e-6, atol=1e-6)
    for a, b in zip(w_i, w_o):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for got, want in zip(loss(inside)(*args), loss(outside)(*args)):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_projected_path_with_no_pairs():
    """A mechanism with no pair rows (P = 0): self attention only, finite gradients."""
    from bgan_jax.bgan.attention import projected_sparse_attention
    n, de = 5, 3
    q, k, v = (jax.random.normal(jax.random.key(i), (n, H, D)) for i in range(3))
    pairs = Pairs(jnp.zeros(0, jnp.int32), jnp.zeros(0, jnp.int32), jnp.zeros(0, bool),
                  jnp.arange(n) < n - 1)
    w = jnp.ones((de, H * D))

    def f(q, k, v, emb, w_key, w_value):
        out, weights = projected_sparse_attention(q, k, v, emb, w_key, w_value, pairs)
        return jnp.sum(out ** 2) + jnp.sum(weights.self ** 2), (out, weights)

    grads, (out, weights) = jax.grad(f, argnums=tuple(range(6)), has_aux=True)(
        q, k, v, jnp.zeros((0, de)), w, w)
    np.testing.assert_allclose(out[:-1], v[:-1], rtol=1e-6)  # only itself to attend to
    np.testing.assert_array_equal(out[-1], 0.0)
    assert weights.edges.shape == (0, H)
    assert all(np.all(np.isfinite(g)) for g in grads)


def naive_attention(q, k, v, ek, ev, pairs):
    """The module docstring's formulas, per receiver in float64 numpy."""
    q, k, v, ek, ev = (np.asarray(a, np.float64) for a in (q, k, v, ek, ev))
    s, r = np.asarray(pairs.senders), np.asarray(pairs.receivers)
    ok, ok_self = np.asarray(pairs.allowed), np.asarray(pairs.self_allowed)
    n = q.shape[0]
    out, w_e, w_s = np.zeros_like(q), np.zeros(ok.shape + (H,)), np.zeros((n, H))
    for i in range(n):
        rows = np.flatnonzero(ok & (r == i))
        logits = [np.sum(q[i] * (k[s[p]] + ek[p]), -1) for p in rows]  # each [H]
        values = [v[s[p]] + ev[p] for p in rows]
        if ok_self[i]:
            logits.append(np.sum(q[i] * k[i], -1))
            values.append(v[i])
        if not logits:
            continue
        a = np.exp(np.stack(logits) - np.max(logits, 0))
        a /= a.sum(0)  # [rows, H]
        out[i] = np.einsum("ph,phd->hd", a, np.stack(values))
        w_e[rows] = a[: len(rows)]
        if ok_self[i]:
            w_s[i] = a[-1]
    return out, w_e, w_s


@pytest.mark.parametrize("path", ["sparse", "dense"])
def test_both_paths_equal_the_formulas(path):
    """An independent reference: the plain per-receiver softmax of the docstring."""
    args, pairs = random_problem(11)
    n = args[0].shape[0]
    layout = DenseLayout(jnp.zeros(n, jnp.int32), jnp.arange(n, dtype=jnp.int32), 1, n)
    fn = sparse_attention if path == "sparse" else (lambda *a: dense_attention(*a, layout))
    out, w = fn(*args, pairs)
    want_out, want_e, want_s = naive_attention(*args, pairs)
    np.testing.assert_allclose(out, want_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.edges, want_e, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w.self, want_s, rtol=1e-4, atol=1e-6)


def test_chunked_gradient_keeps_no_pair_tensor_per_chunk():
    """Under jax.grad the chunked path recomputes each chunk (jax.checkpoint) instead of
    keeping its [chunk, H, D] gathers, so the compiled gradient's scratch memory (XLA's
    own count, not a timing) is a fraction of the unchunked one's, with the same
    gradients. Without the checkpoint it is 67 %; with it, 12 %."""
    from bgan_jax.bgan.attention import chunked_sparse_attention
    n, p, de, h, d = 2000, 40000, 8, 4, 16
    rng = np.random.default_rng(0)
    pairs = Pairs(jnp.asarray(rng.integers(0, n, p), jnp.int32),
                  jnp.asarray(rng.integers(0, n, p), jnp.int32),
                  jnp.asarray(rng.uniform(size=p) < 0.8), jnp.ones(n, bool))
    keys = jax.random.split(jax.random.key(0), 6)
    args = tuple(jax.random.normal(keys[i], (n, h, d)) for i in range(3)) + (
        jax.random.normal(keys[3], (p, de)), jax.random.normal(keys[4], (de, h * d)) / 3,
        jax.random.normal(keys[5], (de, h * d)) / 3)

    def loss(chunk):
        def f(q, k, v, emb, w_key, w_value):
            if chunk:
                out, w = chunked_sparse_attention(q, k, v, emb, jnp.arange(p), w_key,
                                                  w_value, pairs, chunk)
            else:
                ek, ev = ((emb @ x).reshape(p, h, d) for x in (w_key, w_value))
                out, w = sparse_attention(q, k, v, ek, ev, pairs)
            return jnp.mean(jnp.square(out)) + jnp.mean(jnp.square(w.edges))
        return jax.jit(jax.grad(f, argnums=tuple(range(6))))

    scratch = {c: loss(c).lower(*args).compile().memory_analysis().temp_size_in_bytes
               for c in (None, 2000)}
    assert scratch[2000] < 0.25 * scratch[None], scratch
    for got, want in zip(loss(2000)(*args), loss(None)(*args)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
