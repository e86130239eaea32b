"""BGAN in JAX/Flax: bio-inspired graph attention over NeuroML computational graphs.

Functional API::

    model = bgan_jax.create_model(bgan_jax.BGANConfig(num_graph_outputs=3))
    params = model.init(jax.random.key(0), batch)
    outputs, attention = model.apply(params, batch, return_attention=True)

``batch`` is a padded ``jraph.GraphsTuple`` from ``graphs.batch_and_pad``.
TAVRNN (``bgan_jax.tavrnn.model``) takes window graphs from ``graphs.dynamic_graphs``.
``attention[block][mechanism]`` is an ``AttentionWeights(edges [E, H], self [N, H])``
aligned with the batch's edge arrays (mechanisms: ``ganlow`` (a list, one per
hop round), ``ganup``, ``mask_a``, ``mask_b``).
"""

from bgan_jax.bgan.attention import AttentionWeights, dense_attention, pair_softmax, sparse_attention
from bgan_jax.bgan.config import BGANConfig
from bgan_jax.bgan.losses import (accuracy, classification_loss, mask_node_features,
                             reconstruction_loss, regression_loss)
from bgan_jax.bgan.masks import (DenseLayout, Pairs, backward_pairs, dense_block_size,
                            dense_layout, forward_pairs, ganlow_pairs, ganup_pairs, graph_index,
                            receives)
from bgan_jax.tavrnn.model import TAVRNN, TAVRNNConfig, create_tavrnn
from bgan_jax.bgan.model import (BGAN, BMSA, NSA, Block, EdgeAttention,
                            MaskedAttention, bmsa_heads, cls_index, create_model)

__all__ = [
    "BGAN", "BGANConfig", "BMSA", "NSA", "AttentionWeights", "Block", "DenseLayout",
    "EdgeAttention", "MaskedAttention", "Pairs", "accuracy", "backward_pairs", "bmsa_heads",
    "classification_loss", "cls_index", "create_model", "dense_attention",
    "dense_block_size", "dense_layout", "forward_pairs", "ganlow_pairs", "ganup_pairs", "graph_index",
    "mask_node_features", "receives", "reconstruction_loss", "regression_loss",
    "pair_softmax", "sparse_attention", "TAVRNN", "TAVRNNConfig", "create_tavrnn",
]
