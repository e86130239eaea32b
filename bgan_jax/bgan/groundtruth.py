"""The read-out of an ``efeatures`` model scored against the simulator.

For a source cell with variants (``python -m bnnsim cells --variants K``) the
simulator's answer to "which channel where moves this e-feature" is the
measured sensitivity of ``bnnsim.ephys.sensitivity``, per (segment group,
species), the resolution a CG has. The model's answer is integrated gradients
of the target's output on each variant with the *source cell* as baseline, so
each attribution explains what that variant's scaling changed; the mean
|attribution| of a (segment group, species) over the variants is the column
``g_<species>`` summed over the group's compartments. A second read-out asks the
model the simulator's own question (``perturbation_sensitivity``): how much does
its prediction move when the source cell's ``g_<species>`` is doubled on the
group's compartments, which is what the measured slope (per doubling) says of the
simulator. Per cell and target, for each read-out: Spearman's rank correlation
with the measured sensitivity over the cell's (group, species) pairs, and whether
the top pair agrees.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import numpy as np
from tqdm import tqdm

from bgan_jax.bgan import analysis
from bgan_jax.bgan import data as data_lib
from bgan_jax.bgan.config import BGANConfig
from bgan_jax.runs.workdir import read_json
from bnnsim.ephys import sensitivity as sens_lib
from bnnsim.ephys.targets import TARGET_NAMES, target_vector
from bnnsim.ephys.variants import factor_columns
from graphs import batch_and_pad, convert_file, load_cg
from graphs.schema import NODE_COLUMNS, NODE_INDEX, decode, encode_column

Pair = Tuple[str, str]  # (segment group, species)
MIN_PAIRS = 3  # a rank correlation over fewer pairs says nothing


def pair_attribution(attribution: np.ndarray, groups: Mapping[str, Sequence[int]],
                     pairs: Sequence[Pair]) -> np.ndarray:
    """[P] sum of |attribution| [N, F] of column g_<species> over the group's nodes."""
    out = np.zeros(len(pairs))
    for i, (group, species) in enumerate(pairs):
        nodes = np.asarray(groups.get(group, []), int)
        out[i] = np.abs(attribution[nodes, NODE_INDEX[f"g_{species}"]]).sum() if nodes.size else 0.0
    return out


def doubled(features: np.ndarray, nodes: Sequence[int], species: str) -> np.ndarray:
    """[N, F] encoded node features with the density ``g_<species>`` doubled on ``nodes``
    (decoded to mS/cm^2, doubled, encoded again): a variant factor of 2 on every
    channel of that species in the group, as a CG shows it."""
    col = NODE_INDEX[f"g_{species}"]
    column, out = NODE_COLUMNS[col], np.array(features, copy=True)
    nodes = np.asarray(nodes, int)
    out[nodes, col] = encode_column(column, 2.0 * decode(column, out[nodes, col]))
    return out


def make_predictor(apply_fn, output: int):
    """A jitted (params, graph) -> [G] graph output ``output`` (one compilation per
    padded shape)."""
    return jax.jit(lambda params, graph: apply_fn({"params": params}, graph)["graph"][:, output])


def perturbation_sensitivity(predict, params, cg, groups: Mapping[str, Sequence[int]],
                             pairs: Sequence[Pair]) -> np.ndarray:
    """[P] |change of the model's prediction| when the source cell's density of each
    (segment group, species) is doubled, one pair at a time: the model's answer to the
    question the measured slope answers for the simulator (change per doubling). All
    doublings and the unchanged cell go through the model as one batch."""
    copies = [cg] + [dataclasses.replace(cg, node_features=doubled(
        cg.node_features, groups.get(group, []), species).astype(cg.node_features.dtype))
        for group, species in pairs]
    y = np.asarray(predict(params, batch_and_pad(copies)), np.float64)[:len(copies)]
    return np.abs(y[1:] - y[0])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import spearmanr

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def score(model: np.ndarray, measured: np.ndarray) -> Dict:
    """Agreement of a read-out [P] with the measured sensitivity [P]."""
    return {"spearman": spearman(model, measured),
            "top_match": bool(np.argmax(model) == np.argmax(measured)) if len(model) else False,
            "pairs": int(len(model))}


