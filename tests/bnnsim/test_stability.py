"""Label stability under redrawn Poisson inputs (bnnsim.stability)."""

import json

import pytest

from bnnsim.dataset import build_dataset, network_labels, neuron_stats, simulate_spec
from bnnsim.generate import random_network
from bnnsim.stability import (StabilityError, label_stability, network_stability,
                              redraw_sources)


def _poisson_net(rate):
    return random_network(7, n_neurons=6, families=["lif"], drive="poisson", drive_rate=rate)


def test_redraw_keeps_rates_and_changes_times():
    spec = _poisson_net(400.0)
    a, b = redraw_sources(spec, 1), redraw_sources(spec, 2)
    assert len(a.sources) == len(spec.sources) == 6
    assert a.sources != b.sources and a.connections == spec.connections
    counts = [len(s) for s in a.sources + b.sources]  # 400 Hz over 1 s: 400 +- 20 each
    assert all(300 < c < 500 for c in counts), counts
    assert redraw_sources(spec, 1).sources == a.sources  # seeded


def _labels(spec):
    result = simulate_spec(spec)
    return network_labels(spec, result, neuron_stats(spec, result))


def test_silent_drive_gives_stable_labels():
    spec = _poisson_net(0.0)  # no input spikes in any draw: the same simulation each time
    out = network_stability(spec, _labels(spec), draws=2, seed=0)
    assert out["agreement"] == [1.0] * 6 and out["majority"] == [1.0] * 6
    assert out["regime_agreement"] == 1.0


def test_label_stability_summary(tmp_path):
    build_dataset(tmp_path, 4, seed=11, families=["lif"], neuron_range=(6, 8),
                  ood_family=None, progress=False)
    report = json.loads((tmp_path / "report.json").read_text())
    splits = ("train", "val", "test")
    out = label_stability(tmp_path, draws=1, splits=splits, progress=False)
    rows = [r for r in report["networks"] if r["status"] == "ok"]
    assert out["networks"] == len(rows)
    assert out["poisson_networks"] == sum(r["generator"]["drive"] == "poisson" for r in rows) > 0
    assert out["poisson_neurons"] + out["pulse_neurons"] == sum(
        len(r["labels"]["firing_pattern"]) for r in rows)
    assert 0.5 <= out["majority"] <= 1.0 and 0.0 <= out["agreement"] <= 1.0
    assert out["majority"] <= out["ceiling"] <= 1.0  # pulse-driven neurons count 1
    # a report whose generator arguments do not rebuild its networks is refused by name
    report["generator_args"]["neuron_range"] = [20, 30]
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(StabilityError, match="other generator arguments"):
        label_stability(tmp_path, draws=1, splits=splits, progress=False)
    with pytest.raises(StabilityError, match="no report.json"):
        label_stability(tmp_path / "nope")
