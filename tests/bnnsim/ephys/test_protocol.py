"""The protocol on synthetic cells with known answers (no NEURON)."""

import numpy as np
import pytest

from bnnsim.ephys import features, protocol
from tests.bnnsim.ephys.synthetic import SyntheticCell, spike_trace


def test_rheobase_bisection_hand_checked():
    # doubling 0.05, 0.1, 0.2 silent, 0.4 fires; bisection 0.3 fires, then 0.25, 0.275,
    # 0.2875, 0.29375 silent; hi - lo = 0.00625 > 2% of 0.3; 0.296875 silent -> stop
    cell = SyntheticCell(rheobase=0.3)
    rheo, trials, tr = protocol.find_rheobase(cell)
    assert rheo == pytest.approx(0.3, abs=1e-12)
    assert [a for a, _ in trials] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.3, 0.25, 0.275,
                                                    0.2875, 0.29375, 0.296875], abs=1e-12)
    assert [n > 0 for _, n in trials] == [False] * 3 + [True, True] + [False] * 5
    assert tr.amp == rheo


@pytest.mark.parametrize("true", [0.0123, 0.05, 0.071, 0.9, 3.3, 12.0])
def test_rheobase_within_tolerance(true):
    rheo, _, _ = protocol.find_rheobase(SyntheticCell(rheobase=true))
    tol = max(protocol.RHEO_REL_TOL * rheo, protocol.RHEO_ABS_TOL_NA)
    assert true <= rheo <= true + tol


def test_never_fires_is_no_spikes_after_the_full_search():
    cell = SyntheticCell(fires=False)
    ch = protocol.characterise(cell)
    assert ch.outcome == "no_spikes" and ch.rheobase_nA is None
    assert [a for a, _ in ch.search] == pytest.approx([0.05 * 2 ** k for k in range(9)])
    assert max(a for a, _ in ch.search) == protocol.RHEO_MAX_NA


def test_spontaneous_cell_gets_no_rheobase_search():
    cell = SyntheticCell(rest_rate=8.0)
    ch = protocol.characterise(cell)
    assert ch.outcome == "spontaneous" and ch.rheobase_nA is None and not ch.search
    assert features.spike_count(ch.sweeps["rest"]) == 8
    # only the two hyperpolarising steps were run
    assert len(cell.steps) == 2 and all(a < 0 for a in cell.steps)


def test_full_protocol_multiples_and_fi_slope():
    cell = SyntheticCell(rheobase=0.3, gain=100.0)
    ch = protocol.characterise(cell)
    assert ch.outcome == "ok"
    assert sorted(ch.sweeps) == sorted(["rest", "probe", "sag"] +
                                       [protocol.sweep_name(m) for m in protocol.FI_MULTIPLES])
    amps = [a for a, _ in ch.fi]
    assert np.allclose(amps, [m * 0.3 for m in protocol.FI_MULTIPLES])
    # regular trains at 100 Hz/nA above rheobase: counts are within one spike of that
    for amp, rate in ch.fi[1:]:
        assert abs(rate - 100.0 * (amp - 0.3)) <= 1.0
    assert protocol.fi_slope(ch.fi) == pytest.approx(100.0, rel=0.05)


def test_input_resistance_and_sag_amplitude():
    cell = SyntheticCell(r_in=250.0)
    probe = cell.step(protocol.PROBE_NA, protocol.SAG_STEP_MS)
    assert features.input_resistance(probe) == pytest.approx(250.0, rel=1e-4)
    # the sag step is sized to hyperpolarise SAG_TARGET_MV
    assert protocol._sag_amplitude(probe) == pytest.approx(protocol.SAG_TARGET_MV / 250.0)
    big = SyntheticCell(r_in=1.0)
    assert protocol._sag_amplitude(big.step(protocol.PROBE_NA, 1000)) == protocol.SAG_BOUNDS_NA[0]


def test_efel_features_on_a_known_train():
    times = 110.0 + 20.0 * np.arange(10)  # 10 spikes, 50 Hz, first 10 ms after onset
    f = features.efel_features(spike_trace(times), features.SPIKE_FEATURES)
    assert f["spike_count"] == 10
    assert f["time_to_first_spike"] == pytest.approx(10.0, abs=0.05)
    assert f["ISI_CV"] == pytest.approx(0.0, abs=1e-6)
    assert f["AP_amplitude"] == pytest.approx(100.0, abs=0.5)
    assert features.isis(spike_trace(times)) == pytest.approx(np.full(9, 20.0), abs=0.05)
    silent = features.efel_features(spike_trace([]), features.SPIKE_FEATURES)
    assert silent["spike_count"] == 0 and silent["ISI_CV"] is None


def test_trials_stop_at_first_spike_and_the_rheobase_sweep_is_whole():
    cell = SyntheticCell(rheobase=0.3)
    rheo, trials, tr = protocol.find_rheobase(cell)
    # the firing trials saw one spike each (they stopped there); the sweep kept at the
    # rheobase is the whole one, run again after the search
    assert [n for _, n in trials if n > 0] == [1, 1]
    assert cell.steps[-1] == rheo and len(cell.steps) == len(trials) + 1
    assert tr.t[-1] == pytest.approx(protocol.BASE_MS + protocol.STEP_MS + protocol.TAIL_MS
                                     - 0.025)
    whole = SyntheticCell(rheobase=0.3).step(rheo, protocol.STEP_MS)
    np.testing.assert_array_equal(tr.v, whole.v)