def _rows(data_dir: Path) -> List[dict]:
    report = read_json(data_dir / "report.json", data_lib.DatasetError)
    if not isinstance(report, dict) or "cells" not in report:
        raise data_lib.DatasetError(f"{data_dir}: not a real-cell dataset (no cells in "
                                    "report.json); build one with python -m bnnsim cells")
    return [r for r in report["cells"] + report.get("variants", []) if r.get("characterised")]


def _groups(cg, row: Mapping) -> Dict[str, List[int]]:
    """Segment group -> CG nodes (stored by the converter; older graphs: converted again)."""
    groups = cg.meta.get("segment_groups")
    return groups if groups else convert_file(row["file"]).meta.get("segment_groups", {})


def cell_readout(analyzer, params, source: Tuple[dict, object], variants: Sequence[Tuple[dict, object]],
                 sens: sens_lib.CellSensitivity, target: int, predict=None) -> Dict:
    """One cell's read-out for target index ``target``: integrated gradients (``model``,
    ``spearman``, ``top_match``) and, with ``predict`` (``make_predictor``), the
    doubling read-out (``perturbation`` and its ``perturbation_score``). A cell that
    cannot be scored (too few measured pairs; no variant with the source's graph) gets
    a row with only ``cell``, ``target`` and ``skipped`` (why); variants whose graph
    differs from the source's are left out and counted in ``variants_skipped``."""
    row, cg = source
    head = {"cell": row["name"], "target": TARGET_NAMES[target]}
    columns = factor_columns(row["file"], row["cell_id"])
    measured = sens_lib.column_sensitivity(sens, columns, target)
    pairs = sorted(measured)
    if not pairs:
        return {**head, "skipped": "the target is not defined for this cell and its "
                                   "variants (no measured effect)"}
    if len(pairs) < MIN_PAIRS:
        return {**head, "skipped": f"{len(pairs)} measured (segment group, species) pairs, "
                                   f"fewer than {MIN_PAIRS}"}
    same = [(vrow, vcg) for vrow, vcg in variants if vcg.n_nodes == cg.n_nodes]
    if not same:
        return {**head, "skipped": f"none of its {len(variants)} variants has the source "
                                   "cell's graph"}
    total = np.zeros_like(cg.node_features, dtype=np.float64)  # [N, F]
    model_change, measured_change = [], []  # per variant: output and target moves
    y_source, m_source = target_vector(row.get("efeatures") or {})
    for vrow, vcg in same:
        a = analysis.analyze_model(analyzer, params, vcg, vrow["name"], "efeatures",
                                   None, node_baseline=cg.node_features)
        total += np.abs(a.attribution)
        y, m = target_vector(vrow.get("efeatures") or {})
        model_change.append(a.change)
        measured_change.append(float(y[target] - y_source[target])
                               if m[target] and m_source[target] else None)
    mean_attr = total / len(same)
    groups = _groups(cg, row)
    model = pair_attribution(mean_attr, groups, pairs)
    truth = np.array([measured[p] for p in pairs])
    g_cols = [NODE_INDEX[f"g_{s}"] for s in sorted({s for _, s in pairs})]
    extra = {}
    if predict is not None:
        doubling = perturbation_sensitivity(predict, params, cg, groups, pairs)
        extra = {"perturbation": doubling.tolist(),
                 "perturbation_score": score(doubling, truth)}
    return {**head, "variants": len(same), "variants_skipped": len(variants) - len(same),
            "pair_names": [f"{g}/{s}" for g, s in pairs], "model": model.tolist(),
            "measured": truth.tolist(), **score(model, truth), **extra,
            "model_change": model_change, "measured_change": measured_change,
            "node_attribution": mean_attr[:, g_cols].sum(1).tolist(),
            "labels": {k: (cg.meta.get("labels") or {}).get(k)
                       for k in ("etype_name", "dendrite_type", "repository")}}


