"""Real NeuroML2: the third-party corpus in ../shared/neuroml and jNeuroML's examples."""

import numpy as np
import pytest

from graphs import ConversionError, convert_file
from graphs.examples import bundled_examples_dir
from graphs.schema import NUM_EDGE_FEATURES, NUM_NODE_FEATURES


def check_graph(cg):
    n, e = cg.n_nodes, cg.n_edges
    assert cg.node_features.shape == (n, NUM_NODE_FEATURES)
    assert cg.edge_features.shape == (e, NUM_EDGE_FEATURES)
    assert np.all(np.isfinite(cg.node_features)) and np.all(np.isfinite(cg.edge_features))
    assert np.all(cg.node_features[cg.node_feature_mask == 0] == 0)  # absent means 0
    assert np.all((cg.senders >= 0) & (cg.senders < n) & (cg.receivers < n))
    owner = cg.neuron_id[cg.neuron_id >= 0]
    assert np.all(cg.node_kind[owner] == 1)  # neuron_id points at neuron nodes


@pytest.mark.parametrize("granularity", ["section", "segment", "point"])
def test_shared_corpus_converts_or_fails_clearly(shared_neuroml, granularity):
    files = sorted(shared_neuroml.rglob("*.nml"))
    assert len(files) >= 80
    ok, failed = 0, {}
    for f in files:
        try:
            check_graph(convert_file(f, granularity))
            ok += 1
        except ConversionError as e:
            assert f.name in str(e) and e.element, str(e)
            failed[f.name] = type(e).__name__
    assert ok / len(files) >= 0.95, failed
    # The two PINGnets files include cells by an absolute path of their author's machine,
    # outside the model's tree (graphs.policy): refused, never looked at.
    assert failed.items() <= {"IClamp_Pyr.net.nml": "OutsideModelTree",
                              "IClamp_PassiveCell.net.nml": "OutsideModelTree"}.items()


def test_shared_corpus_known_sizes(shared_neuroml):
    medium = convert_file(shared_neuroml / "ACnet2/neuroConstruct/generatedNeuroML2/MediumNet.net.nml")
    assert medium.nodes_by_kind()["neuron"] == 60
    assert medium.nodes_by_kind()["synapse"] == 984  # MANIFEST: connection=984
    l23 = convert_file(shared_neuroml / "SmithEtAl2013-L23DendriticSpikes/NeuroML2/L23_NoHotSpot.cell.nml",
                       "segment")
    assert sum(l23.nodes_by_kind()[k] for k in ("soma", "dendrite", "axon")) == 2953


def test_jnml_bundled_examples_all_convert(tmp_path):
    files = sorted(bundled_examples_dir(tmp_path).glob("*.nml"))
    assert len(files) >= 15
    for f in files:
        check_graph(convert_file(f))
