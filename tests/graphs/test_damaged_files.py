"""Damaged graph files: each kind of damage is its own typed, named error; batch tools
report the bad file and go on; a killed writer never leaves a half-written graph."""

import json

import numpy as np
import pytest

from graphs import cli, convert_file, load_cg, save_cg
from graphs.errors import DamagedGraphFile, SchemaMismatch
from tests.fixtures import two_population_network


@pytest.fixture
def good(write_nml, tmp_path):
    return save_cg(convert_file(write_nml("net.nml", two_population_network())),
                   tmp_path / "good.npz")


def rewrite(src, dst, **changes):
    """A copy of the CG file with arrays replaced (None: removed)."""
    with np.load(src) as data:
        arrays = dict(data)
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(dst, **arrays)
    return dst


def test_truncated_and_not_a_zip(good, tmp_path):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "text.npz"
    text.write_text("node,kind\n")
    for path in (cut, text):
        with pytest.raises(DamagedGraphFile, match=r"truncated or not a \.npz") as err:
            load_cg(path)
        assert err.value.file == str(path)


def test_missing_file_and_pickled_arrays(good, tmp_path):
    with pytest.raises(DamagedGraphFile, match="no such file"):
        load_cg(tmp_path / "absent.npz")
    pickled = rewrite(good, tmp_path / "pickled.npz", node_name=np.array([{"a": 1}], object))
    with pytest.raises(DamagedGraphFile, match="pickled"):
        load_cg(pickled)


@pytest.mark.parametrize("change, message", [
    (dict(senders=None), r"missing arrays \['senders'\]"),
    (dict(node_features=np.zeros((3, 2), np.int32)), "'node_features' has dtype int32"),
    (dict(node_features=np.zeros((3, 2), np.float32)), "'node_features' has shape"),
    (dict(meta=np.array("{not json")), "metadata is not JSON"),
])
def test_wrong_arrays_are_named(good, tmp_path, change, message):
    with pytest.raises(DamagedGraphFile, match=message):
        load_cg(rewrite(good, tmp_path / "bad.npz", **change))


def test_edges_pointing_outside_the_graph(good, tmp_path):
    cg = load_cg(good)
    senders = cg.senders.copy()
    senders[0] = cg.n_nodes + 5
    with pytest.raises(DamagedGraphFile, match="'senders' points outside"):
        load_cg(rewrite(good, tmp_path / "bad.npz", senders=senders))


def test_schema_version(good, tmp_path):
    meta = json.loads(str(np.load(good)["meta"]))
    with pytest.raises(SchemaMismatch, match="'0.1'"):
        load_cg(rewrite(good, tmp_path / "old.npz",
                        meta=np.array(json.dumps(dict(meta, schema_version="0.1")))))


def test_info_reports_every_bad_file_and_summarises_the_rest(good, tmp_path, capsys):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:100])
    assert cli.main(["info", str(cut), str(good), str(tmp_path / "absent.npz")]) == 1
    out, err = capsys.readouterr()
    assert "cut.npz: truncated" in err and "absent.npz: no such file" in err
    assert "1/3 graphs read" in err and "Traceback" not in err
    assert f"{good}: schema" in out


def test_a_killed_writer_leaves_no_graph_under_the_real_name(good, tmp_path, monkeypatch):
    cg = load_cg(good)
    target = tmp_path / "new.npz"

    def dies(f, **arrays):
        f.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt  # the process is stopped mid-write

    monkeypatch.setattr(np, "savez_compressed", dies)
    with pytest.raises(KeyboardInterrupt):
        save_cg(cg, target)
    assert not target.exists()
    monkeypatch.undo()
    assert load_cg(save_cg(cg, target)).n_nodes == cg.n_nodes  # the next write replaces it