def readout(run, data_dir,
            targets: Sequence[str] = ("log_rheobase", "log_rate_1.5x", "log_rate_rest"),
            steps: int = 16, progress: bool = True,
            skipped: Optional[List[Dict]] = None) -> List[Dict]:
    """Score a loaded ``efeatures`` run (``train.load_run``) on every source cell of the
    real-cell dataset ``data_dir`` that has enough variants; one row per scored (cell,
    target). Cells that cannot be scored are appended to ``skipped`` (when given) with
    the reason, so a report can say what was left out and why."""
    if run.config.task != "efeatures":
        raise data_lib.DatasetError(f"the ground-truth read-out needs an efeatures run, not "
                                    f"{run.config.task!r}")
    data_dir = Path(data_dir)
    rows = _rows(data_dir)
    sens = sens_lib.cell_sensitivities(rows)
    by_cell: Dict[str, List[dict]] = {}
    for r in rows:
        by_cell.setdefault(r.get("variant_of") or r["name"], []).append(r)
    task = data_lib.task_of("efeatures")
    config = run.model.config if isinstance(getattr(run.model, "config", None), BGANConfig) \
        else None
    load = (lambda r: (r, load_cg(data_dir / "graphs" / Path(r["npz"]).name)))
    graphs = {}  # cell -> (source, variants), loaded once for every target
    for cell in sorted(sens):
        members = by_cell.get(cell, [])
        source = next((r for r in members if not r.get("variant_of")), None)
        if source is not None:
            graphs[cell] = (load(source), [load(r) for r in members if r.get("variant_of")])
    out, left = [], []
    for t_name in targets:
        t = TARGET_NAMES.index(t_name)
        analyzer = analysis.make_analyzer(run.model.apply, task, steps, config, output=t)
        predict = make_predictor(run.model.apply, t)
        left += [{"cell": c, "target": t_name, "skipped": "its source cell is not "
                  "characterised in the dataset"} for c in sorted(sens) if c not in graphs]
        for cell in tqdm(sorted(graphs), desc=f"read-out {t_name}", disable=not progress):
            result = cell_readout(analyzer, run.params, *graphs[cell], sens[cell], t, predict)
            (left if "skipped" in result else out).append(result)
    if skipped is not None:
        skipped.extend(left)
    return out


def within_cell_r(rows: Sequence[Mapping]) -> float:
    """Pearson r, pooled over the rows' variants, of the model's output change from the
    source cell and the target's measured change: does the model predict how a
    variant moves the target (a read-out can only be right where it does)? NaN with
    fewer than 3 defined variants. The model's change is in standardised units, so r,
    not R^2."""
    pairs = [(a, b) for r in rows for a, b in zip(r.get("model_change", ()),
                                                   r.get("measured_change", ()))
             if b is not None and np.isfinite(a)]
    if len(pairs) < 3:
        return float("nan")
    a, b = np.array(pairs, float).T
    return float(np.corrcoef(a, b)[0, 1]) if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")


def _median(values) -> float:
    v = np.array(values, float)
    return float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan")


def summary(rows: Sequence[Mapping]) -> Dict[str, Dict]:
    """Per target: cells scored, median Spearman and the share whose top pair agrees
    (integrated gradients; ``perturbation_*`` the same for the doubling read-out, where
    the rows have it), and the within-cell r of predicted and measured changes."""
    out = {}
    for t in dict.fromkeys(r["target"] for r in rows):
        sub = [r for r in rows if r["target"] == t]
        rho = np.array([r["spearman"] for r in sub], float)
        out[t] = {"cells": len(sub), "scored": int(np.isfinite(rho).sum()),
                  "median_spearman": _median(rho),
                  "top_match": float(np.mean([r["top_match"] for r in sub])),
                  "within_cell_r": within_cell_r(sub)}
        doubled_rows = [r for r in sub if "perturbation" in r]
        if doubled_rows:
            # the two read-outs against each other: high where the model's answer is
            # clear whatever the method, so a disagreement with the simulator is about
            # what the model learnt, not about how it is read out
            out[t].update(
                perturbation_median_spearman=_median(
                    [r["perturbation_score"]["spearman"] for r in doubled_rows]),
                perturbation_top_match=float(np.mean(
                    [r["perturbation_score"]["top_match"] for r in doubled_rows])),
                ig_vs_doubling_median_spearman=_median(
                    [spearman(np.asarray(r["model"]), np.asarray(r["perturbation"]))
                     for r in doubled_rows]))
    return out
