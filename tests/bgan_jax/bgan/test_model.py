"""The whole model: path equivalence, padding and order invariance, one compile per bucket."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bgan_jax
from bgan_jax import Backend, BGANConfig, Compaction, DatasetStats, MechanismBounds, create_model
from bgan_jax.bgan import masks
from bgan_jax.bgan.config import FEATURE_CLIP
from bgan_jax.bgan.compaction import capacity
from graphs import batch_and_pad, convert_file
from graphs.schema import NUM_NODE_FEATURES
from tests.graph_factory import permute_cg, random_cg

SMALL = BGANConfig(hidden=16, heads=4, num_blocks=2, edge_hidden=8, low_hops=2,
                   num_node_outputs=3, num_edge_outputs=2, num_graph_outputs=4, graph_totals=3,
                   reconstruct=True)


def init_apply(config, batch, seed=0, stats=DatasetStats()):
    model = create_model(config, stats)
    params = model.init(jax.random.key(seed), batch)
    return model, params


def assert_tree_close(a, b):
    """rtol 1e-5, atol 1e-6 of the tree's largest magnitude.

    The atol covers entries that are zero in exact arithmetic (e.g. the
    gradient of a key bias, to which softmax is invariant) and come out as
    float32 rounding noise of the large terms around them.
    """
    xs, ys = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(xs) == len(ys)
    scale = max(1.0, max(float(np.max(np.abs(x), initial=0.0)) for x in xs))
    for x, y in zip(xs, ys):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-6 * scale)


def loss_fn(model, batch):
    def loss(params, features):
        nodes = dict(batch.nodes, features=features)
        out = model.apply(params, batch._replace(nodes=nodes))
        return sum(jnp.sum(jnp.sin(v)) for v in out.values())
    return jax.jit(jax.grad(loss, argnums=(0, 1)))


@pytest.fixture(scope="module")
def batch():
    return batch_and_pad([random_cg(s, n_neurons=2 + s) for s in range(4)])


def forward(model):
    return lambda params, batch: model.apply(params, batch, return_attention=True)


def check_dense_equals_sparse(batch, config, sizes):
    sparse = config.replace(attention="sparse")
    model_s, params = init_apply(sparse, batch)
    out_s, att_s = forward(model_s)(params, batch)
    g_s = loss_fn(model_s, batch)(params, batch.nodes["features"])
    for size in sizes:
        model_d = create_model(config.replace(attention="dense", dense_graph_nodes=size))
        out_d, att_d = forward(model_d)(params, batch)
        assert_tree_close(out_s, out_d)
        assert_tree_close(att_s, att_d)
        assert_tree_close(g_s, loss_fn(model_d, batch)(params, batch.nodes["features"]))


def test_dense_equals_sparse_outputs_attention_and_gradients(batch):
    check_dense_equals_sparse(batch, SMALL.replace(num_blocks=1),
                              sizes=(None, bgan_jax.dense_block_size(batch)))


@pytest.mark.slow  # 35 s; the default suite checks dense == sparse on generated graphs
def test_dense_equals_sparse_on_the_shared_corpus(shared_neuroml):
    names = ["MediumNet.net.nml", "brunel2000_mini.net.nml", "StimuliTest.nml",
             "L23_One.net.nml", "NML2_MultiCompCellNetwork.nml", "testSyns.net.nml"]
    paths = {p.name: p for p in shared_neuroml.rglob("*.nml")}
    cgs = [convert_file(paths[n]) for n in names if n in paths]
    assert len(cgs) >= 4
    batch = batch_and_pad(cgs)
    check_dense_equals_sparse(batch, SMALL.replace(num_blocks=1, low_hops=1),
                              sizes=(bgan_jax.dense_block_size(batch),))


def test_attention_lies_on_the_edges_each_mechanism_may_use(batch):
    model, params = init_apply(SMALL, batch)
    _, attention = model.apply(params, batch, return_attention=True)
    kind = np.asarray(batch.edges["kind"])
    fwd = np.asarray(batch.edges["forward"]) > 0
    used = {"ganup": np.isin(kind, [2, 3, 5]),
            "mask_a": np.isin(kind, SMALL.signal_edge_kinds) & fwd,
            "mask_b": np.isin(kind, SMALL.signal_edge_kinds) & fwd}
    for block in attention:
        assert set(block) == {"ganlow", "ganup", "mask_a", "mask_b"}
        assert len(block["ganlow"]) == SMALL.low_hops
        for name, allowed in used.items():
            w = np.asarray(block[name].edges)
            assert np.all(w[~allowed] == 0) and np.any(w[allowed] > 0), name
        low = np.asarray(block["ganlow"][0].edges)
        assert np.all(low[~np.isin(kind, [0, 1])] == 0)
        assert block["mask_a"].edges.shape[1] == block["mask_b"].edges.shape[1] == 2


def test_padding_does_not_change_real_outputs(batch):
    cgs = [random_cg(s, n_neurons=2 + s) for s in range(4)]
    big = batch_and_pad(cgs, n_node=batch.n_node.sum() * 2, n_edge=batch.n_edge.sum() * 2,
                        n_graph=9)
    for path in ("sparse", "dense"):
        model, params = init_apply(SMALL.replace(attention=path), batch)
        a, b = model.apply(params, batch), model.apply(params, big)
        n, e = int(np.sum(batch.nodes["valid"])), int(np.sum(batch.edges["valid"]))
        for key, rows in (("node", n), ("node_embedding", n), ("reconstruction", n),
                          ("edge", e), ("graph", 4), ("graph_embedding", 4)):
            np.testing.assert_allclose(b[key][:rows], a[key][:rows], rtol=1e-5, atol=1e-5)
        assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(b))
        np.testing.assert_array_equal(b["node"][n:], 0.0)


def test_node_order_does_not_matter():
    cg = random_cg(11, n_neurons=5)
    perm, order, eorder = permute_cg(cg, seed=3)
    b0, b1 = batch_and_pad([cg]), batch_and_pad([perm])
    model, params = init_apply(SMALL, b0)
    (o0, a0), (o1, a1) = (model.apply(params, b, return_attention=True) for b in (b0, b1))
    n, e = cg.n_nodes, cg.n_edges
    for key in ("node", "node_embedding", "reconstruction"):
        np.testing.assert_allclose(o1[key][:n], o0[key][:n][order], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(o1["edge"][:e], o0["edge"][:e][eorder], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(o1["graph"], o0["graph"], rtol=1e-5, atol=1e-5)
    w0, w1 = a0[-1]["mask_b"], a1[-1]["mask_b"]
    np.testing.assert_allclose(w1.edges[:e], w0.edges[:e][eorder], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w1.self[:n], w0.self[:n][order], rtol=1e-5, atol=1e-6)


def test_one_compilation_per_bucket():
    traces = []
    model = create_model(SMALL)
    shape = dict(n_node=256, n_edge=1024, n_graph=5)
    batches = [batch_and_pad([random_cg(10 * k + s) for s in range(4)], **shape)
               for k in range(5)]
    params = model.init(jax.random.key(0), batches[0])

    @jax.jit
    def forward(params, batch):
        traces.append(1)
        return model.apply(params, batch, return_attention=True)

    outs = [forward(params, b) for b in batches]
    assert len(traces) == 1
    assert not np.allclose(outs[0][0]["node"], outs[1][0]["node"])


def test_no_nan_with_empty_graphs_and_heavy_padding():
    from graphs.cg import GraphBuilder
    from graphs.schema import NodeKind
    b = GraphBuilder()
    b.add_node(NodeKind.CLS, -1, "cls")
    lonely = b.finish({})  # a model with nothing in it but its CLS node
    batch = batch_and_pad([lonely, random_cg(1), lonely], n_node=512, n_edge=512, n_graph=8)
    for path in ("sparse", "dense"):
        model, params = init_apply(SMALL.replace(attention=path, num_blocks=1), batch)
        out, att = forward(model)(params, batch)
        grads = loss_fn(model, batch)(params, batch.nodes["features"])
        for leaf in jax.tree.leaves((out, att, grads)):
            assert np.all(np.isfinite(leaf))


@pytest.mark.parametrize("switch, absent", [
    (dict(nsa=False), {"ganlow", "ganup"}), (dict(bmsa=False), {"mask_a", "mask_b"}),
    (dict(mask_a=False), {"mask_a"}), (dict(mask_b=False), {"mask_b"})])
def test_ablation_switches_remove_their_mechanism(batch, switch, absent):
    model, params = init_apply(SMALL.replace(**switch), batch)
    out, att = model.apply(params, batch, return_attention=True)
    assert not absent & set(att[0])
    full = {"ganlow", "ganup", "mask_a", "mask_b"}
    assert set(att[0]) == full - absent
    if switch in (dict(mask_a=False), dict(mask_b=False)):
        (left,) = full - absent - {"ganlow", "ganup"}
        assert att[0][left].edges.shape[1] == SMALL.heads  # all heads go to the other mask


def test_maskA_only_model_ignores_downstream_nodes():
    """With NSA and MaskB off, a node's output depends only on its upstream cone."""
    cg = random_cg(4, n_neurons=3, n_gaps=0)
    batch = batch_and_pad([cg])
    config = SMALL.replace(nsa=False, mask_b=False, num_blocks=1, num_edge_outputs=0,
                           num_graph_outputs=0)
    model, params = init_apply(config, batch)
    run = jax.jit(lambda f: model.apply(params, batch._replace(nodes=dict(batch.nodes, features=f)))["node"])
    feats = jnp.asarray(batch.nodes["features"])
    base = np.asarray(run(feats))
    fwd = (np.asarray(batch.edges["forward"]) > 0) & np.isin(np.asarray(batch.edges["kind"]),
                                                              config.signal_edge_kinds)
    s, r = np.asarray(batch.senders)[fwd], np.asarray(batch.receivers)[fwd]
    j = int(s[0])  # perturb an upstream node: its receivers change, nodes it does not feed do not
    out = np.asarray(run(feats.at[j].add(1.0)))
    fed = set(r[s == j]) | {j}
    changed = set(np.flatnonzero(np.abs(out - base).max(-1) > 0))
    assert changed == fed


