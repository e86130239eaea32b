"""NeuroML HDF5 networks (graphs.hdf5), array-built networks and ``--synapses type``."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from graphs import cli
from graphs.convert import convert_file
from graphs.errors import DamagedHDF5, InvalidDataset, NotNeuroML, UnknownComponent
from graphs.reader import read_model
from graphs.schema import NODE_INDEX, EdgeKind, NodeKind
from tests.conftest import REPO
from tests.fixtures import BALL_AND_STICK, IAF, SYN

SHARED_H5 = REPO.parent / "shared" / "neuroml-h5" / "OpenCortex" / "examples" / "HDF5"
ARRAYS = ("node_features", "node_feature_mask", "node_kind", "neuron_id", "node_name",
          "senders", "receivers", "edge_kind", "edge_forward", "edge_features",
          "edge_feature_mask")
GAP = '<gapJunction id="gj" conductance="0.25nS"/>'
POISSON = '<poissonFiringSynapse id="bg" averageRate="8 Hz" synapse="ampa" spikeTarget="./ampa"/>'


def network() -> str:
    """Two populations (ball-and-stick cells with locations, point cells), a chemical
    projection with segments, weights and delays, a gap-junction projection and an
    input list, every element in name order (HDF5 keeps no creation order). Values are
    exact in float32, HDF5's storage type, so XML and HDF5 must give the same CG."""
    locs = [(0, 0, 0), (10.5, -2, 3), (-7, 8.25, 0)]
    inst = "".join(f'<instance id="{i}"><location x="{x}" y="{y}" z="{z}"/></instance>'
                   for i, (x, y, z) in enumerate(locs))
    conns = [(0, 1, 0, 0, 0.5, "1ms"), (1, 0, 2, 0, 2.0, "2.5ms"), (2, 1, 1, 0, 1.0, "4ms"),
             (0, 0, 1, 0, 0.25, "0.5ms")]
    cw = "".join(f'<connectionWD id="{k}" preCellId="../A/{a}/bs" postCellId="../B/{b}/iaf" '
                 f'preSegmentId="{s}" preFractionAlong="0.5" postSegmentId="{t}" '
                 f'postFractionAlong="0.5" weight="{w}" delay="{d}"/>'
                 for k, (a, b, s, t, w, d) in enumerate(conns))
    gaps = "".join(f'<electricalConnectionInstance id="{k}" preCell="../A/{a}/bs" '
                   f'postCell="../A/{b}/bs" preSegment="{s}" postSegment="0" '
                   f'preFractionAlong="0.5" postFractionAlong="0.5" synapse="gj"/>'
                   for k, (a, b, s) in enumerate([(0, 1, 2), (1, 2, 0)]))
    inputs = "".join(f'<input id="{k}" target="../A/{c}/bs" destination="synapses" '
                     f'segmentId="{s}" fractionAlong="0.5"/>'
                     for k, (c, s) in enumerate([(0, 0), (2, 1), (1, 2)]))
    return "\n".join([
        BALL_AND_STICK, IAF, SYN, GAP, POISSON,
        '<network id="net">',
        f'<population id="A" component="bs" size="3" type="populationList">{inst}</population>',
        '<population id="B" component="iaf" size="2"/>',
        f'<projection id="AtoB" presynapticPopulation="A" postsynapticPopulation="B" '
        f'synapse="ampa">{cw}</projection>',
        f'<electricalProjection id="gapsA" presynapticPopulation="A" '
        f'postsynapticPopulation="A">{gaps}</electricalProjection>',
        f'<inputList id="bgA" population="A" component="bg">{inputs}</inputList>',
        "</network>"])


def to_hdf5(xml_path: Path, h5_path: Path) -> Path:
    """Write a NeuroML XML file as HDF5 with libNeuroML's own writer."""
    import importlib

    from neuroml.writers import NeuroMLHdf5Writer

    importlib.import_module("neuroml.utils")  # libNeuroML's exportHdf5 uses it unimported

    NeuroMLHdf5Writer.write(read_model(xml_path).root_document, str(h5_path))
    return h5_path


def assert_same(a, b):
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and np.array_equal(x, y), name


@pytest.fixture
def pair(write_nml, tmp_path):
    xml = write_nml("net.nml", network())
    return xml, to_hdf5(xml, tmp_path / "net.nml.h5")


