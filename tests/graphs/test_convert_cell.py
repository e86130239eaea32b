"""A ball-and-stick cell, checked by hand at all three granularities."""

import numpy as np
import pytest

from graphs import EdgeKind, NodeKind, convert_file
from tests.fixtures import BALL_AND_STICK


@pytest.fixture
def ball_and_stick(write_nml):
    return write_nml("bs.cell.nml", BALL_AND_STICK)


def edges(cg, kind):
    sel = cg.edge_kind == kind
    return sorted(zip(cg.node_name[cg.senders[sel]], cg.node_name[cg.receivers[sel]],
                      cg.edge_forward[sel]))


def test_section_granularity_counts_and_forward_flags(ball_and_stick):
    cg = convert_file(ball_and_stick, "section")
    assert list(cg.node_kind) == [NodeKind.CLS, NodeKind.NEURON, NodeKind.SOMA, NodeKind.DENDRITE]
    assert cg.edges_by_kind() == {"axial": 2, "membership": 4, "synaptic": 0, "gap": 0,
                                  "input": 0, "cls": 2}
    # Dendrite -> soma is the direction of signal flow.
    assert edges(cg, EdgeKind.AXIAL) == [("bs/0/dend1", "bs/0/soma", 1),
                                        ("bs/0/soma", "bs/0/dend1", 0)]
    assert list(cg.neuron_id) == [-1, 1, 1, 1]


def test_section_geometry_and_channels(ball_and_stick):
    cg = convert_file(ball_and_stick, "section")
    soma, dend = 2, 3
    np.testing.assert_allclose(cg.feature("length")[[soma, dend]], [0, 200], rtol=1e-5)
    np.testing.assert_allclose(cg.feature("surface_area")[soma], np.pi * 100, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("surface_area")[dend], 2 * np.pi * 2 * 100, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("path_distance")[dend], 100, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("g_na")[soma], 120, rtol=1e-5)
    assert np.isnan(cg.feature("g_na")[dend])  # absent, not zero
    np.testing.assert_allclose(cg.feature("g_leak")[[soma, dend]], [0.3, 0.3], rtol=1e-5)
    np.testing.assert_allclose(cg.feature("e_leak")[dend], -54.3, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("specific_capacitance")[dend], 1.0, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("axial_resistivity")[dend], 100, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("v_thresh")[1], -20, rtol=1e-5)
    assert cg.feature("class_hhCell")[1] == 1
    np.testing.assert_allclose(cg.feature("g_na")[2], 120, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("axial_resistivity")[3], 100, rtol=1e-5)


def test_segment_granularity_path_distances(ball_and_stick):
    cg = convert_file(ball_and_stick, "segment")
    assert cg.nodes_by_kind()["dendrite"] == 2
    assert cg.edges_by_kind()["axial"] == 4
    np.testing.assert_allclose(cg.feature("path_distance")[2:], [0, 50, 150], rtol=1e-5)
    assert ("bs/0/dend2", "bs/0/dend1", 1) in edges(cg, EdgeKind.AXIAL)
    np.testing.assert_allclose(cg.edge_feature("distance")[cg.edge_kind == EdgeKind.AXIAL],
                               [55, 55, 100, 100], rtol=1e-5)
    # The dendrite's second segment has no proximal point: it starts at dend1's distal end.
    np.testing.assert_allclose(cg.feature("x")[4], 155, rtol=1e-5)


def test_point_granularity_is_soma_only(ball_and_stick):
    cg = convert_file(ball_and_stick, "point")
    assert list(cg.node_kind) == [NodeKind.CLS, NodeKind.NEURON, NodeKind.SOMA]
    assert cg.edges_by_kind()["axial"] == 0


def test_branch_starts_new_sections(write_nml):
    body = BALL_AND_STICK.replace(
        '<segmentGroup id="soma_group"',
        '<segment id="3" name="dend3"><parent segment="1"/>'
        '<distal x="105" y="100" z="0" diameter="1"/></segment>\n<segmentGroup id="soma_group"')
    body = body.replace('<member segment="2"/>', '<member segment="2"/><member segment="3"/>')
    cg = convert_file(write_nml("branch.cell.nml", body), "section")
    # dend1 ends at a branch point: dend1 | dend2 | dend3 are three sections.
    assert cg.nodes_by_kind()["dendrite"] == 3
    order = cg.feature("branch_order")[cg.node_kind == NodeKind.DENDRITE]
    np.testing.assert_allclose(order, [0, 1, 1])


def test_cell2capools_is_a_multicompartment_cell(write_nml):
    body = BALL_AND_STICK.replace('<cell id="bs">', '<cell2CaPools id="bs">').replace(
        "</cell>", "</cell2CaPools>").replace(
        "biophysicalProperties", "biophysicalProperties2CaPools").replace(
        "membraneProperties", "membraneProperties2CaPools").replace(
        "intracellularProperties", "intracellularProperties2CaPools")
    cg = convert_file(write_nml("ca2.cell.nml", body), "segment")
    assert cg.nodes_by_kind()["dendrite"] == 2
    assert cg.feature("class_hhCell")[1] == 1
    np.testing.assert_allclose(cg.feature("g_na")[2], 120, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("axial_resistivity")[3], 100, rtol=1e-5)


def test_parsing_without_morphology_keeps_ids_groups_and_biophysics(ball_and_stick):
    from graphs.document import parse_document

    full, digest, _ = parse_document(ball_and_stick)
    lite, lite_digest, _ = parse_document(ball_and_stick, morphology=False)
    (cell,), (bare,) = full.cells, lite.cells
    assert lite_digest == digest and bare.id == cell.id
    assert len(cell.morphology.segments) == 3 and not bare.morphology.segments
    assert [g.id for g in bare.morphology.segment_groups] == \
        [g.id for g in cell.morphology.segment_groups]
    assert not any(g.members for g in bare.morphology.segment_groups)
    dens = lambda c: [(d.id, d.cond_density, d.segment_groups)  # noqa: E731
                      for d in c.biophysical_properties.membrane_properties.channel_densities]
    assert dens(bare) == dens(cell)
