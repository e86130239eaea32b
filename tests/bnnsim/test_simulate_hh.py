"""Hodgkin-Huxley cells: single compartments against jNeuroML, the ball-and-stick cell
against cable theory (jNeuroML's jLEMS simulates single-compartment cells only)."""

import shutil

import numpy as np
import pytest

import bnnsim
from bnnsim.compare import match_spikes
from bnnsim.morphology import axial_conductances, network_rows, neuron_view, segment_areas
from bnnsim import canonical as cn
from bnnsim import lems

E2 = dict(kind="expTwoSynapse", gbase=3.0, erev=0.0, tauRise=0.5, tauDecay=5.0)


def run(cells, pulses, duration, dt, connections=(), gaps=(), sources=()):
    m, soma = network_rows(cells, pulses, connections, gaps, sources)
    r = bnnsim.simulate(m.cells, m.inputs, duration, dt, synapses=m.synapses, gaps=m.gaps,
                        sources=m.sources)
    return neuron_view(r, soma)


def test_hh_cell_rests_and_fires_under_current():
    r = run([cn.hh_single_cell()] * 2, [[], [dict(delay=10, duration=100, amplitude=100)]],
            150.0, 0.01)
    assert not r.spikes[:, 0].any()
    np.testing.assert_allclose(r.v[-1, 0], -65.0, atol=0.1)  # the HH resting potential
    t = r.spike_times(1)
    assert 5 <= t.size <= 10 and t.min() > 10 and t.max() < 111


def test_single_compartment_hh_network_agrees_with_jneuroml(tmp_path):
    """Three HH cells (areas and densities differ), a synapse, a gap junction, a spike
    source, at dt = 0.01 ms: counts within 5%, >= 90% of spikes within 2 ms."""
    if shutil.which("java") is None:
        pytest.skip("java is not installed: jNeuroML cannot run here")
    cells = [cn.hh_single_cell(), cn.hh_single_cell(1500, gk=30.0), cn.hh_single_cell(800)]
    pulses = [[dict(delay=20, duration=150, amplitude=80)], [], [dict(delay=100, duration=50,
                                                                      amplitude=60)]]
    conns = [dict(pre=0, post=1, synapse=E2, weight=1.0, delay=1.0),
             dict(pre=3, post=2, synapse=dict(E2, gbase=2.0), weight=1.0, delay=0.0)]
    sources = [[30.0, 32.0, 60.0, 61.0, 62.0]]
    gaps = [dict(a=1, b=2, conductance=0.5)]
    model = cn.network_model(cells, pulses, conns, gaps, sources)
    lems.run_jneuroml(cn.write_lems_run(model, tmp_path, 200.0, 0.01))
    ref = lems.read_spikes(tmp_path / "spikes.spikes", len(cells))
    ours = run(cells, pulses, 200.0, 0.01, conns, gaps, sources)
    for i in range(len(cells)):
        a = match_spikes(ref[i], ours.spike_times(i), tol=2.0)
        assert a.count_ref > 0, i
        assert a.count_error <= 0.05 and a.matched >= 0.9, (i, a)


def _cable(length_um, diam_um, rm_ohm_cm2, ra_ohm_cm):
    """(conductance of a sealed-end finite cable seen from its start (S), space constant um)."""
    d = diam_um * 1e-4
    lam = np.sqrt(rm_ohm_cm2 * d / (4 * ra_ohm_cm)) * 1e4
    g_inf = np.pi * d ** 1.5 / (2 * np.sqrt(rm_ohm_cm2 * ra_ohm_cm))
    return g_inf * np.tanh(length_um / lam), lam


def test_passive_ball_and_stick_matches_cable_theory():
    """Steady state under a DC soma current: soma depolarisation I / (G_soma + G_dend +
    G_axon) and dendritic attenuation cosh((L - x)/lam) / cosh(L/lam), within 0.5%."""
    cell = cn.ball_and_stick_cell(gna=0.0, gk=0.0, n_dend=20)  # fine segments for the test
    amp = 100.0  # pA
    m, _ = network_rows([cell], [[dict(delay=0, duration=100, amplitude=amp)]])
    r = bnnsim.simulate(m.cells, m.inputs, 60.0, 0.001, gaps=m.gaps)
    v = r.v[-1] - cell["el"]
    rm, ra = 1 / 0.3e-3, cell["Ra"]
    g_dend, lam = _cable(400.0, 2.0, rm, ra)
    g_axon, _ = _cable(50.0, 1.0, rm, ra)
    g_soma = 0.3e-3 * np.pi * (20e-4) ** 2
    np.testing.assert_allclose(v[0], amp * 1e-9 / (g_soma + g_dend + g_axon), rtol=5e-3)
    x = 400.0 - 10.0  # centre of the last 20 um dendrite segment
    np.testing.assert_allclose(v[20] / v[0], np.cosh((400 - x) / lam) / np.cosh(400 / lam),
                               rtol=5e-3)


