"""Conversion throughput: NeuroML2 -> CG, against libNeuroML's own reader.

Peer (same run, same files): ``neuroml.loaders.read_neuroml2_file`` with
includes, i.e. parsing the model into libNeuroML objects and nothing else.
``ratio`` = our full conversion time / peer parse time (the cost of building
the graph on top of reading the file; 1.0 would be free).

Runs: the ../shared/neuroml corpus (models/s, nodes/s), then generated
morphologies and networks at 1x, 10x, 100x to show linear growth, each size in
a fresh process so peak RSS is its own.

    python bench/convert.py            # full: up to 100k segments / 10k cells
    python bench/convert.py --quick    # 1/10 of the sizes, well under a minute
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from graphs.synthetic import write_morphology, write_network  # noqa: E402

def measure(path: str, granularity: str) -> dict:
    """Time the peer parse and our conversion of one file (run in a child process)."""
    from neuroml.loaders import read_neuroml2_file

    from graphs import convert_file
    from graphs.units import unit_table

    unit_table()  # one-time load of the NeuroML unit definitions, not per model
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    read_neuroml2_file(path, include_includes=True)
    t_peer = time.perf_counter() - t0
    t0 = time.perf_counter()
    cg = convert_file(path, granularity)
    t_ours = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"ours_s": t_ours, "peer_s": t_peer, "nodes": cg.n_nodes, "edges": cg.n_edges,
            "peak_rss_mb": peak / 1024, "rss_growth_mb": (peak - base_rss) / 1024}


def in_child(path: Path, granularity: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(path), granularity],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def corpus(shared: Path) -> None:
    from neuroml.loaders import read_neuroml2_file

    from graphs import ConversionError, convert_file
    from graphs.units import unit_table

    unit_table()
    files = sorted(shared.rglob("*.nml"))
    t_ours = t_peer = 0.0
    nodes = ok = 0
    for f in files:
        try:
            t0 = time.perf_counter()
            read_neuroml2_file(str(f), include_includes=True)
            t_peer += time.perf_counter() - t0
        except BaseException:  # the peer sys.exits on missing includes
            pass
        t0 = time.perf_counter()
        try:
            cg = convert_file(f)
            nodes += cg.n_nodes
            ok += 1
        except ConversionError:
            pass
        t_ours += time.perf_counter() - t0
    print(f"corpus {shared}: {ok}/{len(files)} converted in {t_ours:.2f} s: "
          f"{ok / t_ours:.1f} models/s, {nodes / t_ours:,.0f} nodes/s; "
          f"peer parse {t_peer:.2f} s; ratio ours/peer = {t_ours / max(t_peer, 1e-9):.2f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes / 10")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    shared = REPO.parent / "shared" / "neuroml"
    if shared.is_dir():
        corpus(shared)
    else:
        print("corpus: ../shared/neuroml not found, skipped")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, sizes, writer, gran in (
                ("morphology segments", (1_000, 10_000, 100_000), write_morphology, "segment"),
                ("network cells (10 syn/cell)", (100, 1_000, 10_000), write_network, "section")):
            for n in sizes:
                n //= scale
                path = Path(tmp) / f"{kind.split()[0]}_{n}.nml"
                writer(path, n)
                r = in_child(path, gran)
                rows.append((kind, n, r))
    print(f"\n{'model':30} {'size':>8} {'nodes':>9} {'edges':>9} {'ours s':>8} "
          f"{'peer s':>8} {'ratio':>6} {'us/node':>8} {'peak MB':>8}")
    for kind, n, r in rows:
        print(f"{kind:30} {n:8,d} {r['nodes']:9,d} {r['edges']:9,d} {r['ours_s']:8.2f} "
              f"{r['peer_s']:8.2f} {r['ours_s'] / r['peer_s']:6.2f} "
              f"{1e6 * r['ours_s'] / r['nodes']:8.1f} {r['peak_rss_mb']:8.0f}")
    print("ratio = our conversion time / libNeuroML read_neuroml2_file parse time "
          "(same file, same run)")


if __name__ == "__main__":
    main()
