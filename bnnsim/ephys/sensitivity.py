"""Ground truth for a read-out: what each variant factor measurably does to each e-feature.

A cell's variants scale each channel density (one factor per (segment group,
channel), ``variants``) by independent log-uniform draws. The effect of a
factor on an e-feature target (``targets``), per doubling, is its coefficient
in the least-squares regression of the target on all factors' log2 jointly,
over the cell and its variants, when there are at least JOINT_MARGIN more
points than factors. With fewer (a 14-channel Allen cell with 10 variants),
the slope on each factor's log2 alone: the draws are independent, so it
estimates the same average effect, with the other factors as noise in it.

A CG sums the channels of one ion species per compartment (``g_na``, ``g_k``,
...), so a model's attribution can only tell (segment group, species) apart:
``column_sensitivity`` sums the absolute slopes of the factors that share one.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, NamedTuple, Sequence, Tuple

import numpy as np

from bnnsim.ephys.targets import EFEATURE_TARGETS, target_vector

MIN_POINTS = 6  # defined target values a slope needs (cell + variants)
JOINT_MARGIN = 3  # points beyond the factor count before the joint fit is used


class CellSensitivity(NamedTuple):
    cell: str  # source cell name
    keys: List[str]  # [K] factor keys "<segmentGroup>/<ionChannel>"
    slope: np.ndarray  # [K, T] target change per doubling of the factor (NaN: too few points)
    corr: np.ndarray  # [K, T] Pearson r of target and log2 factor
    n: np.ndarray  # [T] defined points per target
    joint: np.ndarray  # [T] bool: slope from the joint regression (else marginal)


def design(rows: Sequence[Mapping]) -> Tuple[List[str], np.ndarray, np.ndarray, np.ndarray]:
    """(keys [K], X [n, K] log2 factors, Y [n, T] targets, M [n, T] defined) of one cell's
    rows: the source cell (all factors 1) and its variants (``factors``)."""
    keys = sorted({k for r in rows for k in (r.get("factors") or {})})
    x = np.array([[np.log2((r.get("factors") or {}).get(k, 1.0)) for k in keys]
                  for r in rows], np.float64).reshape(len(rows), len(keys))
    ys, ms = zip(*(target_vector(r.get("efeatures") or {}) for r in rows)) if rows else ((), ())
    y = np.array(ys, np.float64).reshape(len(rows), len(EFEATURE_TARGETS))
    m = np.array(ms, bool).reshape(len(rows), len(EFEATURE_TARGETS))
    return keys, x, y, m


def marginal_slopes(x: np.ndarray, y: np.ndarray, m: np.ndarray, min_points: int = MIN_POINTS
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Slopes and correlations [K, T] of each target on each factor alone, over the rows
    where the target is defined; NaN with fewer than ``min_points`` of them."""
    k, t = x.shape[1], y.shape[1]
    slope, corr = np.full((k, t), np.nan), np.full((k, t), np.nan)
    for j in range(t):
        rows = m[:, j]
        if rows.sum() < min_points:
            continue
        xs, ys = x[rows] - x[rows].mean(0), y[rows, j] - y[rows, j].mean()  # [n, K], [n]
        vx, vy = (xs ** 2).sum(0), (ys ** 2).sum()
        cov = xs.T @ ys  # [K]
        slope[:, j] = np.where(vx > 0, cov / np.where(vx > 0, vx, 1.0), np.nan)
        corr[:, j] = np.where((vx > 0) & (vy > 0), cov / np.sqrt(np.maximum(vx * vy, 1e-300)),
                              0.0)
    return slope, corr


def joint_slopes(x: np.ndarray, y: np.ndarray, m: np.ndarray, min_points: int = MIN_POINTS
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """(slopes [K, T], used [T]): coefficients of the regression of each target on all
    factors (with intercept) where it has >= K + JOINT_MARGIN and >= ``min_points``
    defined rows and the design has full rank; the marginal slopes elsewhere."""
    slope, _ = marginal_slopes(x, y, m, min_points)
    used = np.zeros(y.shape[1], bool)
    k = x.shape[1]
    for j in range(y.shape[1]):
        rows = m[:, j]
        n = int(rows.sum())
        if n < max(min_points, k + JOINT_MARGIN):
            continue
        a = np.hstack([np.ones((n, 1)), x[rows]])  # [n, 1 + K]
        if np.linalg.matrix_rank(a) < k + 1:
            continue
        coef = np.linalg.lstsq(a, y[rows, j], rcond=None)[0]
        slope[:, j], used[j] = coef[1:], True
    return slope, used


def cell_sensitivities(rows: Sequence[Mapping], min_points: int = MIN_POINTS
                       ) -> Dict[str, CellSensitivity]:
    """Per source cell with variants: the slopes of every target on every factor.
    ``rows`` are a dataset's characterised report rows (cells and variants)."""
    groups: Dict[str, List[Mapping]] = {}
    for r in rows:
        if r.get("characterised"):
            groups.setdefault(r.get("variant_of") or r["name"], []).append(r)
    out = {}
    for cell, members in sorted(groups.items()):
        keys, x, y, m = design(members)
        if not keys:
            continue
        _, corr = marginal_slopes(x, y, m, min_points)
        slope, joint = joint_slopes(x, y, m, min_points)
        out[cell] = CellSensitivity(cell, keys, slope, corr, m.sum(0), joint)
    return out


def column_sensitivity(sens: CellSensitivity, columns: Mapping[str, Tuple[str, str]],
                       target: int) -> Dict[Tuple[str, str], float]:
    """{(segment group, species): sum of |slope| of its factors} for one target index;
    ``columns`` maps factor keys to (group, species) (``variants.factor_columns``).
    Factors without a defined slope are left out."""
    out: Dict[Tuple[str, str], float] = {}
    for i, key in enumerate(sens.keys):
        s = sens.slope[i, target]
        if key in columns and np.isfinite(s):
            out[columns[key]] = out.get(columns[key], 0.0) + abs(float(s))
    return out
