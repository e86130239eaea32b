"""``python -m graphs``: exit codes, complete reports, outputs, info."""

import json
import subprocess
import sys

import pytest

from graphs.schema import SCHEMA_VERSION
from graphs import cli
from tests.conftest import REPO
from tests.fixtures import BALL_AND_STICK, two_population_network


@pytest.fixture
def mixed_inputs(write_nml, tmp_path):
    write_nml("good_net.nml", two_population_network())
    write_nml("good_cell.nml", BALL_AND_STICK)
    (tmp_path / "broken.nml").write_text("<neuroml")
    (tmp_path / "empty.nml").write_text("")
    return tmp_path


def test_batch_reports_every_file_and_keeps_going(mixed_inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["convert", str(mixed_inputs), str(mixed_inputs / "absent.nml"),
                     "--out", str(out)])
    assert code == 1
    report = json.loads((out / "report.json").read_text())
    status = {r["file"].rsplit("/", 1)[-1]: (r["status"], r["error"] and r["error"]["type"])
              for r in report}
    assert status == {"good_net.nml": ("ok", None), "good_cell.nml": ("ok", None),
                      "broken.nml": ("error", "MalformedXML"), "empty.nml": ("error", "EmptyFile"),
                      "absent.nml": ("error", "MissingFile")}
    good = next(r for r in report if r["file"].endswith("good_net.nml"))
    assert good["n_nodes"] == 16 and good["nodes_by_kind"]["synapse"] == 4
    assert good["edges_by_kind"]["synaptic"] == 8
    assert (out / "good_net.npz").is_file() and (out / "good_cell.npz").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema_version"] == manifest["schema"]["schema_version"]
    assert len(manifest["models"]) == 5


def test_all_good_exits_zero(write_nml, tmp_path):
    path = write_nml("net.nml", two_population_network())
    assert cli.main(["convert", str(path), "--out", str(tmp_path / "o"),
                     "--granularity", "segment"]) == 0


def test_library_crash_and_sys_exit_do_not_end_the_batch(write_nml, tmp_path, monkeypatch):
    import graphs.convert

    good = write_nml("net.nml", two_population_network())

    def exits(path, granularity, synapses, allow):
        if "boom" in str(path):
            raise SystemExit(1)  # what libNeuroML's reader does on a missing file
        return real(path, granularity, synapses, allow)

    real = graphs.convert.convert_file
    monkeypatch.setattr(graphs.convert, "convert_file", exits)
    boom = write_nml("boom.nml", two_population_network())
    assert cli.main(["convert", str(boom), str(good), "--out", str(tmp_path / "o")]) == 1
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert [r["status"] for r in report] == ["error", "ok"]
    assert report[0]["error"]["type"] == "SystemExit"


def test_usage_error_exits_two(tmp_path):
    with pytest.raises(SystemExit) as info:
        cli.main(["convert", str(tmp_path), "--granularity", "atom"])
    assert info.value.code == 2


def test_info(write_nml, tmp_path, capsys):
    path = write_nml("net.nml", two_population_network())
    cli.main(["convert", str(path), "--out", str(tmp_path / "o")])
    capsys.readouterr()
    assert cli.main(["info", str(tmp_path / "o" / "net.npz")]) == 0
    out = capsys.readouterr().out
    assert f"schema {SCHEMA_VERSION}" in out and "synapse=4" in out and "synaptic=8" in out
    assert "function" in out and "geometry" in out


def test_module_entry_point_runs(write_nml, tmp_path):
    path = write_nml("net.nml", two_population_network())
    proc = subprocess.run([sys.executable, "-m", "graphs", "convert", str(path), "--out",
                           str(tmp_path / "o")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "converted 1/1" in proc.stdout
