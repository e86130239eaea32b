"""Masked losses for node, edge and graph targets, and masked-feature reconstruction.

Every loss takes a boolean ``where`` so padding and unlabelled items never
count; an empty ``where`` gives 0, not NaN.
"""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
import jraph
import optax


def _masked_mean(values: jnp.ndarray, where: jnp.ndarray) -> jnp.ndarray:
    where = where.astype(values.dtype)
    return jnp.sum(values * where) / jnp.maximum(jnp.sum(where), 1.0)


def classification_loss(logits: jnp.ndarray, labels: jnp.ndarray,
                        where: jnp.ndarray) -> jnp.ndarray:
    """Mean softmax cross-entropy; logits [K, C], labels [K] int, where [K] bool."""
    safe = jnp.where(where, labels, 0)
    return _masked_mean(optax.softmax_cross_entropy_with_integer_labels(logits, safe), where)


def accuracy(logits: jnp.ndarray, labels: jnp.ndarray, where: jnp.ndarray) -> jnp.ndarray:
    return _masked_mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32), where)


def regression_loss(pred: jnp.ndarray, target: jnp.ndarray, where: jnp.ndarray) -> jnp.ndarray:
    """Mean squared error; pred/target [K] or [K, T], where [K] bool."""
    err = jnp.square(pred - target)
    if err.ndim > 1:
        err = jnp.mean(err.reshape(err.shape[0], -1), -1)
    return _masked_mean(err, where)


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
