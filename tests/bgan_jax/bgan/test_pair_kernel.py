"""The CPU attention kernel: the numbers of XLA's sparse path, its fallback, its cache."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bgan_jax import Backend, BGANConfig, create_model
from bgan_jax.bgan.masks import Pairs
from bgan_jax.bgan import pair_kernel
from bgan_jax.bgan.attention import _projected
from graphs import batch_and_pad
from tests.bgan_jax.bgan.test_attention import H, D, random_problem
from tests.bgan_jax.bgan.test_model import assert_tree_close, loss_fn
from tests.graph_factory import random_cg

if not pair_kernel.available():
    pytest.skip(f"the CPU attention kernel did not build here: {pair_kernel._STATE.get('error')}",
                allow_module_level=True)


def problem(seed, de=3, **kw):
    (q, k, v, _, _), pairs = random_problem(seed, **kw)
    keys = jax.random.split(jax.random.key(100 + seed), 3)
    emb = jax.random.normal(keys[0], (pairs.senders.shape[0], de))
    w_key, w_value = (jax.random.normal(x, (de, H * D)) for x in keys[1:])
    index = (jnp.asarray(pairs.senders, jnp.int32), jnp.asarray(pairs.receivers, jnp.int32),
             jnp.asarray(pairs.allowed), jnp.asarray(pairs.self_allowed))
    return (q, k, v, emb, w_key, w_value), index


def gradients(fn, args, index, seed):
    """Gradients for all six inputs of a loss on the outputs and both weight arrays."""
    rng = np.random.default_rng(seed)
    n, p = args[0].shape[0], args[3].shape[0]
    c_out, c_we, c_ws = (jnp.asarray(rng.normal(size=s), jnp.float32)
                         for s in ((n, H, D), (p, H), (n, H)))

    def loss(*a):
        out, we, ws = fn(*a, *index)
        return jnp.sum(c_out * out) + jnp.sum(c_we * we) + jnp.sum(c_ws * ws ** 2)
    return jax.jit(jax.grad(loss, argnums=tuple(range(6))))(*args)


@pytest.mark.parametrize("seed", range(4))
def test_kernel_equals_xla_path(seed):
    """Outputs, weights and the gradients of q, k, v, the edge embeddings and both edge
    kernels, with parallel rows, rows not allowed, and nodes with nothing to attend to."""
    args, index = problem(seed)
    for got, want in zip(jax.jit(pair_kernel.attention)(*args, *index),
                         jax.jit(_projected)(*args, *index)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(gradients(pair_kernel.attention, args, index, seed),
                         gradients(_projected, args, index, seed)):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_kernel_on_many_pairs_uses_threads_and_agrees():
    """Enough pairs that the work is split between threads (4,096 or more)."""
    args, index = problem(11, de=8, n=600, e=9000)
    for got, want in zip(jax.jit(pair_kernel.attention)(*args, *index),
                         jax.jit(_projected)(*args, *index)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for got, want in zip(gradients(pair_kernel.attention, args, index, 11),
                         gradients(_projected, args, index, 11)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.max(np.abs(want)))


def test_rows_not_allowed_may_point_anywhere():
    """A row that is not allowed is never read, whatever its indices (compaction leaves
    such rows pointing at row 0; a padded row may point past the nodes)."""
    args, (s, r, ok, ok_self) = problem(3)
    bad_s = jnp.where(ok, s, 10 ** 6)
    bad_r = jnp.where(ok, r, -5)
    got = jax.jit(pair_kernel.attention)(*args, bad_s, bad_r, ok, ok_self)
    want = jax.jit(pair_kernel.attention)(*args, s, r, ok, ok_self)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert np.all(np.asarray(got[1])[~np.asarray(ok)] == 0)


def test_no_pairs_and_nothing_allowed():
    """P = 0 (self attention only) and a node that may not even attend to itself: zeros,
    never NaN, gradients finite."""
    n, de = 5, 3
    q, k, v = (jax.random.normal(jax.random.key(i), (n, H, D)) for i in range(3))
    w = jnp.ones((de, H * D))
    index = (jnp.zeros(0, jnp.int32), jnp.zeros(0, jnp.int32), jnp.zeros(0, bool),
             jnp.arange(n) < n - 1)
    args = (q, k, v, jnp.zeros((0, de)), w, w)
    out, we, ws = jax.jit(pair_kernel.attention)(*args, *index)
    np.testing.assert_allclose(out[:-1], v[:-1], rtol=1e-6)
    np.testing.assert_array_equal(out[-1], 0.0)
    np.testing.assert_array_equal(ws[-1], 0.0)
    assert we.shape == (0, H)
    for got, want in zip(gradients(pair_kernel.attention, args, index, 0),
                         gradients(_projected, args, index, 0)):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_model_with_kernel_equals_model_without():
    """The whole model (every mechanism, two blocks, all heads) and its parameter
    gradients, kernel on and off: the same numbers."""
    batch = batch_and_pad([random_cg(s, n_neurons=2 + s) for s in range(3)])
    config = BGANConfig(hidden=16, heads=4, num_blocks=2, edge_hidden=8, num_node_outputs=3,
                        num_edge_outputs=2, num_graph_outputs=4)
    with_kernel = create_model(config)
    without = create_model(config.replace(backend=Backend(cpu_kernel=False)))
    params = with_kernel.init(jax.random.key(0), batch)
    run = lambda m: jax.jit(lambda p, b: m.apply(p, b, return_attention=True))  # noqa: E731
    assert_tree_close(run(without)(params, batch), run(with_kernel)(params, batch))
    assert_tree_close(loss_fn(without, batch)(params, batch.nodes["features"]),
                      loss_fn(with_kernel, batch)(params, batch.nodes["features"]))


def test_kernel_is_used_only_when_asked_and_on_cpu(monkeypatch):
    assert pair_kernel.usable(True) and not pair_kernel.usable(False)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert not pair_kernel.usable(True)


def test_a_failed_build_warns_once_and_the_model_runs_xla(tmp_path, monkeypatch):
    """No compiler: a clear error from ``build``, one warning from ``available``, and the
    sparse path falls back to XLA's ops with the same numbers."""
    monkeypatch.setenv(pair_kernel.COMPILER, "no-such-compiler-bgan")
    with pytest.raises(pair_kernel.KernelBuildError, match="no C\\+\\+ compiler"):
        pair_kernel.build(tmp_path)
    monkeypatch.setenv("BGAN_JAX_CACHE", str(tmp_path))
    monkeypatch.setattr(pair_kernel, "_STATE", {})
    with pytest.warns(RuntimeWarning, match="not available"):
        assert not pair_kernel.available()
    assert not pair_kernel.available()  # decided once, no second warning
    args, index = problem(2)
    from bgan_jax.bgan.attention import projected_sparse_attention
    pairs = Pairs(*index)
    out, w = projected_sparse_attention(*args, pairs, cpu_kernel=True)
    np.testing.assert_allclose(out, _projected(*args, *index)[0], rtol=1e-6, atol=1e-7)


def test_compile_errors_name_the_file(tmp_path, monkeypatch):
    bad = tmp_path / "pair_kernel.cc"
    bad.write_text("this is not C++\n")
    monkeypatch.setattr(pair_kernel, "SOURCE", bad)
    with pytest.raises(pair_kernel.KernelBuildError, match="pair_kernel.cc: .* exited"):
        pair_kernel.build(tmp_path / "cache")


def test_opt_out_never_builds(tmp_path, monkeypatch):
    monkeypatch.setenv(pair_kernel.OPT_OUT, "0")
    monkeypatch.setenv("BGAN_JAX_CACHE", str(tmp_path))
    monkeypatch.setattr(pair_kernel, "_STATE", {})
    assert not pair_kernel.available()
    assert not (tmp_path / "kernels").exists()


def test_the_build_is_cached_per_source_and_cpu(tmp_path):
    first = pair_kernel.build(tmp_path)
    assert first.exists() and first.parent == tmp_path / "kernels"
    stamp = first.stat().st_mtime_ns
    assert pair_kernel.build(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert pair_kernel.library_path(tmp_path) == first
