"""Cells end to end through jNeuroML and NEURON: the bundled HH example and the
fixture cells (never fires, fires at rest, cannot be exported, a gate too fast for
the exported forward Euler step)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from bnnsim.ephys import etype, protocol, variants
from bnnsim.ephys.dataset import build_cells
from bnnsim.ephys.figures import cell_figure
from graphs import load_cg
from graphs.examples import bundled_examples_dir
from tests.bnnsim.ephys.cells import write_cells


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("ephys")
    cells = write_cells(root / "cells")
    hh = bundled_examples_dir() / "NML2_SingleCompHHCell.nml"
    report = build_cells([hh, *cells.values()], root / "ds", n_variants=1, workers=2,
                         cache_dir=root / "cache", dt_check_cells=1, progress=False)
    return root, report


def rows_by_cell(report):
    return {r["cell_id"]: r for r in report["cells"]}


def test_every_cell_has_its_typed_outcome(built):
    _, report = built
    rows = rows_by_cell(report)
    assert rows["hhcell"]["status"] == "ok"
    assert rows["passivecell"]["status"] == "no_spikes"
    assert rows["passivecell"]["etype"] == "non-spiking"
    assert rows["pacemakercell"]["status"] == "spontaneous"
    odd = rows["oddcell"]
    assert odd["status"] == "export" and not odd["characterised"]
    assert "noSuchRateType" in odd["error"]["message"] and "oddcell" in odd["error"]["message"]
    assert report["characterised"] == {"cells": 4, "of": 5, "share": 0.8}
    assert [f["name"] for f in report["failures"]] == [odd["name"]]


def test_a_gate_too_fast_for_the_step_is_integrated_exactly(built):
    stiff = rows_by_cell(built[1])["stiffcell"]
    assert stiff["status"] == "ok" and stiff["gates"] == "exponential"
    assert stiff["dt_ms"] == protocol.DT_MS  # the exact gates were enough
    assert len(stiff["fallbacks"]) == 1 and "gates as exported" in stiff["fallbacks"][0]
    assert "not finite" in stiff["fallbacks"][0]
    assert "fallbacks" not in rows_by_cell(built[1])["hhcell"]


def test_hh_cell_measurements(built):
    _, report = built
    hh = rows_by_cell(report)["hhcell"]
    f = hh["efeatures"]
    # squid axon membrane, 1000 um2: repetitive firing needs about 6 uA/cm2 = 0.06 nA
    assert 0.02 < f["rheobase_nA"] < 0.1
    assert f["x1.5/mean_frequency"] > 40  # HH fires at 50+ Hz or not at all
    assert 0.5 < f["x1.5/AP_width"] < 3.0
    # Rin ~ 1 / (0.3 mS/cm2 * 1e-5 cm2) = 333 MOhm at rest, less with the HH channels open
    assert 50 < f["ohmic_input_resistance"] < 400
    assert hh["etype"] in etype.ETYPES
    fi = np.asarray(hh["fi"])
    assert np.all(np.diff(fi[:, 1]) >= 0)  # more current, not fewer spikes


def test_dataset_files(built):
    root, report = built
    hh = rows_by_cell(report)["hhcell"]
    cg = load_cg(hh["npz"])
    labels = cg.meta["labels"]
    assert etype.ETYPES[labels["etype"]] == hh["etype"]
    assert labels["efeatures"]["rheobase_nA"] == hh["efeatures"]["rheobase_nA"]
    assert labels["source_cell"] == hh["name"] and labels["repository"]
    z = np.load(hh["traces"])
    assert {"rest.v", "probe.v", "sag.v", "x1.0.v", "x1.5.v", "x3.0.v"} <= set(z.files)
    manifest = json.loads((root / "ds" / "manifest.json").read_text())
    assert manifest["protocol_version"] == protocol.PROTOCOL_VERSION
    assert all(m["sha256"] for m in manifest["models"] if m["status"] != "export")
    assert report["dt_check"] and report["dt_check"][0]["rheobase_nA rel_change"] < 0.05
    png = cell_figure(hh["traces"], hh, root / "fig" / "hh.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_variants_record_their_factors_and_share_the_split(built):
    _, report = built
    by_source = {r["variant_of"]: r for r in report["variants"]}
    # the characterised multi-compartment cells get a variant, the failed one none
    assert set(by_source) == {r["name"] for r in report["cells"] if r["characterised"]}
    for source in report["cells"]:
        if source["name"] in by_source:
            v = by_source[source["name"]]
            assert v["split"] == source["split"]
            lo, hi = variants.FACTOR_RANGE
            assert v["factors"] and all(lo <= x <= hi for x in v["factors"].values())
            assert load_cg(v["npz"]).meta["labels"]["factors"] == v["factors"]


def test_second_build_resumes_and_a_new_dataset_hits_the_cache(built, tmp_path):
    root, report = built
    again = build_cells([r["file"] for r in report["cells"]], root / "ds", n_variants=1,
                        workers=2, cache_dir=root / "cache", progress=False)
    assert [r["status"] for r in again["cells"]] == [r["status"] for r in report["cells"]]
    fresh = build_cells([rows_by_cell(report)["hhcell"]["file"]], tmp_path / "new",
                        cache_dir=root / "cache", progress=False)
    assert fresh["cells"][0]["cached"] and fresh["cells"][0]["efeatures"] == \
        rows_by_cell(report)["hhcell"]["efeatures"]


def test_another_granularity_reuses_the_measurements(built, tmp_path):
    root, report = built
    hh = rows_by_cell(report)["hhcell"]
    seg = build_cells([hh["file"]], tmp_path / "seg", cache_dir=root / "cache",
                      progress=False, granularity="segment")
    row = seg["cells"][0]
    assert seg["granularity"] == "segment" and row["cached"]  # converted, not simulated
    assert row["efeatures"] == hh["efeatures"]
    assert load_cg(row["npz"]).meta["granularity"] == "segment"
    with pytest.raises(ValueError, match="segment granularity, not section"):
        build_cells([hh["file"]], tmp_path / "seg", cache_dir=root / "cache", progress=False)


def test_cli_exit_codes(built, tmp_path):
    root, report = built
    odd = rows_by_cell(report)["oddcell"]["file"]
    out = subprocess.run([sys.executable, "-m", "bnnsim", "cells", odd, "--out",
                          str(tmp_path / "x"), "--cache", str(root / "cache"), "--dt-check", "0"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    assert "export" in out.stderr and "oddcell" in out.stderr
    assert json.loads((tmp_path / "x" / "report.json").read_text())["n_cells"] == 1
    missing = subprocess.run([sys.executable, "-m", "bnnsim", "cells", str(tmp_path / "nope"),
                              "--out", str(tmp_path / "y")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_point_neuron_cells_are_reported_not_simulated(tmp_path):
    abstract = bundled_examples_dir() / "NML2_AbstractCells.nml"
    report = build_cells([abstract], tmp_path / "ds", workers=2, cache_dir=tmp_path / "c",
                         progress=False)
    assert report["n_cells"] >= 5
    for r in report["cells"]:
        assert r["status"] == "export" and "point-neuron cell" in r["error"]["message"]
        assert r["cell_id"] in r["error"]["message"]


_SWEEPS_SCRIPT = """
import numpy as np
from pathlib import Path
from bnnsim.ephys import nrn, protocol
ex = nrn.export(Path({hh!r}), "hhcell", 6.3, Path({work!r}))
cell = nrn.NeuronCell(ex, nrn.compile_mechanisms(ex.mods, Path({cache!r})), 6.3)
first_rest, first_step = cell.rest(200.0), cell.step(0.05, 200.0)
cell.step(0.5, 200.0)  # a sweep that leaves the cell far from rest
rest, step = cell.rest(200.0), cell.step(0.05, 200.0)
assert np.array_equal(rest.v, first_rest.v) and np.array_equal(step.v, first_step.v)
# the step from its shared baseline == the whole step run from the settled state
h = cell.h
cell.settled.restore(); h.frecord_init()
cell.stim.delay, cell.stim.dur, cell.stim.amp = cell.t0 + protocol.BASE_MS, 200.0, 0.05
h.continuerun(cell.t0 + protocol.BASE_MS + 200.0 + protocol.TAIL_MS)
assert np.array_equal(np.array(cell._v), step.v) and np.array_equal(np.array(cell._t) - cell.t0, step.t)
print("EXACT")
"""


def test_every_sweep_depends_on_its_amplitude_alone(tmp_path):
    """A sweep restores the settled cell exactly (``nrn.Snapshot``): the same numbers
    to the bit whatever ran before it, and a step started from its shared baseline
    equals the step run whole."""
    hh = bundled_examples_dir() / "NML2_SingleCompHHCell.nml"
    script = _SWEEPS_SCRIPT.format(hh=str(hh), work=str(tmp_path / "export"),
                                   cache=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert "EXACT" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
