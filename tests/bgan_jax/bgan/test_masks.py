"""Who attends to whom: each mechanism's allowed pairs and its masking behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bgan_jax
from bgan_jax.bgan import masks
from bgan_jax.bgan.masks import backward_pairs, forward_pairs, ganlow_pairs, ganup_pairs
from bgan_jax.bgan.model import MaskedAttention
from graphs import batch_and_pad, convert_file
from graphs.schema import COMPARTMENT_KINDS, EdgeKind, NodeKind
from tests.fixtures import two_population_network
from tests.graph_factory import random_cg

SIGNAL = bgan_jax.BGANConfig().signal_edge_kinds
MECHANISMS = {
    "ganlow": ganlow_pairs,
    "ganup": ganup_pairs,
    "mask_a": lambda g: forward_pairs(g, SIGNAL),
    "mask_b": lambda g: backward_pairs(g, SIGNAL),
}


def allowed_matrix(pairs, n):
    """[receiver, sender] bool matrix of a pair list (self pairs on the diagonal)."""
    m = np.zeros((n, n), bool)
    ok = np.asarray(pairs.allowed)
    m[np.asarray(pairs.receivers)[ok], np.asarray(pairs.senders)[ok]] = True
    self_ok = np.flatnonzero(np.asarray(pairs.self_allowed))
    m[self_ok, self_ok] = True
    return m


@pytest.fixture(scope="module")
def batch():
    return batch_and_pad([random_cg(s, n_neurons=5) for s in range(3)])


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "net.nml"
    from tests.conftest import nml
    path.write_text(nml(two_population_network()))
    cg = convert_file(path)
    return cg, batch_and_pad([cg])


def names(cg, idx):
    return sorted(str(cg.node_name[i]) for i in idx)


def test_maskB_is_the_transpose_of_maskA(batch):
    n = batch.nodes["kind"].shape[0]
    a = allowed_matrix(forward_pairs(batch, SIGNAL), n)
    b = allowed_matrix(backward_pairs(batch, SIGNAL), n)
    np.testing.assert_array_equal(a, b.T)
    assert a.sum() > np.sum(batch.nodes["valid"])  # more than the self pairs


def test_maskA_follows_signal_flow_through_the_synapse_node(network):
    cg, g = network
    a = allowed_matrix(forward_pairs(g, SIGNAL), g.nodes["kind"].shape[0])
    syn = int(np.flatnonzero(cg.node_kind == NodeKind.SYNAPSE)[0])
    pre = int(cg.senders[(cg.receivers == syn)][0])
    post = int(cg.receivers[(cg.senders == syn)][0])
    assert a[syn, pre] and a[post, syn] and a[syn, syn]
    assert not a[pre, syn] and not a[syn, post] and not a[pre, post]


def test_ganlow_stays_inside_one_neuron(batch):
    n = batch.nodes["kind"].shape[0]
    m = allowed_matrix(ganlow_pairs(batch), n)
    nid = np.asarray(batch.nodes["neuron_id"])
    kind = np.asarray(batch.nodes["kind"])
    r, s = np.nonzero(m)
    assert np.all(nid[r] == nid[s]) and np.all(nid[r] >= 0)
    # every compartment sees its neuron node; every neuron node sees all its compartments
    comp = np.flatnonzero(np.isin(kind, list(COMPARTMENT_KINDS)))
    assert np.all(m[comp, nid[comp]]) and np.all(m[nid[comp], comp])
    # CLS, synapse and input nodes take no part
    other = np.isin(kind, [NodeKind.CLS, NodeKind.SYNAPSE, NodeKind.INPUT])
    assert not m[other].any() and not m[:, other].any()


def test_ganup_lifts_synapses_to_neurons_and_links_cls(network):
    cg, g = network
    m = allowed_matrix(ganup_pairs(g), g.nodes["kind"].shape[0])
    neuron = {str(cg.node_name[i]): i for i in np.flatnonzero(cg.node_kind == NodeKind.NEURON)}
    # A0 -> B0, A1 -> B0, A2 -> B1, A0 -> B1 (fixtures.CONNS + CONN_WD); both directions
    expected = {("A/0", "B/0"), ("A/1", "B/0"), ("A/2", "B/1"), ("A/0", "B/1")}
    got = {(names(cg, [s])[0], names(cg, [r])[0]) for r, s in zip(*np.nonzero(m))
           if r != s and r in neuron.values() and s in neuron.values()}
    assert got == expected | {(b, a) for a, b in expected}
    cls = 0
    assert np.all(m[cls, list(neuron.values())]) and np.all(m[list(neuron.values()), cls])
    kinds = np.asarray(g.nodes["kind"])
    r, s = np.nonzero(m)
    assert set(kinds[r]) | set(kinds[s]) <= {NodeKind.NEURON, NodeKind.CLS}


def test_gap_junctions_link_neurons_in_ganup_and_both_masks(batch):
    n = batch.nodes["kind"].shape[0]
    kind = np.asarray(batch.edges["kind"])
    gap = np.flatnonzero(kind == EdgeKind.GAP)
    s, r = np.asarray(batch.senders)[gap], np.asarray(batch.receivers)[gap]
    nid = np.asarray(batch.nodes["neuron_id"])
    up = allowed_matrix(ganup_pairs(batch), n)
    fwd = allowed_matrix(forward_pairs(batch, SIGNAL), n)
    cross = nid[s] != nid[r]
    assert cross.any()
    assert np.all(up[nid[r][cross], nid[s][cross]])
    assert np.all(fwd[r, s]) and np.all(fwd[s, r])


def test_padding_takes_part_in_no_pair(batch):
    pad_nodes = np.flatnonzero(~np.asarray(batch.nodes["valid"]))
    pad_edges = ~np.asarray(batch.edges["valid"])
    for name, fn in MECHANISMS.items():
        p = fn(batch)
        ok = np.asarray(p.allowed)
        assert not ok[pad_edges].any(), name
        assert not np.asarray(p.self_allowed)[pad_nodes].any(), name
        assert not np.isin(np.asarray(p.receivers)[ok], pad_nodes).any(), name
        assert not np.isin(np.asarray(p.senders)[ok], pad_nodes).any(), name


@pytest.mark.parametrize("path", ["sparse", "dense"])
@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_perturbing_outside_the_allowed_set_changes_nothing(batch, mechanism, path):
    """For every receiver: a change at a non-neighbour leaves its output bit-identical;
    a change at an allowed neighbour changes it."""
    pairs = MECHANISMS[mechanism](batch)
    n = batch.nodes["kind"].shape[0]
    m = allowed_matrix(pairs, n)
    layout = masks.dense_layout(batch) if path == "dense" else None
    module = MaskedAttention(hidden=16, heads=2)
    x = jax.random.normal(jax.random.key(1), (n, 16))
    edge_emb = jax.random.normal(jax.random.key(2), (batch.senders.shape[0], 8))
    params = module.init(jax.random.key(0), x, edge_emb, pairs, layout)
    run = jax.jit(lambda x: module.apply(params, x, edge_emb, pairs, layout)[0])
    base = np.asarray(run(x))
    rng = np.random.default_rng(0)
    receivers = [i for i in range(n) if m[i].any()]
    checked_in = checked_out = 0
    for i in rng.choice(receivers, size=min(6, len(receivers)), replace=False):
        inside = [j for j in np.flatnonzero(m[i]) if j != i]
        outside = [j for j in np.flatnonzero(~m[i]) if j != i]
        for j in inside[:2]:
            out = np.asarray(run(x.at[j].add(1.0)))
            assert np.abs(out[i] - base[i]).max() > 1e-6, (mechanism, i, j)
            checked_in += 1
        for j in outside[:4]:
            out = np.asarray(run(x.at[j].add(1.0)))
            np.testing.assert_array_equal(out[i], base[i])
            checked_out += 1
    assert checked_in and checked_out


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_node_without_allowed_pair_gets_exact_zero_update(batch, mechanism):
    pairs = MECHANISMS[mechanism](batch)
    n = batch.nodes["kind"].shape[0]
    lonely = ~np.asarray(masks.receives(pairs))
    assert lonely.any()  # at least the padding nodes
    module = MaskedAttention(hidden=16, heads=2)
    x = jax.random.normal(jax.random.key(1), (n, 16))
    edge_emb = jnp.ones((batch.senders.shape[0], 8))
    params = module.init(jax.random.key(0), x, edge_emb, pairs, None)
    out, w = module.apply(params, x, edge_emb, pairs, None)
    assert np.all(np.asarray(out)[lonely] == 0.0)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in w)
