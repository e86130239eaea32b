"""Masked losses for node, edge and graph targets, and masked-feature reconstruction.

Every loss takes a boolean ``where`` so padding and unlabelled items never
count; an empty ``where`` gives 0, not NaN. The per-item ``*_terms`` are what
training sums (and divides by the labelled count of the global batch), so the
public losses and the training objective are one definition.
"""

from __future__ import annotations

from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import jraph
import optax


def _masked_mean(values: jnp.ndarray, where: jnp.ndarray) -> jnp.ndarray:
    where = where.astype(values.dtype)
    return jnp.sum(values * where) / jnp.maximum(jnp.sum(where), 1.0)


def classification_terms(logits: jnp.ndarray, labels: jnp.ndarray, where: jnp.ndarray,
                         class_weights: Optional[jnp.ndarray] = None) -> jnp.ndarray:
    """[K] softmax cross-entropy per item, times ``class_weights`` [C] of its class when
    given, 0 where ``where`` is False; logits [K, C], labels [K] int."""
    safe = jnp.where(where, labels, 0)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, safe)
    if class_weights is not None:
        loss = loss * jnp.asarray(class_weights)[safe]
    return jnp.where(where, loss, 0.0)


def correct_terms(logits: jnp.ndarray, labels: jnp.ndarray, where: jnp.ndarray) -> jnp.ndarray:
    """[K] 1.0 where the arg-max class is the label, 0 elsewhere and off ``where``."""
    return ((jnp.argmax(logits, -1) == labels) & where).astype(jnp.float32)


def regression_terms(pred: jnp.ndarray, target: jnp.ndarray, where: jnp.ndarray) -> jnp.ndarray:
    """[K] squared error per item (mean over trailing target axes), 0 off ``where``."""
    err = jnp.square(pred - target)
    if err.ndim > 1:
        err = jnp.mean(err.reshape(err.shape[0], -1), -1)
    return jnp.where(where, err, 0.0)


def family_pair_terms(pred: jnp.ndarray, target: jnp.ndarray, where: jnp.ndarray,
                      family: jnp.ndarray, valid: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """(sum, count) of the squared error of *differences* over pairs of graphs of one
    family (a cell and its variants): ((p_i - p_j) - (y_i - y_j))^2 per target both
    define, each pair once. It asks the model for what a variant changes, which the
    per-graph error weighs only as a small part of the between-cell variance.
    pred, target, where [G, T]; family [G] int (equal: same family); valid [G] bool."""
    g = family.shape[0]
    upper = jnp.arange(g)[:, None] < jnp.arange(g)[None, :]  # [G, G] each pair once
    same = (family[:, None] == family[None, :]) & valid[:, None] & valid[None, :] & upper
    both = where[:, None, :] & where[None, :, :] & same[..., None]  # [G, G, T]
    diff = (pred[:, None, :] - pred[None, :, :]) - (target[:, None, :] - target[None, :, :])
    return jnp.sum(jnp.where(both, jnp.square(diff), 0.0)), jnp.sum(both)


def classification_loss(logits: jnp.ndarray, labels: jnp.ndarray, where: jnp.ndarray,
                        class_weights: Optional[jnp.ndarray] = None) -> jnp.ndarray:
    """Mean (weighted) softmax cross-entropy over the items ``where`` is True."""
    return _masked_mean(classification_terms(logits, labels, where, class_weights), where)


def accuracy(logits: jnp.ndarray, labels: jnp.ndarray, where: jnp.ndarray) -> jnp.ndarray:
    return _masked_mean(correct_terms(logits, labels, where), where)


def regression_loss(pred: jnp.ndarray, target: jnp.ndarray, where: jnp.ndarray) -> jnp.ndarray:
    """Mean squared error; pred/target [K] or [K, T], where [K] bool."""
    return _masked_mean(regression_terms(pred, target, where), where)


def mask_node_features(rng: jax.Array, graph: jraph.GraphsTuple,
                       rate: float = 0.15) -> Tuple[jraph.GraphsTuple, jnp.ndarray]:
    """Hide a random ``rate`` of the known node feature entries (value 0, mask 0).

    Returns the corrupted batch and the [N, F] bool set of hidden entries that
    ``reconstruction_loss`` scores. Type columns stay visible in practice only
    if the caller excludes them; all known entries are candidates here.
    """
    known = (graph.nodes["feature_mask"] > 0) & graph.nodes["valid"][:, None]  # [N, F]
    hidden = known & jax.random.bernoulli(rng, rate, known.shape)
    nodes = dict(graph.nodes,
                 features=jnp.where(hidden, 0.0, graph.nodes["features"]),
                 feature_mask=jnp.where(hidden, 0.0, graph.nodes["feature_mask"]))
    return graph._replace(nodes=nodes), hidden


def reconstruction_loss(pred: jnp.ndarray, features: jnp.ndarray,
                        hidden: jnp.ndarray) -> jnp.ndarray:
    """MSE of the reconstruction [N, F] on the hidden entries only."""
    return _masked_mean(jnp.square(pred - features), hidden)