def test_geometry_by_hand():
    cell = dict(cn.ball_and_stick_cell(soma_diam=10.0, dend_length=100.0, dend_diam=2.0,
                                       n_dend=2, axon_length=10.0, axon_diam=1.0), Ra=100.0)
    np.testing.assert_allclose(segment_areas(cell),
                               np.pi * np.array([100.0, 100.0, 100.0, 10.0]))
    half = 100.0 * 1e4 * 25.0 / np.pi  # ohm: Ra * (L/2) / (pi r^2), r = 1 um, L = 50 um
    g = {(k, p): c for k, p, c in axial_conductances(cell)}
    np.testing.assert_allclose(g[(1, 0)], 1e9 / half)  # the soma sphere adds nothing
    np.testing.assert_allclose(g[(2, 1)], 1e9 / (2 * half))
    np.testing.assert_allclose(g[(3, 0)], 1e9 / (100.0 * 1e4 * 5.0 / (np.pi * 0.25)))


def test_dataset_step_is_converged_for_the_ball_and_stick_cell():
    """Labels use dt = 0.05 ms: spike counts within 5% of dt = 0.01 ms."""
    cells = [cn.ball_and_stick_cell()] * 3
    pulses = [[dict(delay=0, duration=500, amplitude=a)] for a in (200.0, 400.0, 800.0)]
    coarse, fine = run(cells, pulses, 500.0, 0.05), run(cells, pulses, 500.0, 0.01)
    for i in range(3):
        n_fine = fine.spike_times(i).size
        assert n_fine > 5 and abs(coarse.spike_times(i).size - n_fine) <= 0.05 * n_fine


def test_synapse_lands_on_its_dendrite_segment():
    """A synapse on the distal dendrite depolarises that segment more than the soma."""
    cells = [cn.hh_single_cell(), cn.ball_and_stick_cell()]
    conn = dict(pre=0, post=1, post_segment=4, synapse=dict(E2, gbase=0.5), weight=1.0)
    pulses = [[dict(delay=5, duration=20, amplitude=100)], []]
    m, soma = network_rows(cells, pulses, [conn])
    assert m.synapses.post.tolist() == [soma[1] + 4]
    r = bnnsim.simulate(m.cells, m.inputs, 30.0, 0.01, synapses=m.synapses, gaps=m.gaps)
    base = bnnsim.simulate(m.cells, m.inputs, 30.0, 0.01,
                           synapses=m.synapses._replace(weight=0 * m.synapses.weight), gaps=m.gaps)
    epsp = (r.v - base.v).max(axis=0)  # subthreshold: no spike in the ball-and-stick cell
    assert not r.spikes[:, soma[1]].any()
    assert epsp[soma[1] + 4] > 1.5 * epsp[soma[1]] > 0
    with pytest.raises(ValueError, match="post_segment 9 is not a segment of neuron 1"):
        network_rows(cells, [[], []], [dict(conn, post_segment=9)])


def test_hh_networks_convert_with_compartments(tmp_path):
    from bnnsim.dataset import build_dataset
    from graphs import load_cg
    from graphs.schema import EdgeKind, NodeKind

    report = build_dataset(tmp_path, 2, seed=1, families=["hh"], ood_family=None,
                           progress=False)
    assert all(r["status"] == "ok" for r in report["networks"]), report["networks"]
    cg = load_cg(report["networks"][0]["npz"])
    kinds = set(cg.node_kind.tolist())
    assert {NodeKind.SOMA, NodeKind.DENDRITE, NodeKind.AXON, NodeKind.SYNAPSE} <= kinds
    # some synapse node feeds a dendrite compartment
    syn = cg.edge_kind == EdgeKind.SYNAPTIC
    targets = cg.node_kind[cg.receivers[syn]]
    assert (targets == NodeKind.DENDRITE).any()
    labels = cg.meta["labels"]["firing_pattern"]
    neurons = np.flatnonzero(cg.node_kind == NodeKind.NEURON)
    assert all(labels[i] >= 0 for i in neurons)
    assert all(labels[i] == -1 for i in np.flatnonzero(cg.node_kind != NodeKind.NEURON))
    if shutil.which("java") is not None:  # and the files are valid NeuroML2
        from pyneuroml import pynml
        ok, message = pynml.validate_neuroml2(report["networks"][0]["file"],
                                              verbose_validate=False, return_string=True)
        assert ok and "All valid" in message, message
