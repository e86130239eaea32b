"""The read policy (graphs.policy): a model reads nothing outside its tree and the
folders the user allowed. Every forbidden target is a FIFO, which blocks whoever opens
it, so a test that opened one would stop at the alarm instead of passing; Python-level
opens are also recorded by an audit hook."""

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import h5py
import pytest

from graphs import cli
from graphs.convert import convert_file
from graphs.errors import InvalidDataset, OutsideModelTree
from graphs.policy import PARENT_LEVELS, ReadPolicy, model_tree
from graphs.reader import read_model
from tests.conftest import nml
from tests.fixtures import BALL_AND_STICK
from tests.graphs.test_hdf5 import assert_same, network, to_hdf5

_OPENED: list = []
_RECORDING = [False]


def _audit(event, args):
    if _RECORDING[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.path.realpath(args[0]))


sys.addaudithook(_audit)


@contextlib.contextmanager
def reads_nothing_in(folder: Path):
    """Fail if the body opens any file under ``folder`` (or blocks on a FIFO there)."""
    def blocked(*_):
        raise AssertionError(f"blocked opening a file under {folder}")

    old = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(20)
    _OPENED.clear()
    _RECORDING[0] = True
    try:
        yield
    finally:
        _RECORDING[0] = False
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    real = os.path.realpath(folder)
    assert not [p for p in _OPENED if p.startswith(real + os.sep)]


@pytest.fixture
def tree(tmp_path):
    """``model``: the named file's folder, PARENT_LEVELS deep in the model's tree
    ``a/b``; ``outside``: a folder beside it holding a FIFO ``secret.nml``."""
    model = tmp_path / "a" / "b" / "c" / "model"
    model.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.mkfifo(outside / "secret.nml")
    return model, outside


def _cell_including(folder: Path, href: str) -> Path:
    path = folder / "cell.nml"
    path.write_text(nml(f'<include href="{href}"/>\n' + BALL_AND_STICK))
    return path


def test_the_tree_is_the_named_folder_and_two_above(tree, tmp_path):
    model, _ = tree
    assert PARENT_LEVELS == 2
    assert model_tree(model / "cell.nml") == (tmp_path / "a" / "b").resolve()


