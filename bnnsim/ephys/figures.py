"""One figure per cell, read at a glance: voltage at rheobase, 1.5x and 3x, sag, F-I curve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np


def cell_figure(traces_npz, row: dict, path) -> Path:
    """Draw one characterised cell (its traces file and report row) to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = np.load(traces_npz)
    names = [n for n in ("x1.0", "x1.5", "x3.0") if f"{n}.v" in z] or ["rest"]
    fig, axes = plt.subplots(1, len(names) + 2, figsize=(4 * (len(names) + 2), 3.2),
                             constrained_layout=True)
    for ax, name in zip(axes, names):
        amp = float(z[f"{name}.stim"][0])
        ax.plot(z[f"{name}.t"], z[f"{name}.v"], lw=0.6, color="k")
        label = "rest (no input)" if name == "rest" else \
            f"{'rheobase' if name == 'x1.0' else name[1:] + 'x rheobase'}: {amp:.3g} nA"
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("time (ms)")
    axes[0].set_ylabel("soma V (mV)")
    sag = axes[len(names)]
    for name, colour in (("probe", "0.5"), ("sag", "tab:blue")):
        if f"{name}.v" in z:
            sag.plot(z[f"{name}.t"], z[f"{name}.v"], lw=0.6, color=colour,
                     label=f"{float(z[f'{name}.stim'][0]):.3g} nA")
    feats = row.get("efeatures") or {}
    sag.set_title(f"hyperpolarising: Rin {_fmt(feats.get('ohmic_input_resistance'))} MOhm, "
                  f"sag {_fmt(feats.get('sag_ratio1'))}", fontsize=9)
    sag.legend(fontsize=7, frameon=False)
    sag.set_xlabel("time (ms)")
    fi = axes[-1]
    if z["fi"].size:
        fi.plot(z["fi"][:, 0], z["fi"][:, 1], "o-", color="tab:red")
    fi.set_xlabel("step (nA)")
    fi.set_ylabel("spikes / s")
    fi.set_title(f"F-I: slope {_fmt(feats.get('fi_slope_hz_per_nA'))} Hz/nA", fontsize=9)
    fig.suptitle(f"{row['name']}  [{row.get('etype')}; {row.get('status')}; "
                 f"{row.get('temperature_c')} degC]", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def draw_dataset(out_dir, report: Optional[dict] = None) -> list:
    """DIR/figures/NAME.png for every characterised cell (variants too) of a dataset."""
    out = Path(out_dir)
    if report is None:
        report = json.loads((out / "report.json").read_text())
    paths = []
    for row in report["cells"] + report["variants"]:
        if row.get("characterised") and row.get("traces"):
            paths.append(cell_figure(row["traces"], row, out / "figures" / f"{row['name']}.png"))
    return paths
