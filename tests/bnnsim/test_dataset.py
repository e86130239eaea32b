"""The canonical dataset: generated networks, labels aligned with the CG, jNeuroML agreement."""

import json
import shutil

import numpy as np
import pytest

from bnnsim.compare import match_spikes
from bnnsim.dataset import simulate_spec
from bnnsim.generate import random_network
from bnnsim.labels import FIRING_PATTERNS, REGIMES
from bnnsim import canonical as cn
from bnnsim import lems
from graphs import load_cg
from bnnsim.cli import main
from graphs.schema import NodeKind


def test_synth_command_writes_labelled_graphs(tmp_path):
    out = tmp_path / "ds"
    assert main(["synth", "--out", str(out), "--n", "3", "--seed", "7", "--neurons", "5", "12"]) == 0
    assert main(["synth", "--out", str(out), "--neurons", "9", "3"]) == 2
    report = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in report["networks"]] == ["ok"] * 3
    assert set(report["class_balance"]["firing_pattern"]["train"]) == set(FIRING_PATTERNS)
    for row in report["networks"]:
        cg = load_cg(row["npz"])
        labels = cg.meta["labels"]
        pattern = np.asarray(labels["firing_pattern"])
        assert pattern.shape == (cg.n_nodes,)
        neurons = cg.node_kind == NodeKind.NEURON
        # every generated neuron has a label; CLS, compartments, synapses, inputs do not
        assert np.all(pattern[neurons] >= 0) and np.all(pattern[~neurons] == -1)
        assert neurons.sum() == row["generator"]["n_neurons"] and 5 <= neurons.sum() <= 12
        if row["generator"]["drive"] == "poisson":  # spike sources are input nodes
            assert (cg.node_kind == NodeKind.INPUT).sum() == neurons.sum()
        assert 0 <= labels["regime"] < len(REGIMES)
        assert row["split"] in ("train", "val", "test", "ood")  # report.json holds the split
        # no activity leaks into the features
        from graphs.schema import NODE_INDEX
        for name in ("rate", "isi_cv", "burst_fraction", "mean_v"):
            assert not cg.node_feature_mask[:, NODE_INDEX[name]].any()


def test_generated_files_are_valid_neuroml(tmp_path):
    if shutil.which("java") is None:
        pytest.skip("java is not installed: jNeuroML's validator cannot run here")
    from pyneuroml import pynml

    from bnnsim.dataset import build_dataset
    report = build_dataset(tmp_path, 3, seed=5, ood_family=None, progress=False)
    kinds = set()
    for row in report["networks"]:
        text = open(row["file"]).read()
        kinds |= {k for k in ("spikeArray", "blockingPlasticSynapse", 'tag="stdp"',
                              "electricalProjection") if k in text}
        ok, message = pynml.validate_neuroml2(row["file"], verbose_validate=False,
                                              return_string=True)
        assert ok and "All valid" in message, message
    assert len(kinds) >= 3, kinds  # the files exercise the unusual elements


def test_same_seed_same_network():
    a, b = random_network(11), random_network(11)
    assert a.cells == b.cells and a.connections == b.connections and a.sources == b.sources
    assert random_network(12).cells != a.cells


@pytest.mark.parametrize("seed, families, drive", [
    (3, ["lif"], "pulse"),
    pytest.param(4, ["izhikevich"], "poisson", marks=pytest.mark.slow),
    pytest.param(5, ["adex"], "pulse", marks=pytest.mark.slow)])