def test_the_tree_never_climbs_to_home_or_root(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert model_tree(home / "models" / "cell.nml") == (home / "models").resolve()
    assert model_tree(home / "cell.nml") == home.resolve()
    assert model_tree("/cell.nml") == Path("/")


def test_absolute_include_outside_is_refused(tree):
    model, outside = tree
    cell = _cell_including(model, outside / "secret.nml")
    with reads_nothing_in(outside), pytest.raises(OutsideModelTree) as e:
        convert_file(cell)
    line = cell.read_text().splitlines().index(f'<include href="{outside / "secret.nml"}"/>') + 1
    assert e.value.file == str(cell.resolve()) and e.value.line == line
    assert e.value.element == "include" and str(outside / "secret.nml") in str(e.value)
    assert "--allow-path" in str(e.value)


def test_climbing_past_the_limit_is_refused(tree, tmp_path):
    model, _ = tree
    beyond = tmp_path / "a" / "data"  # beside the tree a/b
    beyond.mkdir()
    os.mkfifo(beyond / "secret.nml")
    cell = _cell_including(model, "../../../data/secret.nml")
    with reads_nothing_in(beyond), pytest.raises(OutsideModelTree) as e:
        convert_file(cell)
    assert "'../../../data/secret.nml'" in str(e.value)


def test_a_symlink_out_of_the_tree_is_refused(tree):
    model, outside = tree
    (model / "channels.nml").symlink_to(outside / "secret.nml")
    cell = _cell_including(model, "channels.nml")
    with reads_nothing_in(outside), pytest.raises(OutsideModelTree) as e:
        convert_file(cell)
    assert "symlink" in str(e.value)


def test_includes_inside_the_tree_still_read(tree, tmp_path):
    model, _ = tree
    shared = tmp_path / "a" / "b" / "channels"
    shared.mkdir()
    (shared / "syn.nml").write_text(nml('<expOneSynapse id="ampa" gbase="1nS" erev="0mV" '
                                        'tauDecay="2ms"/>'))
    cell = _cell_including(model, "../../channels/syn.nml")
    assert "ampa" in read_model(cell).components
    # written as an absolute path that does not exist: read against the file's folder
    (model / "channels").mkdir()
    (model / "channels" / "syn.nml").write_text((shared / "syn.nml").read_text())
    assert "ampa" in read_model(_cell_including(model, "/channels/syn.nml")).components


def test_allow_path_widens_it_on_purpose(tree):
    model, outside = tree
    (outside / "syn.nml").write_text(nml('<expOneSynapse id="ampa" gbase="1nS" erev="0mV" '
                                         'tauDecay="2ms"/>'))
    cell = _cell_including(model, outside / "syn.nml")
    with pytest.raises(OutsideModelTree):
        read_model(cell)
    assert "ampa" in read_model(cell, allow=[outside]).components
    assert ReadPolicy.for_model(cell, [outside]).allows(outside / "syn.nml")


def test_cli_reports_the_refusal_and_allows_on_purpose(tree, tmp_path):
    model, outside = tree
    (outside / "syn.nml").write_text(nml('<expOneSynapse id="ampa" gbase="1nS" erev="0mV" '
                                         'tauDecay="2ms"/>'))
    cell = _cell_including(model, outside / "syn.nml")
    out = tmp_path / "out"
    assert cli.main(["convert", str(cell), "--out", str(out)]) == 1
    report = json.loads((out / "report.json").read_text())
    assert report[0]["error"]["type"] == "OutsideModelTree"
    assert cli.main(["convert", str(cell), "--out", str(out),
                     "--allow-path", str(outside)]) == 0


# -- HDF5 links ---------------------------------------------------------------------------
PROJ = "/neuroml/network/projection_AtoB"


@pytest.fixture
def h5_pair(tree, write_nml, tmp_path):
    """(the model's network as HDF5 inside the tree, a copy outside it)."""
    model, outside = tree
    xml = write_nml("net.nml", network())
    inside = to_hdf5(xml, model / "net.nml.h5")
    copy = outside / "copy.nml.h5"
    copy.write_bytes(inside.read_bytes())
    return inside, copy


def _link(path: Path, where: str, link) -> None:
    with h5py.File(path, "r+") as f:
        if f.get(where, getlink=True) is not None:
            del f[where]
        f[where] = link


def test_an_external_link_out_of_the_tree_is_refused(h5_pair, tree):
    inside, _ = h5_pair
    model, outside = tree
    _link(inside, PROJ, h5py.ExternalLink(str(outside / "secret.nml"), PROJ))
    with reads_nothing_in(outside), pytest.raises(OutsideModelTree) as e:
        convert_file(inside)
    assert e.value.file == str(inside.resolve()) and e.value.element == PROJ
    assert "external link" in str(e.value)


def test_an_allowed_external_link_reads_the_same_graph(h5_pair, tree):
    inside, copy = h5_pair
    before = convert_file(inside)
    _link(inside, PROJ, h5py.ExternalLink(str(copy), PROJ))
    with pytest.raises(OutsideModelTree):
        convert_file(inside)
    assert_same(convert_file(inside, allow=[copy.parent]), before)


def test_soft_links_resolve_inside_the_file_or_are_typed(h5_pair):
    inside, _ = h5_pair
    before = convert_file(inside)
    with h5py.File(inside, "r+") as f:
        f.move(PROJ, "/kept")
    _link(inside, PROJ, h5py.SoftLink("/kept"))
    assert_same(convert_file(inside), before)
    _link(inside, PROJ, h5py.SoftLink("/nothing/here"))
    with pytest.raises(InvalidDataset) as e:
        convert_file(inside)
    assert e.value.element == PROJ and "'/nothing/here'" in str(e.value)
    _link(inside, PROJ, h5py.SoftLink(PROJ))  # a link to itself
    with pytest.raises(InvalidDataset, match="loop"):
        convert_file(inside)


def test_analyze_takes_allow_path_only_with_nml(tmp_path, capsys):
    """analyze.py --allow-path widens the read policy of --nml files; alone it is refused
    as a usage error, before anything is loaded."""
    import analyze

    work = tmp_path / "run"
    work.mkdir()
    (work / "config.json").write_text(json.dumps({"kind": "bgan"}))
    assert analyze.main(["--workdir", str(work), "--allow-path", str(tmp_path)]) == 2
    assert "--allow-path needs --nml" in capsys.readouterr().err