def test_heads_shapes_and_reconstruction(batch):
    model, params = init_apply(SMALL, batch)
    out = model.apply(params, batch)
    n, e, g = batch.nodes["kind"].shape[0], batch.senders.shape[0], batch.n_node.shape[0]
    assert out["node"].shape == (n, 3) and out["edge"].shape == (e, 2)
    assert out["graph"].shape == (g, 4) and out["reconstruction"].shape == (n, NUM_NODE_FEATURES)
    np.testing.assert_array_equal(out["graph"][-1], 0.0)  # jraph's padding graph


def test_dropout_needs_train_flag_and_rng(batch):
    model, params = init_apply(SMALL.replace(dropout=0.5), batch)
    a = model.apply(params, batch)
    b = model.apply(params, batch, train=True, rngs={"dropout": jax.random.key(1)})
    np.testing.assert_array_equal(a["node"], model.apply(params, batch)["node"])
    assert not np.allclose(a["node"], b["node"])


@pytest.mark.parametrize("bad, message", [
    (dict(attention="flash"), "attention must be one of"),
    (dict(hidden=30, heads=4), "multiple of heads"),
    (dict(heads=1), "heads >= 2"),
    (dict(signal_edge_kinds=(9,)), "EdgeKind values"),
    (dict(graph_totals=-1), "graph_totals must be"),
])
def test_bad_config_is_a_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        BGANConfig(**bad)