@pytest.mark.parametrize("synapses", ["connection", "type"])
def test_hdf5_and_xml_give_the_same_graph(pair, synapses):
    xml, h5 = pair
    a, b = convert_file(xml, synapses=synapses), convert_file(h5, synapses=synapses)
    assert_same(a, b)
    assert b.meta["content"] == "network" and b.meta["synapses"] == synapses
    by_kind = b.nodes_by_kind()
    assert by_kind["synapse"] == (4 if synapses == "connection" else 1)
    assert by_kind["input"] == 3 and b.edges_by_kind()["gap"] == 4


def test_name_order_is_the_only_difference(write_nml, tmp_path):
    """Elements out of name order in the XML: the HDF5 graph is the same graph with its
    nodes in another order (names match, and so do the features of every node but the
    population index, which is the population's position)."""
    xml = write_nml("net.nml", network().replace('id="A"', 'id="Z"').replace("../A/", "../Z/")
                    .replace('population="A"', 'population="Z"')
                    .replace('Population="A"', 'Population="Z"'))
    a, b = convert_file(xml), convert_file(to_hdf5(xml, tmp_path / "n.nml.h5"))
    assert not np.array_equal(a.node_name, b.node_name)
    ia, ib = np.argsort(a.node_name), np.argsort(b.node_name)
    assert np.array_equal(a.node_name[ia], b.node_name[ib])
    assert np.array_equal(a.node_kind[ia], b.node_kind[ib])
    keep = np.arange(a.node_features.shape[1]) != NODE_INDEX["population_index"]
    np.testing.assert_array_equal(a.node_features[ia][:, keep], b.node_features[ib][:, keep])


def test_synapse_type_statistics_by_hand(write_nml, tmp_path):
    """Two projections of the same (A, B, ampa) triple and one of (A, B, gaba) -> two
    synapse nodes; counts, weight/delay statistics and per-endpoint edges by hand."""
    gaba = '<expTwoSynapse id="gaba" gbase="1nS" erev="-80mV" tauRise="1ms" tauDecay="10ms"/>'
    rows = {"p1": [(0, 0, 1.0, 1), (0, 1, 2.0, 2)], "p2": [(1, 1, 0.5, 3), (2, 1, 4.0, 4)],
            "q": [(2, 0, 3.0, 2)]}
    syn = {"p1": "ampa", "p2": "ampa", "q": "gaba"}
    projs = "".join(
        f'<projection id="{p}" presynapticPopulation="A" postsynapticPopulation="B" '
        f'synapse="{syn[p]}">' + "".join(
            f'<connectionWD id="{k}" preCellId="../A/{a}/iaf" postCellId="../B/{b}/iaf" '
            f'weight="{w}" delay="{d}ms"/>' for k, (a, b, w, d) in enumerate(r))
        + "</projection>" for p, r in rows.items())
    xml = write_nml("t.nml", "\n".join([
        IAF, SYN, gaba, '<network id="n"><population id="A" component="iaf" size="3"/>',
        '<population id="B" component="iaf" size="2"/>', projs, "</network>"]))
    cg = convert_file(xml, synapses="type")
    syn_nodes = np.flatnonzero(cg.node_kind == NodeKind.SYNAPSE)
    assert list(cg.node_name[syn_nodes]) == ["A->B:ampa", "A->B:gaba"]
    s = syn_nodes[0]
    w, d = np.array([1.0, 2.0, 0.5, 4.0]), np.array([1.0, 2.0, 3.0, 4.0])
    for name, want in [("syn_count", 4), ("syn_weight_mean", w.mean()),
                       ("syn_weight_std", w.std()), ("syn_weight_min", 0.5),
                       ("syn_weight_max", 4.0), ("syn_delay_mean", 2.5),
                       ("syn_delay_std", d.std()), ("syn_delay_min", 1.0),
                       ("syn_delay_max", 4.0)]:
        assert cg.feature(name)[s] == pytest.approx(want, rel=1e-6), name
    assert cg.feature("syn_count")[syn_nodes[1]] == pytest.approx(1)
    assert cg.feature("syn_weight_std")[syn_nodes[1]] == 0
    assert cg.feature("syn_gbase")[s] == pytest.approx(0.5)  # nS, the component's own
    # edges: each presynaptic soma -> node once, node -> each postsynaptic soma once
    soma = {n: i for i, n in enumerate(cg.node_name)}
    into = (cg.receivers == s) & (cg.edge_kind == EdgeKind.SYNAPTIC)
    out = (cg.senders == s) & (cg.edge_kind == EdgeKind.SYNAPTIC)
    pre = {cg.node_name[i]: k for k, i in zip(np.flatnonzero(into), cg.senders[into])}
    post = {cg.node_name[i]: k for k, i in zip(np.flatnonzero(out), cg.receivers[out])}
    assert sorted(pre) == ["A/0/soma", "A/1/soma", "A/2/soma"]
    assert sorted(post) == ["B/0/soma", "B/1/soma"]
    n_conn, weight = cg.edge_feature("n_connections"), cg.edge_feature("weight")
    delay = cg.edge_feature("delay")
    for name, (n, wm, dm) in {"A/0/soma": (2, 1.5, 1.5), "A/1/soma": (1, 0.5, 3.0),
                              "A/2/soma": (1, 4.0, 4.0)}.items():
        e = pre[name]
        assert (n_conn[e], weight[e], delay[e]) == pytest.approx((n, wm, dm), rel=1e-6)
    for name, (n, wm, dm) in {"B/0/soma": (1, 1.0, 1.0),
                              "B/1/soma": (3, 6.5 / 3, 3.0)}.items():
        e = post[name]
        assert (n_conn[e], weight[e], delay[e]) == pytest.approx((n, wm, dm), rel=1e-6)
    assert soma["A/0/soma"] in cg.senders[into]
    # connection mode: one node per connection, count 1, its own weight
    per = convert_file(xml)
    nodes = np.flatnonzero(per.node_kind == NodeKind.SYNAPSE)
    assert nodes.size == 5 and np.all(per.feature("syn_count")[nodes] == pytest.approx(1))
    np.testing.assert_allclose(per.feature("syn_weight_mean")[nodes], [1, 2, 0.5, 4, 3],
                               rtol=1e-6)


