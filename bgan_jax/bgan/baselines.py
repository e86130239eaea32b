"""Baselines that share BGAN's inputs and heads: an MLP on node features alone, and the
plain-attention transformer (BGAN's blocks without its masks)."""

from __future__ import annotations

from typing import Dict

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph

from bgan_jax.bgan.config import BGANConfig, DatasetStats
from bgan_jax.bgan.masks import graph_index
from bgan_jax.bgan.model import create_model, node_inputs


class NodeMLP(nn.Module):
    """Per-node MLP (``num_blocks`` layers of width ``hidden``): no message passing at all.
    Graph outputs come from the mean of the graph's node states."""

    config: BGANConfig
    stats: DatasetStats = DatasetStats()

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, *, return_attention: bool = False,
                 train: bool = False) -> Dict[str, jnp.ndarray]:
        cfg, nodes = self.config, graph.nodes
        valid = nodes["valid"][:, None]  # [N, 1]
        h = node_inputs(nodes, cfg, self.stats)  # [N, 2F]
        for i in range(cfg.num_blocks):
            h = nn.gelu(nn.Dense(cfg.hidden, name=f"dense_{i}")(h))
            h = nn.Dropout(cfg.dropout, deterministic=not train)(h)
        h = jnp.where(valid, h, 0.0)  # [N, d]
        out = {"node_embedding": h}
        if cfg.num_node_outputs:
            out["node"] = jnp.where(valid, nn.Dense(cfg.num_node_outputs, name="node_head")(h), 0.0)
        if cfg.num_graph_outputs:
            g = graph.n_node.shape[0]
            seg = graph_index(graph)
            total = jax.ops.segment_sum(h, seg, g)
            count = jax.ops.segment_sum(valid.astype(h.dtype), seg, g)
            pooled = total / jnp.maximum(count, 1.0)  # [G, d]
            out["graph"] = nn.Dense(cfg.num_graph_outputs, name="graph_head")(pooled)
        return (out, []) if return_attention else out


def create_mlp(config: BGANConfig, stats: DatasetStats = DatasetStats()) -> NodeMLP:
    return NodeMLP(config, stats)


def transformer_config(config: BGANConfig) -> BGANConfig:
    """The plain-attention transformer baseline: BGAN's blocks with neighbourhood
    attention along every edge instead of the NSA/BMSA masks."""
    return config.replace(nsa=False, bmsa=True, plain_attention=True)


BGAN_MODELS = ("bgan", "mlp", "transformer")


def variant_config(name: str, config: BGANConfig) -> BGANConfig:
    """The config the model ``name`` (``BGAN_MODELS``) is built from: what its attention
    pairs, and so the compaction measured for it, follow (the transformer's differ)."""
    if name not in BGAN_MODELS:
        raise ValueError(f"model must be one of {BGAN_MODELS}, got {name!r}")
    return transformer_config(config) if name == "transformer" else config


def create_variant(name: str, config: BGANConfig, stats: DatasetStats = DatasetStats()):
    """BGAN or one of its baselines (``BGAN_MODELS``), from the same config and stats."""
    config = variant_config(name, config)
    return create_mlp(config, stats) if name == "mlp" else create_model(config, stats)
