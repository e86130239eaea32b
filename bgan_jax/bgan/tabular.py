"""The non-neural baseline a careful scientist tries first: gradient boosting on a
per-graph table of node features.

A CG becomes one row: for every node kind, its node count and the mean and the
sum of each encoded feature column over its nodes (NaN where no node of the
kind knows the column: scikit-learn's histogram gradient boosting splits on
missingness natively). So the baseline sees what every compartment of a kind
carries, totalled and averaged, but not how compartments connect. Scored with
``train.summarize``, the same metric code as the neural models. Leaves hold at
least MIN_LEAF graphs (scikit-learn's default of 20 cannot split a train split of
~30 Allen cells at all).
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np

from bgan_jax.bgan import data as data_lib
from graphs.schema import NodeKind

NODE_KINDS = tuple(NodeKind)
MIN_LEAF = 5


def graph_row(cg) -> np.ndarray:
    """[K * (1 + 2F)] per node kind: log1p(count), column means, column sums."""
    parts = []
    for kind in NODE_KINDS:
        sel = cg.node_kind == int(kind)
        x = cg.node_features[sel].astype(np.float64)  # [n, F]
        known = cg.node_feature_mask[sel] > 0
        count = known.sum(0)
        total = np.where(known, x, 0.0).sum(0)
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        parts += [[np.log1p(sel.sum())], mean, np.where(count > 0, total, np.nan)]
    return np.concatenate(parts)


def table(examples: Sequence[data_lib.Example]) -> np.ndarray:
    """[n, D] rows of ``graph_row``."""
    return np.stack([graph_row(e.cg) for e in examples])


def fit_predict(task: data_lib.Task, train: Sequence[data_lib.Example],
                splits: Dict[str, Sequence[data_lib.Example]], seed: int = 0) -> Dict[str, Dict]:
    """Fit on ``train`` (balanced class weights for classification; one regressor per
    target on its known values) and score every split like the neural models."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from bgan_jax.bgan.train import summarize

    if task.level != "graph":
        raise data_lib.DatasetError("the tabular baseline takes graph tasks only")
    x_train = table(train)
    keep = ~np.isnan(x_train).all(0)  # columns no training graph knows carry nothing
    x_train = x_train[:, keep]
    y_train = np.stack([e.graph_y for e in train])  # [n, T]
    m_train = np.stack([e.graph_mask for e in train])
    if task.kind == "classification":
        labels = y_train[m_train[:, 0], 0].astype(int)
        models = [_fit(HistGradientBoostingClassifier(class_weight="balanced", random_state=seed,
                                                      min_samples_leaf=MIN_LEAF),
                       x_train[m_train[:, 0]], labels)]
    else:
        models = [_fit(HistGradientBoostingRegressor(random_state=seed, min_samples_leaf=MIN_LEAF),
                       x_train[m_train[:, t]], y_train[m_train[:, t], t])
                  if m_train[:, t].sum() >= 2 else None for t in range(task.width)]
    out = {}
    for name, exs in splits.items():
        if not exs:
            out[name] = {"count": 0}
            continue
        x = table(exs)[:, keep]
        y = np.stack([e.graph_y for e in exs])
        m = np.stack([e.graph_mask for e in exs])
        out[name] = summarize(_stats(task, models, x, y, m), task)
    return out


def _fit(model, x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``model`` fitted on the columns these rows know; returns its predict on full rows.
    (scikit-learn cannot bin a column that is all NaN, such as a channel only a few
    cells carry when a target is defined for a few cells only.)"""
    cols = ~np.isnan(x).all(0)
    model.fit(x[:, cols], y)
    return lambda z: model.predict(z[:, cols])


def _stats(task, models, x, y, m) -> Dict[str, np.ndarray]:
    """The sums ``train.batch_stats`` returns, from the baseline's predictions."""
    w = m.astype(np.float64)
    if task.kind == "classification":
        pred = models[0](x).astype(int)
        labels, known = y[:, 0].astype(int), m[:, 0]
        hit = (pred == labels) & known
        onehot = np.eye(task.outputs)[np.where(known, labels, 0)] * known[:, None]
        return {"loss": 0.0, "count": known.sum(), "correct": hit.sum(),
                "class_count": onehot.sum(0), "class_correct": (onehot * hit[:, None]).sum(0)}
    pred = np.stack([mdl(x) if mdl is not None else np.zeros(len(x))
                     for mdl in models], 1)  # [n, T]
    err = np.where(m, (pred - y) ** 2, 0.0)
    return {"loss": err.sum(), "count": w.sum(), "target_loss": err.sum(0),
            "target_count": w.sum(0), "y": (y * w).sum(0), "y2": (y ** 2 * w).sum(0)}