@pytest.mark.parametrize("make, message", [
    (lambda: DatasetStats(feature_shift=(0.0,), feature_scale=()), "same length"),
    (lambda: DatasetStats(feature_shift=(0.0,), feature_scale=(0.0,)), "scale > 0"),
    (lambda: MechanismBounds(pair_fraction=0.0), "pair_fraction must be"),
    (lambda: MechanismBounds(node_fraction=1.5), "node_fraction must be"),
    (lambda: MechanismBounds(pair_counts=(3, 4)), "pair_counts must be"),
    (lambda: MechanismBounds(node_counts=(-1,)), "node_counts must be"),
    (lambda: MechanismBounds(shapes=((8, 16, 4),)), "shapes entries"),
    (lambda: Backend(pair_chunk=0), "pair_chunk must be"),
    (lambda: Compaction()["gan_low"], "no mechanism 'gan_low'"),
])
def test_bad_stats_or_backend_is_a_clear_error(make, message):
    with pytest.raises((ValueError, KeyError), match=message):
        make()


def _stats(graphs, config) -> DatasetStats:
    return DatasetStats(compaction=bgan_jax.compaction(graphs, config))


def _bounds(compaction: Compaction, **per_mechanism) -> Compaction:
    """``compaction`` with some mechanisms' bounds changed: name -> field changes."""
    import dataclasses
    return dataclasses.replace(compaction, **{
        m: dataclasses.replace(compaction[m], **changes) for m, changes in per_mechanism.items()})