def test_generated_network_agrees_with_jneuroml(tmp_path, seed, families, drive):
    """Per network: every neuron's spike count within 5% and >= 90% of all spikes matched
    within 2 ms (recurrent networks can amplify a one-step difference for a few spikes)."""
    if shutil.which("java") is None:
        pytest.skip("java is not installed: jNeuroML cannot run here")
    spec = random_network(seed, n_neurons=12, families=families, drive=drive, duration=400.0,
                          p_connect=0.1)
    model = cn.network_model(spec.cells, spec.pulses, spec.connections, spec.gaps, spec.sources)
    lems.run_jneuroml(cn.write_lems_run(model, tmp_path, spec.meta["duration_ms"], 0.025))
    ref = lems.read_spikes(tmp_path / "spikes.spikes", len(spec.cells))
    ours = simulate_spec(spec, 0.025)
    agreements = [match_spikes(ref[i], ours.spike_times(i)) for i in range(len(spec.cells))]
    total = sum(a.count_ref for a in agreements)
    assert total > 0
    assert all(abs(a.count_ours - a.count_ref) <= max(1, 0.05 * a.count_ref) for a in agreements)
    assert sum(a.matched * a.count_ref for a in agreements) / total >= 0.9


def test_stdp_labels_sit_on_plastic_synapse_nodes(tmp_path):
    from bnnsim.dataset import build_dataset
    from graphs.schema import NODE_INDEX
    report = build_dataset(tmp_path, 2, seed=3, families=["lif"], ood_family=None,
                           progress=False)
    n_plastic = 0
    for row in report["networks"]:
        cg = load_cg(row["npz"])
        dw = cg.meta["labels"]["stdp_dw"]
        plastic = cg.node_feature_mask[:, NODE_INDEX["syn_plastic"]] * cg.node_features[
            :, NODE_INDEX["syn_plastic"]] > 0
        has = np.array([d is not None for d in dw])
        assert np.all(plastic[has])  # STDP synapses carry the plastic flag (STP ones too)
        assert np.all(cg.node_kind[has] == NodeKind.SYNAPSE)
        n_plastic += int(has.sum())
        changes = np.array([d for d in dw if d is not None])
        assert np.all(np.isfinite(changes)) and np.all(np.abs(changes) <= 2.0)
    assert n_plastic > 0


def test_default_dataset_is_built_once_then_reused(tmp_path):
    from bnnsim.dataset import default_dataset
    first = default_dataset(tmp_path, n=2, progress=False)
    stamp = (first / "report.json").stat().st_mtime_ns
    assert len(list((first / "graphs").glob("*.npz"))) == 2
    again = default_dataset(tmp_path, n=2, progress=False)
    assert again == first and (again / "report.json").stat().st_mtime_ns == stamp


def test_activity_features_only_when_asked(tmp_path):
    from bnnsim.dataset import build_dataset
    from graphs.schema import NODE_COLUMNS, NODE_INDEX, decode
    build_dataset(tmp_path / "hidden", 1, seed=2, ood_family=None, progress=False)
    report = build_dataset(tmp_path / "shown", 1, seed=2, ood_family=None,
                           activity_features=True, progress=False)
    hidden = load_cg(tmp_path / "hidden" / "graphs" / "net00000.npz")
    shown = load_cg(report["networks"][0]["npz"])
    cols = [NODE_INDEX[c] for c in ("rate", "isi_cv", "burst_fraction", "mean_v")]
    neurons = shown.node_kind == NodeKind.NEURON
    assert not hidden.node_feature_mask[:, cols].any()
    assert shown.node_feature_mask[np.ix_(neurons, cols)].all()
    assert not shown.node_feature_mask[np.ix_(~neurons, cols)].any()
    j = NODE_INDEX["rate"]
    rates = decode(NODE_COLUMNS[j], shown.node_features[neurons, j])
    expected = [r for r, k in zip(shown.meta["labels"]["rate_hz"], shown.node_kind) if k == NodeKind.NEURON]
    np.testing.assert_allclose(rates, expected, rtol=1e-4, atol=1e-4)


