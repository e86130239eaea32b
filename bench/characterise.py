"""Characterising real cells: our protocol vs pyNeuroML's F-I curve on the same cells.

Sample: a fixed draw from ``../shared/neuroml-cells`` (``sample``): per
source group (Blue Brain, Allen perisomatic, Allen single-compartment fits,
the others) the first cells by sha256 of their name, so the same cells every
run and across the corpus, large morphologies included.

* ``ours``: ``bnnsim.ephys.dataset.build_cells`` on the sample with
  ``--workers`` processes, into a fresh folder and a fresh cache (export,
  mechanism compilation, the whole protocol, eFEL, the CG: everything a cell
  costs). Prints each cell's seconds and the throughput, cells per hour of
  wall time.
* ``peer``: pyNeuroML's ``generate_current_vs_frequency_curve`` (what a
  NeuroML user reaches for: jNeuroML exports the cell to NEURON and runs one
  population per amplitude) on the same cell, at the amplitudes our protocol
  ran on it (probe, sag, every rheobase trial, the F-I steps), 1 s steps at
  the same dt and temperature, one cell at a time (``--peer-cells``).

Last line: ``ratio_peer_over_ours=<summed peer seconds / summed our seconds on
the cells both ran>``.

    python bench/characterise.py                    # 40 cells, 2 workers, peer on 6
    python bench/characterise.py --n 8 --peer-cells 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "neuroml-cells"
SHARES = (("bbp", 0.35), ("allen", 0.2), ("allen-fit", 0.15), ("other", 0.3))  # corpus.SOURCE_GROUPS


def group(src) -> str:
    from bnnsim.ephys.corpus import source_group

    return source_group(src.file, src.repository)


def sample(sources, n: int) -> list:
    """The first cells of each group by sha256 of the name, ``SHARES`` of ``n``."""
    out = []
    for name, share in SHARES:
        members = sorted((s for s in sources if group(s) == name and s.kind == "cells"),
                         key=lambda s: hashlib.sha256(s.name.encode()).hexdigest())
        out += members[:max(1, round(share * n))]
    return out[:n]


_PEER = """
import os, sys, json
from pyneuroml.analysis import generate_current_vs_frequency_curve
a = json.loads(sys.argv[1])
generate_current_vs_frequency_curve(
    os.path.relpath(a["file"]), a["cell_id"], custom_amps_nA=a["amps"],
    analysis_duration=1000, analysis_delay=100, pre_zero_pulse=100, post_zero_pulse=100,
    dt=a["dt"], temperature=a["temperature"], simulator="jNeuroML_NEURON", plot_if=False,
    plot_iv=False, show_plot_already=False, num_processors=1)
"""


def peer_seconds(row: dict, trace_file: Path) -> float:
    """pyNeuroML's F-I curve on the cell at the amplitudes our protocol ran on it, in a
    process of its own started in a scratch folder (it writes its LEMS files where it
    runs, and exits the process on some errors); its import time is counted, as ours is."""
    from bnnsim.ephys.nrn import neuron_env

    z = np.load(trace_file)
    amps = sorted({round(float(z[k][0]), 6) for k in z.files if k.endswith(".stim")}
                  | {round(float(a), 6) for a, _ in z["search"]})
    args = json.dumps({"file": row["file"], "cell_id": row["cell_id"], "amps": amps,
                       "dt": row.get("dt_ms") or 0.025,
                       "temperature": f"{row['temperature_c']}degC"})
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _PEER, args], cwd=work,
                              env=neuron_env(), capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if proc.returncode != 0:  # e.g. pyNeuroML's analysis extra (pyelectro) missing
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
        raise RuntimeError(f"exit {proc.returncode}: {tail}")
    return seconds


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40, help="cells in the sample (default 40)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--peer-cells", type=int, default=6,
                    help="cells the peer runs too (it is slow; default 6)")
    ap.add_argument("--out", default=None, help="keep the dataset here (default: a temp dir)")
    args = ap.parse_args(argv)

    from bnnsim.ephys.corpus import discover
    from bnnsim.ephys.dataset import build_cells

    if not (CORPUS / "MANIFEST.tsv").is_file():
        raise SystemExit(f"{CORPUS} (the community cell corpus) is not beside this clone")
    sources, _ = discover([CORPUS])
    cells = sample(sources, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "ds"
        t0 = time.perf_counter()
        report = build_cells([c.file for c in cells], out, workers=args.workers,
                             cache_dir=Path(tmp) / "cache", repair=True, progress=False)
        wall = time.perf_counter() - t0
        wanted = {c.name for c in cells}
        rows = [r for r in report["cells"] if r["name"] in wanted]
        print(f"{'cell':60s} {'group':9s} {'status':11s} {'ours_s':>7s} {'peer_s':>7s}")
        by_group: dict = {}
        ours_sum = peer_sum = 0.0
        n_peer = 0
        for c in cells:
            row = next((r for r in rows if r["name"] == c.name), None)
            if row is None:
                continue
            peer = None
            if row["characterised"] and row["status"] == "ok" and n_peer < args.peer_cells:
                try:
                    peer = peer_seconds(row, Path(row["traces"]))
                    n_peer += 1
                    ours_sum += row["seconds"]
                    peer_sum += peer
                except Exception as e:  # noqa: BLE001 - the peer failing is a result too
                    print(f"  peer failed on {c.name}: {type(e).__name__}: {e}")
            by_group.setdefault(group(c), []).append(row["seconds"])
            print(f"{c.name[:60]:60s} {group(c):9s} {row['status']:11s} "
                  f"{row['seconds']:7.1f} {'' if peer is None else f'{peer:7.1f}'}")
        print(json.dumps({g: {"cells": len(s), "median_s": round(float(np.median(s)), 1)}
                          for g, s in by_group.items()}))
        print(f"ours: {len(rows)} cells in {wall:.0f} s with {args.workers} workers = "
              f"{3600 * len(rows) / wall:.0f} cells per hour; characterised "
              f"{report['characterised']['cells']}/{len(rows)}")
        if n_peer:
            print(f"ratio_peer_over_ours={peer_sum / ours_sum:.2f} ({n_peer} cells: peer "
                  f"{peer_sum:.0f} s, ours {ours_sum:.0f} s)")


if __name__ == "__main__":
    main()
