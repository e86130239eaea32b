"""Firing-pattern and network-regime labels follow their documented criteria."""

import numpy as np
import pytest

from bnnsim.labels import firing_pattern, network_regime, voltage_synchrony

WINDOW = 1000.0  # ms


def regular(rate_hz, start=10.0):
    return list(np.arange(start, WINDOW, 1e3 / rate_hz))


@pytest.mark.parametrize("times, expected", [
    ([100.0, 500.0], "silent"),
    (regular(20), "tonic"),
    (list(np.cumsum(np.linspace(10, 60, 25))), "adapting"),
    ([g * 100 + k * 3.0 for g in range(9) for k in range(4)], "bursting"),
    (regular(200), "fast"),
    (list(np.sort(np.random.default_rng(0).uniform(0, WINDOW, 25))), "irregular"),
])
def test_firing_pattern(times, expected):
    assert firing_pattern(times, WINDOW) == expected


def test_network_regimes():
    t, n, dt = 4000, 20, 0.25
    rng = np.random.default_rng(0)
    none = np.zeros((t, n), bool)
    v_async = rng.normal(-60, 3, (t, n))
    shared = np.sin(np.arange(t) * dt / 10.0)[:, None] * 5 - 60
    v_sync = shared + rng.normal(0, 0.5, (t, n))
    some = rng.uniform(size=(t, n)) < 0.005  # 20 Hz
    flood = rng.uniform(size=(t, n)) < 0.1  # 400 Hz
    assert network_regime(none, v_async, dt)["regime"] == "quiescent"
    assert network_regime(flood, v_async, dt)["regime"] == "saturated"
    assert network_regime(some, v_sync, dt)["regime"] == "synchronous_regular"
    out = network_regime(some, v_async, dt)
    assert out["regime"] == "asynchronous_irregular"
    assert out["mean_rate"] == pytest.approx(20.0, rel=0.15)


def test_synchrony_of_identical_traces_is_one():
    v = np.tile(np.sin(np.linspace(0, 20, 500))[:, None], (1, 5))
    assert voltage_synchrony(v) == pytest.approx(1.0)
    assert voltage_synchrony(np.zeros((10, 3))) == 0.0