def test_graph_totals_add_up_over_compartments():
    """Two copies of a cell in one graph: the sum read-out (before its log1p) doubles.
    Attention off, so each compartment's state is its own features' alone."""
    from graphs.cg import GraphBuilder
    from graphs.schema import EdgeKind, NodeKind

    def cell(copies):
        b = GraphBuilder()
        cls = b.add_node(NodeKind.CLS, -1, "cls")
        for c in range(copies):
            neuron = b.add_node(NodeKind.NEURON, c, f"n{c}")
            b.add_edge_pair(neuron, cls, EdgeKind.CLS, True)
            soma = b.add_node(NodeKind.SOMA, c, f"soma{c}")
            b.add_edge_pair(soma, neuron, EdgeKind.MEMBERSHIP, True)
        return b.finish({})

    batch = batch_and_pad([cell(1), cell(2)], n_node=16, n_edge=16, n_graph=3)
    model, params = init_apply(SMALL.replace(num_blocks=1, nsa=False, bmsa=False), batch)
    out = model.apply(params, batch, capture_intermediates=lambda m, name: name == "totals",
                      mutable=["intermediates"])[1]["intermediates"]["totals"][0]
    summed = np.expm1(np.asarray(out))  # [G, k]
    np.testing.assert_allclose(summed[1], 2 * summed[0], rtol=1e-4)
    assert np.all(summed[:2] > 0)


def test_losses_ignore_what_is_masked_and_never_nan():
    logits = jnp.array([[2.0, 0.0], [0.0, 2.0]])
    labels = jnp.array([0, 0])
    none = jnp.zeros(2, bool)
    assert float(bgan_jax.classification_loss(logits, labels, none)) == 0.0
    assert float(bgan_jax.accuracy(logits, labels, jnp.array([True, False]))) == 1.0
    assert float(bgan_jax.regression_loss(jnp.ones(2), jnp.zeros(2), none)) == 0.0
    batch = batch_and_pad([random_cg(0)])
    masked, hidden = bgan_jax.mask_node_features(jax.random.key(0), batch, rate=0.5)
    hidden = np.asarray(hidden)
    assert hidden.any() and not hidden[~np.asarray(batch.nodes["valid"])].any()
    assert np.all(np.asarray(masked.nodes["feature_mask"])[hidden] == 0)
    loss = bgan_jax.reconstruction_loss(masked.nodes["features"], batch.nodes["features"], hidden)
    expected = np.mean(np.asarray(batch.nodes["features"])[hidden] ** 2)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_model_attention_sums_to_one_over_each_receivers_allowed_set(batch):
    model, params = init_apply(SMALL, batch)
    _, attention = model.apply(params, batch, return_attention=True)
    kinds = SMALL.signal_edge_kinds
    pairs = {"ganup": masks.ganup_pairs(batch), "mask_a": masks.forward_pairs(batch, kinds),
             "mask_b": masks.backward_pairs(batch, kinds)}
    n = batch.nodes["kind"].shape[0]
    for block in attention:
        checks = [(masks.ganlow_pairs(batch), w) for w in block["ganlow"]]
        checks += [(pairs[name], block[name]) for name in pairs]
        for p, w in checks:
            total = jax.ops.segment_sum(w.edges, p.receivers, n) + w.self  # [N, H]
            expected = np.asarray(masks.receives(p), np.float32)[:, None]
            np.testing.assert_allclose(total, np.broadcast_to(expected, total.shape), atol=1e-6)


