"""A two-population network with a known number of connections."""

import numpy as np

from graphs import EdgeKind, NodeKind, convert_file
from tests.fixtures import two_population_network


def test_counts(write_nml):
    cg = convert_file(write_nml("net.nml", two_population_network()))
    assert cg.nodes_by_kind() == {"cls": 1, "neuron": 5, "soma": 5, "dendrite": 0,
                                  "axon": 0, "synapse": 4, "input": 1}
    assert cg.edges_by_kind() == {"axial": 0, "membership": 10, "synaptic": 8, "gap": 0,
                                  "input": 1, "cls": 10}


def test_synapse_nodes_sit_between_pre_and_post(write_nml):
    cg = convert_file(write_nml("net.nml", two_population_network()))
    syn = np.flatnonzero(cg.node_kind == NodeKind.SYNAPSE)
    sel = cg.edge_kind == EdgeKind.SYNAPTIC
    pairs = {}
    for s, r in zip(cg.senders[sel], cg.receivers[sel]):
        if r in syn:
            pairs.setdefault(r, [None, None])[0] = cg.node_name[s]
        else:
            pairs.setdefault(s, [None, None])[1] = cg.node_name[r]
    got = sorted((cg.node_name[k], pre, post) for k, (pre, post) in pairs.items())
    assert got == [("AtoB/0", "A/0/soma", "B/0/soma"), ("AtoB/1", "A/1/soma", "B/0/soma"),
                   ("AtoB/2", "A/2/soma", "B/1/soma"), ("AtoB/3", "A/0/soma", "B/1/soma")]
    assert np.all(cg.neuron_id[syn] == -1)
    assert np.all(cg.edge_forward[sel] == 1)


def test_weights_delays_and_kinetics(write_nml):
    cg = convert_file(write_nml("net.nml", two_population_network()))
    sel = cg.edge_kind == EdgeKind.SYNAPTIC
    weights = cg.edge_feature("weight")[sel]
    delays = cg.edge_feature("delay")[sel]
    np.testing.assert_allclose(sorted(weights), [1, 1, 1, 1, 1, 1, 2, 2], rtol=1e-5)
    np.testing.assert_allclose(np.nanmax(delays), 5.0, rtol=1e-5)
    assert np.sum(np.isfinite(delays)) == 2  # only the connectionWD has a delay
    np.testing.assert_allclose(cg.edge_feature("conductance")[sel], 0.5, rtol=1e-5)
    syn = cg.node_kind == NodeKind.SYNAPSE
    np.testing.assert_allclose(cg.feature("syn_tau_decay")[syn], 5.0, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("syn_tau_rise")[syn], 0.5, rtol=1e-5)


def test_cell_parameters_in_reference_units(write_nml):
    cg = convert_file(write_nml("net.nml", two_population_network()))
    name = list(cg.node_name)
    a0, b0 = name.index("A/0"), name.index("B/0")
    np.testing.assert_allclose(cg.feature("capacitance")[[a0, b0]], [1000, 100], rtol=1e-5)
    np.testing.assert_allclose(cg.feature("v_thresh")[[a0, b0]], [-50, -40], rtol=1e-5)
    np.testing.assert_allclose(cg.feature("izh_a")[b0], 0.03, rtol=1e-5)
    np.testing.assert_allclose(cg.feature("izh_d")[b0], 100, rtol=1e-5)
    assert cg.feature("class_iafCell")[a0] == 1 and cg.feature("class_izhikevich2007Cell")[b0] == 1
    inp = np.flatnonzero(cg.node_kind == NodeKind.INPUT)[0]
    np.testing.assert_allclose(cg.feature("input_amplitude")[inp], 0.5, rtol=1e-5)
    # n_syn_in counts synapses arriving at the soma of B/1 (two connections).
    np.testing.assert_allclose(cg.feature("n_syn_in")[name.index("B/1/soma")], 2, rtol=1e-5)


