"""The e-type rules on synthetic spike trains with known answers."""

import numpy as np
import pytest

from bnnsim.ephys import etype, protocol
from tests.bnnsim.ephys.synthetic import spike_trace

ON = protocol.BASE_MS  # step onset


def characterisation(times_15, times_30=None, outcome="ok"):
    """A Characterisation whose 1.5x and 3x sweeps spike at the given times."""
    sweeps = {"rest": spike_trace([], 0.0, 0.0, 1000.0, 1000.0)}
    sweeps["x1.5"] = spike_trace(times_15, 0.15)
    sweeps["x3.0"] = spike_trace(times_15 if times_30 is None else times_30, 0.3)
    return protocol.Characterisation(outcome, 0.1, sweeps, [], [])


def train(isis, first=10.0):
    return ON + first + np.concatenate([[0.0], np.cumsum(isis)])


def test_regular_train_is_non_adapting():
    got = etype.classify(characterisation(train(np.full(20, 40.0))))
    assert got["etype"] == "continuous non-adapting" and got["sweep"] == "x1.5"


def test_lengthening_isis_are_adapting():
    got = etype.classify(characterisation(train(20.0 * 1.15 ** np.arange(12))))
    assert got["etype"] == "continuous adapting"


def test_initial_burst_then_pause_is_bursting():
    isis = [5.0, 5.0, 6.0, 300.0, 150.0, 150.0, 150.0]  # 4 spikes at ~200 Hz, then slow
    assert etype.classify(characterisation(train(isis)))["etype"] == "bursting"


def test_repeated_bursts_are_bursting():
    isis = [4.0, 4.0, 150.0] * 5
    assert etype.classify(characterisation(train(isis)))["etype"] == "bursting"


def test_fast_regular_firing_is_not_bursting():
    # 8 ms ISIs (125 Hz) that lengthen slowly: no pause, so no burst
    assert not etype.has_burst(np.linspace(8.0, 12.0, 50))
    assert etype.has_burst(np.array([6.0, 6.0, 40.0]))
    assert not etype.has_burst(np.array([6.0, 40.0, 40.0]))  # a doublet is not a burst


def test_late_first_spike_is_delayed():
    got = etype.classify(characterisation(train(np.full(8, 50.0), first=400.0)))
    assert got["etype"] == "delayed"


def test_irregular_isis_are_stuttering():
    isis = np.array([20.0, 200.0, 15.0, 25.0, 300.0, 20.0, 180.0, 30.0])
    assert etype.classify(characterisation(train(isis)))["etype"] == "stuttering/irregular"


def test_few_spikes_even_at_3x_are_transient():
    got = etype.classify(characterisation(train([30.0]), train([20.0, 25.0])))
    assert got["etype"] == "transient" and got["sweep"] == "x3.0"


def test_few_spikes_at_1_5x_are_judged_at_3x():
    got = etype.classify(characterisation(train([30.0]), train(np.full(20, 25.0))))
    assert got["sweep"] == "x3.0" and got["etype"] == "continuous non-adapting"


def test_protocol_outcomes_name_the_class():
    silent = protocol.Characterisation("no_spikes", None, {}, [], [])
    assert etype.classify(silent)["etype"] == "non-spiking"
    blocked = characterisation(train([5.0, 5.0]), outcome="block")
    assert etype.classify(blocked)["etype"] == "depolarisation block"
    spont = protocol.Characterisation(
        "spontaneous", None, {"rest": spike_trace(5.0 + np.arange(10) * 100.0, 0.0, 0.0,
                                                  1000.0, 1000.0)}, [], [])
    got = etype.classify(spont)
    assert got["sweep"] == "rest" and got["etype"] == "continuous non-adapting"


def test_every_rule_names_a_known_class():
    assert len(set(etype.ETYPES)) == len(etype.ETYPES)
    for isis in ([40.0] * 10, [5.0, 5.0, 300.0, 100.0], [30.0]):
        assert etype.classify(characterisation(train(isis)))["etype"] in etype.ETYPES


def test_spontaneous_activity_is_never_delayed():
    late = 500.0 + np.arange(8) * 40.0  # fires late in the rest sweep: no onset to delay
    spont = protocol.Characterisation(
        "spontaneous", None, {"rest": spike_trace(late, 0.0, 0.0, 1000.0, 1000.0)}, [], [])
    assert etype.classify(spont)["etype"] == "continuous non-adapting"


def test_classification_survives_the_traces_file(tmp_path):
    from bnnsim.ephys.run_cell import load_characterisation, save_traces

    ch = characterisation(train([5.0, 5.0, 6.0, 300.0, 150.0, 150.0]))
    save_traces(ch, tmp_path / "t.npz")
    back = load_characterisation(tmp_path / "t.npz", {"outcome": "ok",
                                                      "efeatures": {"rheobase_nA": 0.1}})
    assert set(back.sweeps) == set(ch.sweeps)
    assert etype.classify(back) == etype.classify(ch)