def test_feature_standardisation_is_the_same_as_feeding_standardised_features(batch):
    f = batch.nodes["features"].shape[-1]
    rng = np.random.default_rng(0)
    shift, scale = rng.normal(size=f), rng.uniform(0.5, 2.0, size=f)
    stats = DatasetStats(feature_shift=tuple(shift), feature_scale=tuple(scale))
    model, params = init_apply(SMALL, batch, stats=stats)
    known = np.asarray(batch.nodes["feature_mask"]) > 0
    z = np.clip((np.asarray(batch.nodes["features"]) - shift) / scale, -FEATURE_CLIP, FEATURE_CLIP)
    pre = batch._replace(nodes=dict(batch.nodes, features=np.where(known, z, 0.0).astype(np.float32)))
    assert_tree_close(create_model(SMALL).apply(params, pre), model.apply(params, batch))
    out = model.apply(params, batch)
    assert all(np.isfinite(np.asarray(v)).all() for v in out.values())  # padding: no NaN
    with pytest.raises(ValueError, match="another feature schema"):
        create_model(SMALL, DatasetStats(feature_shift=(0.0,), feature_scale=(1.0,))).apply(
            params, batch)


def test_compaction_bounds_every_graph_and_batch():
    """Fractions and counts bound each real graph; the capacity of a batch is never
    below what it holds, and the counts make it tighter than the fraction alone."""
    from bgan_jax.bgan.config import MECHANISMS
    cgs = [random_cg(s, n_neurons=2 + s) for s in range(4)]
    singles = [batch_and_pad([cg]) for cg in cgs]
    measured = bgan_jax.compaction(singles, SMALL)
    together = batch_and_pad(cgs, n_node=1024, n_edge=4096, n_graph=8)  # mostly padding
    pairs = bgan_jax.mechanism_pairs(together, SMALL)
    real_edges, real_nodes = int(np.sum(together.edges["valid"])), len(np.flatnonzero(
        together.nodes["valid"]))
    e, n, g = together.senders.shape[0], together.nodes["kind"].shape[0], 8
    for m in MECHANISMS:
        b = measured[m]
        rows, hit = int(np.sum(pairs[m].allowed)), int(np.sum(masks.touched(pairs[m])))
        assert rows <= b.pair_fraction * real_edges
        assert hit <= b.node_fraction * real_nodes
        assert rows == sum(b.pair_counts)  # four graphs: each one's own count
        assert hit == sum(b.node_counts)
        pair_cap = capacity(e, b.pair_fraction, b.pair_counts, g)
        node_cap = capacity(n, b.node_fraction, b.node_counts, g)
        assert rows <= pair_cap < capacity(e, b.pair_fraction)
        assert hit <= node_cap < capacity(n, b.node_fraction)
    assert measured["ganlow"].pair_fraction < 1.0  # GANlow never uses synapse rows
    assert measured["ganup"].node_fraction < 0.5  # GANup touches the neurons only


def test_capacity_from_counts():
    assert capacity(100, 0.5) == 50
    assert capacity(100, 0.5, (30, 20, 5), 2) == 50  # 30 + 20
    assert capacity(100, 0.5, (30, 20, 5), 1) == 30
    assert capacity(100, 0.9, (30, 20, 5), 5) == 65  # two graphs beyond the list: <= 5 each
    assert capacity(100, 0.5, (0, 0), 3) == 1  # never an empty array


@pytest.mark.parametrize("path", ["sparse", "dense"])
def test_compacted_pairs_change_nothing(path):
    """Each mechanism on its own rows and nodes (measured ``Compaction`` bounds) ==
    all rows and nodes with a mask: outputs and attention on the batch's edge rows and
    nodes (both paths; dense compacts rows only), gradients (sparse; dense == sparse
    gradients are tested above), in a heavily padded batch."""
    full = BGANConfig(hidden=8, heads=2, num_blocks=1, edge_hidden=4, num_node_outputs=2,
                      num_edge_outputs=2, num_graph_outputs=2, attention=path)
    cgs = [random_cg(s, n_neurons=2 + s) for s in range(3)]
    singles = [batch_and_pad([cg]) for cg in cgs]  # measured per graph, used per batch
    compact = _stats(singles, full)
    bounds = [compact.compaction[m] for m in bgan_jax.bgan.config.MECHANISMS]
    assert min(b.pair_fraction for b in bounds) < 1.0 and min(b.node_fraction for b in bounds) < 1.0
    b = batch_and_pad(cgs, n_node=512, n_edge=2048, n_graph=6)
    model_f, params = init_apply(full, b)
    model_c = create_model(full, compact)
    assert_tree_close(forward(model_f)(params, b), forward(model_c)(params, b))
    if path == "sparse":
        assert_tree_close(loss_fn(model_f, b)(params, b.nodes["features"]),
                          loss_fn(model_c, b)(params, b.nodes["features"]))


