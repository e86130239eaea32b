"""Large generated models convert with exact counts (slow: run with -m slow)."""

import numpy as np
import pytest

from graphs import EdgeKind, convert_file
from graphs.synthetic import write_morphology, write_network

pytestmark = pytest.mark.slow


def test_20k_segment_morphology(tmp_path):
    path = tmp_path / "tree.nml"
    write_morphology(path, 20_000)
    cg = convert_file(path, "segment")
    assert cg.n_nodes == 20_002
    assert cg.edges_by_kind()["axial"] == 2 * 19_999
    assert np.all(np.isfinite(cg.feature("path_distance")[2:]))
    sections = convert_file(path, "section")
    assert sections.nodes_by_kind()["dendrite"] < 20_000 // 5  # unbranched runs merged


def test_2k_cell_network(tmp_path):
    path = tmp_path / "net.nml"
    write_network(path, 2_000, fan_in=10)
    cg = convert_file(path)
    assert cg.nodes_by_kind() == {"cls": 1, "neuron": 2000, "soma": 2000, "dendrite": 0,
                                  "axon": 0, "synapse": 20_000, "input": 2000}
    assert cg.edges_by_kind()["synaptic"] == 40_000
    delays = cg.edge_feature("delay")[cg.edge_kind == EdgeKind.SYNAPTIC]
    assert np.all((delays > 1 - 1e-4) & (delays < 5 + 1e-4))  # float32 storage
