"""One figure per read-out cell: its 3-D morphology coloured by the model's attribution,
the same morphology coloured by the measured sensitivity, and both per (segment
group, species) as bars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping

import numpy as np


def _source_row(data_dir: Path, cell: str) -> Dict:
    report = json.loads((data_dir / "report.json").read_text())
    return next(r for r in report["cells"] if r["name"] == cell)


def _node_measured(r: Mapping, groups: Mapping, n_nodes: int) -> np.ndarray:
    """[N] measured sensitivity spread over the nodes of each pair's segment group."""
    out = np.zeros(n_nodes)
    for name, value in zip(r["pair_names"], r["measured"]):
        group = name.rsplit("/", 1)[0]
        nodes = np.asarray(groups.get(group, []), int)
        if nodes.size:
            out[nodes] += value / nodes.size
    return out


def _draw_cell(fig, ax, segs, node_values, title, cmap):
    """Segments as lines coloured (and thickened) by their compartment's value; the
    segments of the compartment with the largest value are marked too (a soma is small
    where a dendritic tree is large)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    values = node_values[segs["node"]]  # [S]
    top = values.max() if values.size and values.max() > 0 else 1.0
    share = values / top
    colours = colormaps[cmap](0.2 + 0.8 * share)  # zero stays visible, light
    lines = np.stack([segs["prox"], segs["dist"]], 1)  # [S, 2, 3]
    ax.add_collection3d(Line3DCollection(lines, colors=colours, linewidths=0.6 + 2.4 * share))
    hot = share >= 0.999
    mids = lines.mean(1)
    ax.scatter(*mids[hot].T, s=60, c=colours[hot], edgecolors="k", linewidths=0.5,
               depthshade=False)
    pts = lines.reshape(-1, 3)
    lo, hi = pts.min(0), pts.max(0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1.0)
    for setter, m in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), mid):
        setter(m - half, m + half)
    ax.view_init(elev=90, azim=-90)  # looking down z: the x-y plane of the reconstruction
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    fig.colorbar(ScalarMappable(Normalize(0, top), colormaps[cmap]), ax=ax, shrink=0.6,
                 pad=0.0)


def readout_figure(r: Mapping, data_dir: Path, path: Path) -> Path:
    """Write the figure of one read-out row (``groundtruth.cell_readout``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graphs import convert_file
    from graphs.convert import cell_segments

    row = _source_row(Path(data_dir), r["cell"])
    segs = cell_segments(row["file"])
    groups = convert_file(row["file"]).meta.get("segment_groups", {})
    model = np.asarray(r["node_attribution"])
    measured = _node_measured(r, groups, len(model))
    fig = plt.figure(figsize=(13, 4.2))
    ax1 = fig.add_subplot(1, 3, 1, projection="3d")
    _draw_cell(fig, ax1, segs, model, "model: mean |IG| on channel columns", "Blues")
    ax2 = fig.add_subplot(1, 3, 2, projection="3d")
    _draw_cell(fig, ax2, segs, measured, "simulator: |slope| per doubling, per compartment",
               "Oranges")
    ax3 = fig.add_subplot(1, 3, 3)
    bars = [(np.asarray(r["model"]), "model: IG attribution")]
    title = f"Spearman IG {r['spearman']:.2f}"
    if "perturbation" in r:  # the doubling read-out
        bars.append((np.asarray(r["perturbation"]), "model: change per doubling"))
        title += f", doubling {r['perturbation_score']['spearman']:.2f}"
    bars.append((np.asarray(r["measured"]), "simulator: |slope| per doubling"))
    y, width = np.arange(len(r["pair_names"])), 0.8 / len(bars)
    for i, (v, label) in enumerate(bars):
        ax3.barh(y + (i - (len(bars) - 1) / 2) * width, v / max(v.max(), 1e-12), width,
                 label=label)
    ax3.set_yticks(y, r["pair_names"], fontsize=8)
    ax3.invert_yaxis()
    ax3.set_xlabel("share of the largest")
    ax3.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax3.set_title(title, fontsize=9)
    fig.suptitle(f"{r['cell']}: {r['target']} ({r['variants']} variants)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
