"""Simulation speed: the JAX simulator (bnnsim) vs jNeuroML on the same networks.

Networks from ``bnnsim.generate.random_network`` (Izhikevich family, step
current drive, 10% connectivity, STP and STDP synapses) at growing sizes, simulated
for ``--duration`` ms at dt = 0.025 ms by:
* ``jnml``: jNeuroML (jLEMS, Java) on the NeuroML file of the network, the
  wall time of the whole run (JVM start and model loading included; the
  first line prints a trivial run's time so that overhead can be read off);
* ``jax``: ``bnnsim.simulate`` on one network, after a warm-up call (compile
  time printed separately);
* ``jax x8``: ``bnnsim.simulate_many`` on 8 networks of that size at once
  (vmapped), per-network time.

Throughput is neuron-steps per second. Current-pulse drive rather than
Poisson spike sources: jLEMS checks every spike of a spikeArray as its own
component each step, which would make the peer look far slower than its
neuron dynamics are (50 neurons with Poisson sources: 135 s for 200 ms). Last line:
``speedup_vs_jneuroml=<jax single-network neuron-steps/s / jnml's>`` at the
largest size both ran.

    python bench/simulate.py            # 10 .. 200 neurons (jNeuroML takes ~200 s at 200)
    python bench/simulate.py --quick    # 10 and 50 neurons, under a minute
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DT = 0.025


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def jnml_seconds(spec, duration: float) -> float:
    from bnnsim import canonical as cn
    from bnnsim import lems

    with tempfile.TemporaryDirectory() as tmp:
        model = cn.network_model(spec.cells, spec.pulses, spec.connections, spec.gaps,
                                 spec.sources)
        run_file = cn.write_lems_run(model, Path(tmp), duration, DT)
        seconds, _ = timed(lambda: lems.run_jneuroml(run_file, max_memory="4G", timeout=3600))
    return seconds


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 and 50 neurons, 200 ms")
    ap.add_argument("--sizes", type=int, nargs="*")
    ap.add_argument("--duration", type=float, default=None, help="ms (default 500; quick 200)")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([10, 50] if args.quick else [10, 50, 100, 200])
    duration = args.duration or (200.0 if args.quick else 500.0)
    import jax

    import bnnsim
    from bnnsim.dataset import spec_model
    from bnnsim.generate import random_network

    steps = int(round(duration / DT))
    print(f"# {duration:g} ms at dt {DT} ms ({steps} steps); jax {jax.__version__} on "
          f"{jax.devices()[0].platform}, {os.cpu_count()} CPU cores")
    empty = random_network(0, n_neurons=1, families=["lif"], drive="pulse", duration=duration)
    print(f"# jNeuroML overhead (1 silent-ish neuron): {jnml_seconds(empty, duration):.1f} s")
    print(f"{'neurons':>8}{'synapses':>10}{'jnml s':>9}{'jax s':>9}{'compile s':>10}"
          f"{'x8 s/net':>10}{'jnml n-steps/s':>16}{'jax n-steps/s':>15}{'speedup':>9}")
    speedup = None
    for n in sizes:
        specs = [random_network(100 * n + k, n_neurons=n, families=["izhikevich"],
                                drive="pulse", duration=duration, p_connect=0.1)
                 for k in range(8)]
        m, _ = spec_model(specs[0])  # point neurons: one row per neuron

        def one():
            return bnnsim.simulate(m.cells, m.inputs, duration, DT, synapses=m.synapses,
                                   gaps=m.gaps, sources=m.sources)

        first, _ = timed(one)
        ours, _ = timed(one)
        models = [spec_model(s)[0] for s in specs]
        timed(lambda: bnnsim.simulate_many(models, duration, DT))
        batch, _ = timed(lambda: bnnsim.simulate_many(models, duration, DT))
        peer = jnml_seconds(specs[0], duration)
        ours_rate, peer_rate = n * steps / ours, n * steps / peer
        speedup = ours_rate / peer_rate
        print(f"{n:>8}{len(specs[0].connections):>10}{peer:>9.2f}{ours:>9.2f}"
              f"{first - ours:>10.1f}{batch / 8:>10.3f}{peer_rate:>16.3g}{ours_rate:>15.3g}"
              f"{speedup:>9.1f}", flush=True)
    print(f"speedup_vs_jneuroml={speedup:.1f}" if speedup else "speedup_vs_jneuroml=nan")


if __name__ == "__main__":
    main()