def canonical(cg):
    """The graph up to node order: named nodes and named edges with their features."""
    nodes = sorted((n, k, tuple(f), tuple(m)) for n, k, f, m in
                   zip(cg.node_name, cg.node_kind, cg.node_features.round(6), cg.node_feature_mask))
    edges = sorted((cg.node_name[s], cg.node_name[r], k, fw, tuple(f)) for s, r, k, fw, f in
                   zip(cg.senders, cg.receivers, cg.edge_kind, cg.edge_forward,
                       cg.edge_features.round(6)))
    return nodes, edges


def test_xml_element_order_does_not_change_the_graph(write_nml):
    a = convert_file(write_nml("a.nml", two_population_network()))
    b = convert_file(write_nml("b.nml", two_population_network(order=(3, 1, 0, 2), swap=True)))
    ca, cb = canonical(a), canonical(b)
    # Index features (population order) legitimately depend on the order of populations.
    assert [n[:2] for n in ca[0]] == [n[:2] for n in cb[0]]
    assert ca[1] == cb[1]


def test_gap_junctions_are_symmetric(write_nml):
    body = """
    <iafCell id="iaf" leakReversal="-65mV" thresh="-50mV" reset="-70mV" C="1nF" leakConductance="10nS"/>
    <gapJunction id="gj" conductance="10pS"/>
    <network id="net">
      <population id="P" component="iaf" size="2"/>
      <electricalProjection id="E" presynapticPopulation="P" postsynapticPopulation="P">
        <electricalConnection id="0" preCell="0" postCell="1" synapse="gj"/>
      </electricalProjection>
    </network>"""
    cg = convert_file(write_nml("gj.nml", body))
    sel = cg.edge_kind == EdgeKind.GAP
    assert sorted(zip(cg.node_name[cg.senders[sel]], cg.node_name[cg.receivers[sel]])) == [
        ("P/0/soma", "P/1/soma"), ("P/1/soma", "P/0/soma")]
    np.testing.assert_allclose(cg.edge_feature("conductance")[sel], 0.01, rtol=1e-5)


def test_zero_weight_is_kept(write_nml):
    body = two_population_network().replace('weight="2.0"', 'weight="0"')
    cg = convert_file(write_nml("w0.nml", body))
    weights = cg.edge_feature("weight")[cg.edge_kind == EdgeKind.SYNAPTIC]
    assert sorted(weights)[:2] == [0, 0]


def test_spike_array_populations_become_input_nodes(write_nml):
    from graphs.schema import EdgeKind, NodeKind
    body = """
      <iafCell id="iaf" leakReversal="-65mV" thresh="-50mV" reset="-70mV" C="1nF" leakConductance="10nS"/>
      <expOneSynapse id="syn" gbase="1nS" erev="0mV" tauDecay="2ms"/>
      <spikeArray id="train"><spike id="0" time="10ms"/><spike id="1" time="20ms"/></spikeArray>
      <network id="net">
        <population id="cells" component="iaf" size="2"/>
        <population id="src" component="train" size="3"/>
        <projection id="drive" presynapticPopulation="src" postsynapticPopulation="cells" synapse="syn">
          <connectionWD id="0" preCellId="../src[2]" postCellId="../cells[1]" weight="1" delay="1ms"/>
        </projection>
      </network>"""
    cg = convert_file(write_nml("src.nml", body))
    by_kind = cg.nodes_by_kind()
    assert by_kind["neuron"] == 2 and by_kind["input"] == 3
    src2 = list(cg.node_name).index("src/2")
    assert cg.node_kind[src2] == NodeKind.INPUT and cg.neuron_id[src2] == -1
    syn = int(np.flatnonzero(cg.node_kind == NodeKind.SYNAPSE)[0])
    into = (cg.receivers == syn) & (cg.edge_kind == EdgeKind.SYNAPTIC)
    assert cg.senders[into].tolist() == [src2]