def test_more_pairs_than_the_fractions_allow_is_nan_not_a_drop(batch):
    model, params = init_apply(SMALL, batch)
    tight = Compaction(**{m: MechanismBounds(pair_fraction=0.01)
                          for m in bgan_jax.bgan.config.MECHANISMS})
    out = jax.jit(create_model(SMALL, DatasetStats(compaction=tight)).apply)(params, batch)
    assert all(np.any(np.isnan(v)) for v in out.values())
    real = np.asarray(batch.nodes["valid"])
    assert np.all(np.isnan(out["node_embedding"][real]))
    assert bgan_jax.pair_overflow([batch], SMALL, tight) == [0]
    assert bgan_jax.pair_overflow([batch], SMALL, bgan_jax.compaction([batch], SMALL)) == []


def test_more_touched_nodes_than_the_fractions_allow_is_nan_not_a_drop(batch):
    model, params = init_apply(SMALL, batch)
    measured = bgan_jax.compaction([batch], SMALL)
    tight = _bounds(measured, ganup={"node_fraction": measured["ganup"].node_fraction / 2,
                                     "node_counts": ()})
    out = jax.jit(create_model(SMALL, DatasetStats(compaction=tight)).apply)(params, batch)
    assert np.all(np.isnan(out["node_embedding"][np.asarray(batch.nodes["valid"])]))
    assert bgan_jax.pair_overflow([batch], SMALL, tight) == [0]
    assert bgan_jax.pair_overflow([batch], SMALL, measured) == []
    assert_tree_close(model.apply(params, batch),
                      create_model(SMALL, DatasetStats(compaction=measured)).apply(params, batch))


def test_both_synapse_modes_run_unchanged(tmp_path):
    """The model takes CGs of either synapse mode as they are: a small Potjans-Diesmann
    microcircuit from HDF5, sparse and dense agree, nothing NaN, padding changes nothing."""
    from graphs.synthetic import write_microcircuit

    path = tmp_path / "pd.nml.h5"
    write_microcircuit(path, scale=0.001, seed=1)
    cgs = [convert_file(path, synapses=mode) for mode in ("type", "connection")]
    assert cgs[0].nodes_by_kind()["synapse"] < cgs[1].nodes_by_kind()["synapse"]
    # jitted throughout: eager, these larger graphs cost a compile per op and shape
    one = SMALL.replace(num_blocks=1)
    batch = batch_and_pad(cgs[:1])
    model = create_model(one)
    params = jax.jit(model.init)(jax.random.key(0), batch)
    dense = create_model(one.replace(attention="dense"))
    assert_tree_close(jax.jit(forward(model))(params, batch),
                      jax.jit(forward(dense))(params, batch))
    both = batch_and_pad(cgs)
    padded = batch_and_pad(cgs, n_node=int(both.n_node.sum()) + 64,
                           n_edge=int(both.n_edge.sum()) + 64, n_graph=4)
    params = jax.jit(model.init)(jax.random.key(0), both)
    apply = jax.jit(model.apply)
    a, b = apply(params, both), apply(params, padded)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(b))
    np.testing.assert_allclose(b["graph"][:2], a["graph"][:2], rtol=1e-5, atol=1e-5)


def test_pair_chunks_change_nothing(batch):
    """The sparse path in chunks of pairs (Backend.pair_chunk) == all pairs at once: outputs,
    attention and gradients, without and with compaction, with chunk sizes that do not
    divide the pair count."""
    for compact, chunk in ((False, 5), (True, 7)):
        full = SMALL.replace(attention="sparse", num_blocks=1)
        stats = _stats([batch], full) if compact else DatasetStats()
        model, params = init_apply(full, batch, stats=stats)
        chunked = create_model(full.replace(backend=Backend(pair_chunk=chunk)), stats)
        assert jax.tree.structure(chunked.init(jax.random.key(0), batch)) == \
            jax.tree.structure(params)
        assert_tree_close(forward(model)(params, batch), forward(chunked)(params, batch))
        if compact:
            assert_tree_close(loss_fn(model, batch)(params, batch.nodes["features"]),
                              loss_fn(chunked, batch)(params, batch.nodes["features"]))