@pytest.mark.parametrize("bbp, onset, steady, ours", [
    ("cAC", "continuous", "accommodating", "continuous adapting"),
    ("cACint", "continuous", "accommodating", "continuous adapting"),
    ("cNAC", "continuous", "non-accommodating", "continuous non-adapting"),
    ("cSTUT", "continuous", "stuttering", "stuttering/irregular"),
    ("cIR", "continuous", "irregular", "stuttering/irregular"),
    ("cADpyr", "continuous", "accommodating", "continuous adapting"),
    ("bAC", "burst", "accommodating", "bursting"),
    ("bNAC", "burst", "non-accommodating", "bursting"),
    ("bSTUT", "burst", "stuttering", "bursting"),
    ("bIR", "burst", "irregular", "bursting"),
    ("dNAC", "delayed", "non-accommodating", "delayed"),
    ("dSTUT", "delayed", "stuttering", "delayed"),
])
def test_petilla_names_map_to_our_classes(bbp, onset, steady, ours):
    assert etype.petilla(bbp) == (onset, steady)
    assert etype.expected_class(bbp) == ours and ours in etype.ETYPES


def test_a_name_outside_the_petilla_scheme_is_refused():
    with pytest.raises(ValueError, match="not a Petilla e-type"):
        etype.expected_class("xFOO")


def test_bbp_agreement_table():
    from bnnsim.ephys.summary import bbp_rows

    def row(name, declared, measured):
        return {"name": name, "characterised": measured is not None, "etype": measured,
                "labels": {"declared_etype": declared}}

    report = {"cells": [row("a", "cNAC", "continuous non-adapting"),
                        row("b", "cNAC", "continuous adapting"), row("c", "cNAC", None),
                        row("d", "dNAC", "delayed"), row("e", None, "bursting")]}
    got = {r["declared"]: r for r in bbp_rows(report)}
    assert set(got) == {"cNAC", "dNAC"}
    assert (got["cNAC"]["cells"], got["cNAC"]["characterised"], got["cNAC"]["agree"]) == (3, 2, 1)
    assert got["dNAC"]["agree"] == 1 and got["dNAC"]["petilla"] == "delayed non-accommodating"


def test_declared_types_and_per_source_tables():
    from bnnsim.ephys.summary import declared_rows, render, source_rows

    def row(name, file, repo, status, measured=None, seconds=None, cached=False):
        return {"name": name, "file": file, "labels": {"repository": repo}, "status": status,
                "characterised": measured is not None, "etype": measured,
                "seconds": seconds, "cached": cached}

    cells = [
        row("ca1__pvbasketcell", "/c/ca1/pv.cell.nml", "mbezaire/ca1", "ok",
            "continuous non-adapting", 20.0),
        row("ca1__ngfcell", "/c/ca1/ngf.cell.nml", "mbezaire/ca1", "ok", "continuous adapting", 30.0),
        row("ca1__ivycell", "/c/ca1/ivy.cell.nml", "mbezaire/ca1", "ok", "delayed", 1.0, cached=True),
        row("bbp1", "/c/NeuroML-DB/bbp/NMLCL1.cell.nml", "NeuroML-DB", "ok", "bursting", 100.0),
        row("bbp2", "/c/NeuroML-DB/bbp/NMLCL2.cell.nml", "NeuroML-DB", "simulation", None, 900.0),
        row("fit", "/c/AllenInstituteNeuroML/tuned_cells/x.cell.nml",
            "OpenSourceBrain/AllenInstituteNeuroML", "ok", "continuous adapting", 10.0),
        row("peri", "/c/AllenInstituteNeuroML/Cell_1.cell.nml",
            "OpenSourceBrain/AllenInstituteNeuroML", "spontaneous", "bursting", 40.0),
    ]
    declared = {r["cell"]: r for r in declared_rows({"cells": cells})}
    assert declared["ca1__pvbasketcell"]["agrees"] is True
    assert declared["ca1__ngfcell"]["agrees"] is False
    assert declared["ca1__ivycell"]["agrees"] is None  # no claim made for ivy cells
    by = {r["source"]: r for r in source_rows({"cells": cells})}
    assert [by[g]["cells"] for g in ("bbp", "allen", "allen-fit", "other")] == [2, 1, 1, 3]
    assert by["bbp"]["outcomes"] == {"ok": 1, "simulation": 1} and by["bbp"]["characterised"] == 1
    assert by["bbp"]["median_s"] == 500.0 and by["bbp"]["simulated_s"] == 1000.0
    assert by["other"]["simulated"] == 2  # the cached row has no simulation time
    report = {"cells": cells, "characterised": {"cells": 6, "of": 7, "share": 6 / 7},
              "outcomes": {}, "n_variants": 0, "variant_outcomes": {}, "etypes": {},
              "failures": [], "timing": {}}
    assert "| bbp | 2 | 1 |" in render(report)