def test_type_mode_chunks_give_the_same_statistics(pair, monkeypatch):
    """Statistics merged over chunks (Chan's update) equal those over all rows at once."""
    from graphs import network

    xml, h5 = pair
    whole = convert_file(h5, synapses="type")
    monkeypatch.setattr(network.ConnectionTable, "chunks",
                        lambda self, size=1: (self.read(i, i + 1) for i in range(self.n)))
    one_by_one = convert_file(h5, synapses="type")
    np.testing.assert_allclose(one_by_one.node_features, whole.node_features, atol=1e-6)
    np.testing.assert_allclose(one_by_one.edge_features, whole.edge_features, atol=1e-6)


# -- the OpenCortex examples (../shared), against libNeuroML's own HDF5 reader -----------
def _shared(name):
    path = SHARED_H5 / f"{name}.net.nml.h5"
    if not path.is_file():
        pytest.skip("../shared/neuroml-h5 (OpenCortex HDF5 examples) is not beside this "
                    "checkout")
    return path


@pytest.mark.parametrize("name", ["ACNet", "IClamps", "SpikingNet", "Weights"])
def test_opencortex_examples_match_libneuroml(name, tmp_path):
    """libNeuroML reads the HDF5 file into objects, we write them as XML: same graph.
    (Weights: libNeuroML's objects list a continuous projection's plain and weighted
    connections apart and renumber them, which reorders and renames its synapse nodes;
    compared by node and edge counts per kind.)"""
    from neuroml.loaders import NeuroMLHdf5Loader
    from neuroml.writers import NeuroMLWriter

    path = _shared(name)
    doc = NeuroMLHdf5Loader.load(str(path), optimized=False)
    for inc in doc.includes:
        inc.href = str(path.parent / inc.href)
    xml = tmp_path / f"{name}.net.nml"
    NeuroMLWriter.write(doc, str(xml))
    ours, theirs = convert_file(path), convert_file(xml)
    if name != "Weights":
        assert_same(ours, theirs)
    else:
        assert ours.nodes_by_kind() == theirs.nodes_by_kind()
        assert ours.edges_by_kind() == theirs.edges_by_kind()
    assert ours.nodes_by_kind()["neuron"] == {"ACNet": 60, "IClamps": 2, "SpikingNet": 20,
                                              "Weights": 30}[name]
    typed = convert_file(path, synapses="type")
    assert typed.n_nodes < ours.n_nodes or ours.nodes_by_kind()["synapse"] == 0
    syn = typed.node_kind == NodeKind.SYNAPSE
    assert typed.feature("syn_count")[syn].sum() == pytest.approx(
        ours.nodes_by_kind()["synapse"])


