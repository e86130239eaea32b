"""bench/attention.py --rounds: each implementation keeps its fastest round, all listed."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "bench_attention", Path(__file__).resolve().parents[1] / "bench" / "attention.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_fastest_keeps_the_fastest_round_and_lists_every_time():
    first = bench.fastest(None, {"time_s": 2.0, "rss_growth_mb": 10})
    assert first == {"time_s": 2.0, "rss_growth_mb": 10, "round_times_s": [2.0]}
    second = bench.fastest(first, {"time_s": 1.0, "rss_growth_mb": 20})
    assert second == {"time_s": 1.0, "rss_growth_mb": 20, "round_times_s": [2.0, 1.0]}
    slower = bench.fastest(second, {"time_s": 3.0, "rss_growth_mb": 5})
    assert slower == {"time_s": 1.0, "rss_growth_mb": 20, "round_times_s": [2.0, 1.0, 3.0]}


def test_fastest_keeps_a_time_over_a_failed_round_and_an_error_alone():
    kept = bench.fastest(None, {"time_s": 2.0})
    assert bench.fastest(kept, {"error": "timeout 600s"}) == kept
    failed = bench.fastest(None, {"error": "skipped"})
    assert failed == {"error": "skipped"}
    assert bench.fastest(failed, {"time_s": 1.0}) == {"time_s": 1.0, "round_times_s": [1.0]}


def test_fastest_by_another_key_as_bench_train_keeps_epochs():
    slow = bench.fastest(None, {"seconds": 1.2, "graphs_per_s": 95.0}, "seconds")
    fast = bench.fastest(slow, {"seconds": 0.8, "graphs_per_s": 142.5}, "seconds")
    assert fast == {"seconds": 0.8, "graphs_per_s": 142.5, "round_times_s": [1.2, 0.8]}