def test_splits_are_stratified_by_regime_and_hold_out_the_ood_family():
    from bnnsim.dataset import assign_splits
    rows = [{"status": "ok", "labels": {"regime": r}, "generator": {"seed": s, "family": f}}
            for s, (r, f) in enumerate([(0, "lif")] * 40 + [(3, "lif")] * 7 + [(1, "adex")] * 5)]
    rows.append({"status": "error"})
    splits = assign_splits(rows, "adex")
    assert splits[-1] == "none" and splits[47:52] == ["ood"] * 5
    rare = splits[40:47]  # 7 networks of a rare regime reach every split
    assert {"train", "val", "test"} == set(rare) and rare.count("train") == 5
    common = splits[:40]
    assert (common.count("train"), common.count("val"), common.count("test")) == (28, 6, 6)
    assert assign_splits(rows, "adex") == splits  # deterministic


def test_spike_sources_expose_their_rate_and_start(tmp_path):
    import neuroml.writers

    from bnnsim import canonical

    from graphs import convert_file
    from graphs.schema import NODE_COLUMNS, NODE_INDEX, NodeKind, encode_values
    lif = dict(family="iafCell", C=100, leak_conductance=10, leak_reversal=-65, thresh=-50,
               reset=-70)
    syn = dict(kind="expOneSynapse", gbase=1.0, erev=0.0, tauDecay=2.0)
    model = canonical.network_model([lif], [[]], [dict(pre=1, post=0, synapse=syn)],
                                    sources=[[100.0, 200.0, 300.0, 400.0]])
    path = tmp_path / "net.nml"
    neuroml.writers.NeuroMLWriter.write(model.doc, str(path))
    cg = convert_file(path)
    node = np.flatnonzero(cg.node_kind == NodeKind.INPUT)[0]
    cols = np.array([NODE_INDEX["input_rate"], NODE_INDEX["input_delay"]])
    np.testing.assert_allclose(cg.node_features[node, cols],
                               encode_values(NODE_COLUMNS, cols, np.array([10.0, 100.0])),
                               rtol=1e-5)  # 4 spikes / 0.4 s = 10 Hz; first spike at 100 ms
    assert cg.node_feature_mask[node, cols].all()


def test_a_killed_build_resumes_and_redoes_half_written_items(tmp_path, monkeypatch):
    """Killed after 3 of 5 networks, with one finished graph damaged on disk: the second
    build keeps the intact ones, redoes the rest, and ends as an uninterrupted build."""
    import bnnsim.dataset as D
    kw = dict(n=5, seed=3, neuron_range=(5, 8), chunk=2, ood_family=None, progress=False)
    whole = D.build_dataset(tmp_path / "whole", **kw)

    real, calls = D.build_one, []

    def killed_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is stopped here
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(D, "build_one", killed_after_three)
    with pytest.raises(KeyboardInterrupt):
        D.build_dataset(tmp_path / "resumed", **kw)
    assert not (tmp_path / "resumed" / "report.json").exists()  # not read as complete
    first, damaged = calls[0], calls[1]
    npz = tmp_path / "resumed" / "graphs" / f"{damaged}.npz"
    npz.write_bytes(npz.read_bytes()[:300])  # a half-written graph under a marked item
    monkeypatch.setattr(D, "build_one", lambda *a, **k: (calls.append(a[1]), real(*a, **k))[1])
    kept_mtime = (tmp_path / "resumed" / "graphs" / f"{first}.npz").stat().st_mtime_ns
    resumed = D.build_dataset(tmp_path / "resumed", **kw)
    redone = calls[3:]
    assert damaged in redone and first not in redone and len(redone) == 5 - 2
    assert (tmp_path / "resumed" / "graphs" / f"{first}.npz").stat().st_mtime_ns == kept_mtime

    def comparable(report):
        return [{k: v for k, v in r.items() if k not in ("file", "npz")}
                for r in report["networks"]]

    assert comparable(resumed) == comparable(whole)
    for a, b in zip(whole["networks"], resumed["networks"]):
        ga, gb = load_cg(a["npz"]), load_cg(b["npz"])
        np.testing.assert_array_equal(ga.node_features, gb.node_features)
        assert ga.meta["labels"] == gb.meta["labels"]