# -- bad HDF5 input: typed errors naming the file and the dataset ------------------------
def _copy(pair, tmp_path, edit):
    """A copy of the fixture's HDF5 file with ``edit(h5py.File)`` applied."""
    src = pair[1]
    dst = tmp_path / "bad.nml.h5"
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


PROJ = "/neuroml/network/projection_AtoB/AtoB"


def _replace(f, path, data, attrs=None):
    old = dict(f[path].attrs) if attrs is None else attrs
    del f[path]
    f[path] = data
    for k, v in old.items():
        f[path].attrs[k] = v


@pytest.mark.parametrize("edit, error, where, words", [
    (lambda f: _replace(f, PROJ, f[PROJ][:, 0]), InvalidDataset, PROJ, "2-D"),
    (lambda f: _replace(f, PROJ, f[PROJ][:], attrs={"column_0": "post_cell_id"}),
     InvalidDataset, PROJ, "pre_cell_id"),
    (lambda f: _replace(f, PROJ, f[PROJ][:] + np.array([0.5] + [0] * 7, np.float32)),
     InvalidDataset, PROJ, "not a non-negative integer"),
    (lambda f: _replace(f, PROJ, f[PROJ][:] + np.array([40] + [0] * 7, np.float32)),
     UnknownComponent, PROJ + " row 0", "does not exist"),
    (lambda f: f["/neuroml/network/projection_AtoB"].attrs.__delitem__("synapse"),
     InvalidDataset, "/neuroml/network/projection_AtoB", "'synapse'"),
    (lambda f: _replace(f, "/neuroml/network/population_A/A",
                        np.full((3, 3), np.nan, np.float32)),
     InvalidDataset, "/neuroml/network/population_A/A", "non-finite"),
    (lambda f: f.attrs.__setitem__("x", 1) or f.move("neuroml", "other"), NotNeuroML, "/",
     "/neuroml"),
])
def test_bad_hdf5_is_typed(pair, tmp_path, edit, error, where, words):
    path = _copy(pair, tmp_path, edit)
    with pytest.raises(error) as e:
        convert_file(path)
    assert e.value.file == str(path) and e.value.element == where
    assert words in str(e.value)


def test_truncated_and_foreign_files(pair, tmp_path):
    data = pair[1].read_bytes()
    cut = tmp_path / "cut.nml.h5"
    cut.write_bytes(data[: len(data) // 2])
    junk = tmp_path / "junk.nml.h5"
    junk.write_bytes(b"not an hdf5 file at all\n" * 10)
    for path in (cut, junk):
        with pytest.raises(DamagedHDF5) as e:
            convert_file(path)
        assert e.value.file == str(path)


def test_bad_top_level_xml_is_refused_like_xml(pair, tmp_path):
    evil = ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            '<neuroml xmlns="http://www.neuroml.org/schema/neuroml2" id="x">&e;</neuroml>')
    path = _copy(pair, tmp_path, lambda f: f["neuroml"].attrs.__setitem__(
        "neuroml_top_level", evil))
    from graphs.errors import UnsafeXML
    with pytest.raises(UnsafeXML):
        convert_file(path)


def test_batch_reports_every_hdf5_file_and_goes_on(pair, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.nml.h5").write_bytes(pair[1].read_bytes())
    (folder / "cut.nml.h5").write_bytes(pair[1].read_bytes()[:500])
    (folder / "good.nml").write_text(pair[0].read_text())
    rc = cli.main(["convert", str(folder), "--out", str(tmp_path / "out"),
                   "--synapses", "type"])
    import json
    report = {Path(r["file"]).name: r for r in
              json.loads((tmp_path / "out" / "report.json").read_text())}
    assert rc == 1 and set(report) == {"good.nml.h5", "cut.nml.h5", "good.nml"}
    assert report["cut.nml.h5"]["error"]["type"] == "DamagedHDF5"
    assert report["good.nml.h5"]["status"] == report["good.nml"]["status"] == "ok"
    assert report["good.nml.h5"]["nodes_by_kind"] == report["good.nml"]["nodes_by_kind"]
