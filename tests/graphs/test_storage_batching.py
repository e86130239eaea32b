"""npz round trip, schema check, bucketed padding and padding invariance."""

import json

import numpy as np
import pytest

from graphs import (SchemaMismatch, batch_and_pad, batch_graphs, bucket_size, convert_file,
                    load_cg, pad_to_bucket, padding_efficiency, save_cg, stack_device_batches)
from tests.fixtures import BALL_AND_STICK, two_population_network


@pytest.fixture
def graphs(write_nml):
    return [convert_file(write_nml("net.nml", two_population_network())),
            convert_file(write_nml("bs.cell.nml", BALL_AND_STICK), "segment")]


def test_npz_round_trip(graphs, tmp_path):
    for cg in graphs:
        back = load_cg(save_cg(cg, tmp_path / "g.npz"))
        for name in ("node_features", "node_feature_mask", "node_kind", "neuron_id",
                     "node_name", "senders", "receivers", "edge_kind", "edge_forward",
                     "edge_features", "edge_feature_mask"):
            np.testing.assert_array_equal(getattr(back, name), getattr(cg, name))
        assert back.meta["sha256"] == cg.meta["sha256"]


def test_loading_checks_schema_version(graphs, tmp_path):
    path = save_cg(graphs[0], tmp_path / "g.npz")
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"]))
    meta["schema_version"] = "0.1"
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(SchemaMismatch, match="0.1"):
        load_cg(tmp_path / "old.npz")


def test_bucket_sizes():
    assert [bucket_size(n) for n in (1, 16, 17, 21, 33, 100, 1000)] == [16, 16, 20, 24, 40, 112, 1024]
    for n in range(1, 5000, 37):
        assert n <= bucket_size(n, minimum=1) <= max(1.25 * n, 4)


def test_padding_keeps_real_nodes_and_marks_padding(graphs):
    batch = batch_graphs(graphs)
    small = pad_to_bucket(batch)
    big = pad_to_bucket(batch, n_graph=6, n_node=256, n_edge=512)
    n_real, e_real = int(batch.n_node.sum()), int(batch.n_edge.sum())
    for padded in (small, big):
        np.testing.assert_array_equal(padded.nodes["features"][:n_real], batch.nodes["features"])
        np.testing.assert_array_equal(padded.senders[:e_real], batch.senders)
        assert padded.nodes["valid"].sum() == n_real and not padded.nodes["valid"][n_real:].any()
        assert np.all(padded.nodes["kind"][n_real:] == -1)
        assert np.all(padded.nodes["neuron_id"][n_real:] == -1)
        assert np.all(padded.edges["kind"][e_real:] == -1)
        assert padded.globals["valid"].tolist()[:2] == [True, True]
        assert not padded.globals["valid"][2:].any()
    eff = padding_efficiency(small)
    assert eff["real_nodes"] == n_real and eff["padded_nodes"] == bucket_size(n_real + 1)
    assert 0.75 <= eff["node_fill"] <= 1


def test_neuron_id_indexes_the_batch(graphs):
    batch = batch_graphs(graphs)
    offset = graphs[0].n_nodes
    second = batch.nodes["neuron_id"][offset:]
    np.testing.assert_array_equal(second, np.where(graphs[1].neuron_id >= 0,
                                                   graphs[1].neuron_id + offset, -1))
    owners = batch.nodes["neuron_id"][batch.nodes["neuron_id"] >= 0]
    assert np.all(batch.nodes["kind"][owners] == 1)


def test_stack_device_batches_requires_one_shape(graphs):
    a = batch_and_pad(graphs[:1], n_graph=3, n_node=64, n_edge=64)
    b = batch_and_pad(graphs[1:], n_graph=3, n_node=64, n_edge=64)
    stacked = stack_device_batches([a, b])
    assert stacked.nodes["features"].shape[:2] == (2, 64)
    with pytest.raises(ValueError, match="same shapes"):
        stack_device_batches([a, batch_and_pad(graphs[1:])])
