"""The community cells in ../shared/neuroml-cells: discovery, and the cells whose
firing class their authors declared (skipped where ../shared is absent)."""

import csv
import re
from collections import Counter

import pytest

from bnnsim.ephys import dataset
from bnnsim.ephys.corpus import author_labels, discover
from bnnsim.ephys.dataset import build_cells
from tests.conftest import REPO

CORPUS = REPO.parent / "shared" / "neuroml-cells"


@pytest.fixture(scope="module")
def corpus():
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip("../shared/neuroml-cells (community cell corpus) is not beside this "
                    "clone; CI has it")
    return CORPUS


@pytest.fixture(scope="module")
def discovered(corpus):
    """(every cell of the corpus, unreadable files, {cell name: family}): read once."""
    cells, bad = discover([corpus])
    return cells, bad, dataset.corpus_families(cells)


def test_discovery_finds_every_cell_with_its_metadata(discovered):
    cells, bad, _ = discovered
    assert not bad
    assert len(cells) == 638 and len({c.name for c in cells}) == 638
    by = {c.name: c for c in cells}
    assert by["PospischilEtAl2008__RS"].temperature_c == 36.0
    # the pyloric cells' own networks run at 10 degC; a cell no network includes
    # takes the temperature its folder's networks agree on
    assert {c.temperature_c for c in cells if "Pyloric" in c.name} == {10.0}
    allen = [c for c in cells if c.repository == "OpenSourceBrain/AllenInstituteNeuroML"
             and "tuned_cells" not in c.file]  # the 96 single-compartment fits apart
    assert len(allen) == 101
    assert sum("/NeuroML-DB/bbp/" in c.file for c in cells) == 255
    assert len(set(discovered[2].values())) == 306  # families (RESULTS.md)
    bbp = [author_labels(c) for c in cells if "/NeuroML-DB/bbp/" in c.file]
    assert all(lab["declared_etype"] and lab["emodel"] and lab["mtype"] for lab in bbp)
    assert {lab["declared_etype"] for lab in bbp} == {
        "cACint", "bAC", "cNAC", "bNAC", "dNAC", "cSTUT", "bSTUT", "dSTUT", "cIR", "bIR", "cADpyr"}
    labelled = [author_labels(c) for c in allen if c.declared]
    assert len(labelled) == 65  # 66 networks; Network_472424854 has no <property> tags
    assert {lab["dendrite_type"] for lab in labelled} >= {"spiny", "aspiny"}
    assert any(lab["layer"] == "4" for lab in labelled)


# families (bnnsim.ephys.families), on exactly the cases the rule is for


def test_corpus_bbp_cells_of_one_emodel_are_one_family(discovered):
    sources, _, fam = discovered
    emodel = {}
    with open(CORPUS / "NeuroML-DB" / "labels.tsv", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if row and row[0].startswith("NMLCL"):
                emodel[row[0]] = dict(kv.split("=", 1) for kv in row[4:])["emodel"]
    bbp = [s for s in sources if "/bbp/" in s.file]
    assert len(bbp) == 255
    pairs = {(emodel[s.file.rsplit("/", 1)[1].split(".")[0]], fam[s.name]) for s in bbp}
    # 13 e-models, 13 families, one to one
    assert len(pairs) == 13 == len({e for e, _ in pairs}) == len({f for _, f in pairs})


def test_corpus_golgi_population_and_olive_sets(discovered):
    sources, _, fam = discovered
    goc = Counter(fam[s.name] for s in sources if re.search(r"/GoC_\d{5}\.cell", s.file))
    assert list(goc.values()) == [53]  # one model, densities jittered per cell
    olive = Counter(fam[s.name] for s in sources if "Multicompartmental" in s.file)
    assert sum(olive.values()) == 35 and len(olive) == 6  # six biophysics sets


def test_corpus_allen_perisomatic_fits_stay_apart(discovered):
    sources, _, fam = discovered
    allen = [fam[s.name] for s in sources if "/Cell_" in s.file]
    assert len(allen) == 101 and len(set(allen)) == 101


# the authors' declared types (Pospischil et al. 2008) -> the class our rules give
DECLARED = {"RS": "continuous adapting", "FS": "continuous non-adapting",
            "IB": "bursting", "IBR": "bursting"}


def test_pospischil_cells_fire_as_their_authors_say(corpus, tmp_path):
    paths = [corpus / "PospischilEtAl2008" / "NeuroML2" / "cells" / name / f"{name}.cell.nml"
             for name in DECLARED]
    report = build_cells(paths, tmp_path / "ds", workers=2, cache_dir=tmp_path / "cache",
                         progress=False)
    got = {r["cell_id"]: r["etype"] for r in report["cells"]}
    assert got == DECLARED
    fs, rs = ({r["cell_id"]: r for r in report["cells"]}[k]["efeatures"] for k in ("FS", "RS"))
    assert fs["x1.5/mean_frequency"] > 2 * rs["x1.5/mean_frequency"]
    assert fs["x1.5/AP_width"] < rs["x1.5/AP_width"]


@pytest.mark.slow
def test_whole_corpus(corpus, tmp_path):
    report = build_cells([corpus], tmp_path / "ds", workers=2, repair=True, progress=False)
    assert report["characterised"]["share"] >= 0.95, report["failures"]
