"""BGAN as Flax Linen modules: NSA (GANlow, GANup, top-down gate), BMSA, blocks, heads.

``create_model(config, stats)`` returns the module; ``model.init(rng, batch)`` and
``model.apply(params, batch, return_attention=True)`` are the pure functional
API. The batch is the padded ``jraph.GraphsTuple`` of ``graphs.batch_and_pad``.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph

from bgan_jax.bgan import compaction, inputs, masks
from bgan_jax.bgan.attention import (chunked_sparse_attention, dense_attention,
                                    projected_sparse_attention)
from bgan_jax.bgan.config import FEATURE_CLIP, BGANConfig, DatasetStats
from graphs.schema import COMPARTMENT_KINDS, NodeKind


def node_inputs(nodes: Dict, config: BGANConfig, stats: DatasetStats = DatasetStats()
                ) -> jnp.ndarray:
    """[N, 2F] model input: the known node features, standardised with the run's
    per-column shift and scale (when measured), next to their known-mask. Unknown
    values and padding are 0 whatever the shift, so they carry only the mask."""
    x, known = nodes["features"], nodes["feature_mask"]  # [N, F] each
    if config.log_densities:
        x = inputs.log_densities(x, jnp)
    if stats.feature_shift:
        if len(stats.feature_shift) != x.shape[-1]:
            raise ValueError(f"feature_shift has {len(stats.feature_shift)} columns but the "
                             f"graph has {x.shape[-1]} node features: a run trained on another "
                             "feature schema")
        shift = jnp.asarray(stats.feature_shift, x.dtype)
        scale = jnp.asarray(stats.feature_scale, x.dtype)
        x = jnp.clip((x - shift) / scale, -FEATURE_CLIP, FEATURE_CLIP)
    return jnp.concatenate([jnp.where(known > 0, x, 0.0), known], -1)


class Context(NamedTuple):
    """Per-batch quantities shared by every block (computed once per forward pass)."""

    edge_emb: jnp.ndarray  # [E, edge_hidden]
    layout: Optional[masks.DenseLayout]
    pairs: Dict[str, masks.Pairs]  # by mechanism name (config.MECHANISMS), compacted
    neuron_id: jnp.ndarray  # [N] int32
    is_compartment: jnp.ndarray  # [N] bool
    overflow: jnp.ndarray  # [] bool: pairs beyond a mechanism's capacity (see compaction.compact_pairs)


class EdgeAttention(nn.Module):
    """Multi-head edge-aware attention over one pair set: -> ([C, H, D] on the pairs'
    node slots (``compaction.expand`` puts them back on the batch), weights on the batch)."""

    heads: int
    head_dim: int
    pair_chunk: Optional[int] = None
    cpu_kernel: bool = True

    @nn.compact
    def __call__(self, x, edge_emb, pairs: masks.Pairs, layout: Optional[masks.DenseLayout]):
        n, hd = x.shape[0], (self.heads, self.head_dim)
        if pairs.nodes is not None:  # only the nodes this mechanism touches: [C, d]
            x = x[jnp.minimum(pairs.nodes, n - 1)]
        c, width = x.shape[0], self.heads * self.head_dim
        q = nn.Dense(width, name="query")(x).reshape((c,) + hd) / jnp.sqrt(self.head_dim)
        k = nn.Dense(width, name="key")(x).reshape((c,) + hd)
        v = nn.Dense(width, name="value")(x).reshape((c,) + hd)
        edge_key = nn.Dense(width, use_bias=False, name="edge_key")
        edge_value = nn.Dense(width, use_bias=False, name="edge_value")
        p = pairs.senders.shape[0]
        emb = edge_emb if pairs.rows is None else edge_emb[pairs.rows]  # [P, de]
        if layout is not None:
            ek, ev = edge_key(emb).reshape((p,) + hd), edge_value(emb).reshape((p,) + hd)
            out, w = dense_attention(q, k, v, ek, ev, pairs, layout)
        else:  # the sparse paths apply the edge projections themselves
            kernels = []
            for dense in (edge_key, edge_value):  # one row creates the kernel at init
                dense(edge_emb[:1])
                kernels.append(dense.variables["params"]["kernel"])  # [de, H * D]
            if self.pair_chunk and p > self.pair_chunk:
                rows = jnp.arange(p, dtype=jnp.int32) if pairs.rows is None else pairs.rows
                out, w = chunked_sparse_attention(q, k, v, edge_emb, rows, *kernels, pairs,
                                                  self.pair_chunk)
            else:
                out, w = projected_sparse_attention(q, k, v, emb, *kernels, pairs,
                                                    self.cpu_kernel)
        w = w._replace(self=compaction.expand(w.self, pairs, n))  # [N, H]
        if pairs.rows is not None:  # weights back onto the batch's edge rows: [E, H]
            per_edge = jnp.zeros((edge_emb.shape[0], self.heads), w.edges.dtype)
            w = w._replace(edges=per_edge.at[pairs.rows].add(w.edges))
        return out, w


class MaskedAttention(nn.Module):
    """EdgeAttention + bias-free output projection: a node with no pair gets exactly 0."""

    hidden: int
    heads: int
    pair_chunk: Optional[int] = None
    cpu_kernel: bool = True

    @nn.compact
    def __call__(self, x, edge_emb, pairs, layout):
        out, w = EdgeAttention(self.heads, self.hidden // self.heads, self.pair_chunk,
                               self.cpu_kernel, name="attention")(x, edge_emb, pairs, layout)
        y = nn.Dense(self.hidden, use_bias=False, name="out")(out.reshape(out.shape[0], -1))
        return compaction.expand(y, pairs, x.shape[0]), w


class NSA(nn.Module):
    """Neuronal structural attention: GANlow rounds, GANup, gated top-down broadcast."""

    config: BGANConfig

    @nn.compact
    def __call__(self, h, ctx: Context):  # h [N, d] -> update [N, d], weights
        cfg = self.config
        x, low = h, []
        for r in range(cfg.low_hops):
            u, w = MaskedAttention(cfg.hidden, cfg.heads, cfg.backend.pair_chunk,
                                   cfg.backend.cpu_kernel,
                                   name=f"ganlow_{r}")(
                x, ctx.edge_emb, ctx.pairs["ganlow"], ctx.layout)
            x, low = x + u, low + [w]
        up, w_up = MaskedAttention(cfg.hidden, cfg.heads, cfg.backend.pair_chunk,
                                   cfg.backend.cpu_kernel, name="ganup")(
            x, ctx.edge_emb, ctx.pairs["ganup"], ctx.layout)
        down = compaction.expand(self.top_down(x, x + up, ctx), ctx.pairs["ganlow"], h.shape[0])
        return (x - h) + up + down, {"ganlow": low, "ganup": w_up}

    def top_down(self, x, top, ctx: Context):  # x, top [N, d] -> [C, d] on GANlow's slots
        """Each compartment reads its neuron's new state ``top`` through a gate. Computed on
        GANlow's node slots when nodes are compacted (every compartment attends to itself
        in GANlow, so each has a slot; in a network CG they are ~10 % of the nodes), else
        on all N; every other node's update is 0."""
        n = x.shape[0]
        low = ctx.pairs["ganlow"]
        at = (lambda a: a) if low.nodes is None else (
            lambda a: jnp.asarray(a)[jnp.minimum(low.nodes, n - 1)])  # [N] -> [C]
        comp = at(ctx.is_compartment)[:, None]  # [C, 1]; empty slots: dropped by expand
        x = at(x)  # [C, d]
        parent = jnp.where(comp, top[jnp.maximum(at(ctx.neuron_id), 0)], 0.0)  # [C, d]
        gate = nn.sigmoid(nn.Dense(self.config.hidden, name="down_gate")(
            jnp.concatenate([x, parent], -1)))
        return jnp.where(comp, gate * nn.Dense(self.config.hidden, use_bias=False,
                                               name="down")(parent), 0.0)


def bmsa_heads(config: BGANConfig) -> Tuple[int, int]:
    """(MaskA heads, MaskB heads): split evenly when both are on, all to one otherwise."""
    if config.mask_a and config.mask_b:
        return config.heads // 2, config.heads - config.heads // 2
    return (config.heads, 0) if config.mask_a else (0, config.heads if config.mask_b else 0)


class BMSA(nn.Module):
    """Bidirectional masked self-attention: MaskA and MaskB heads, concatenated, mixed."""

    config: BGANConfig

    @nn.compact
    def __call__(self, h, ctx: Context):
        cfg = self.config
        head_dim = cfg.hidden // cfg.heads
        parts, weights = [], {}
        for name, heads in zip(("mask_a", "mask_b"), bmsa_heads(cfg)):
            pairs = ctx.pairs[name]
            if heads:
                out, w = EdgeAttention(heads, head_dim, cfg.backend.pair_chunk,
                                       cfg.backend.cpu_kernel, name=name)(
                    h, ctx.edge_emb, pairs, ctx.layout)
                parts.append(compaction.expand(out.reshape(out.shape[0], -1), pairs, h.shape[0]))
                weights[name] = w
        return nn.Dense(cfg.hidden, use_bias=False, name="mix")(jnp.concatenate(parts, -1)), weights


class Block(nn.Module):
    """H <- H + NSA(LN H); H <- H + BMSA(LN H); H <- H + MLP(LN H); padding stays 0."""

    config: BGANConfig

    @nn.compact
    def __call__(self, h, ctx: Context, valid, train: bool):
        cfg = self.config
        drop = nn.Dropout(cfg.dropout, deterministic=not train)
        attn = {}
        if cfg.nsa:
            u, w = NSA(cfg, name="nsa")(nn.LayerNorm(name="ln_nsa")(h), ctx)
            h, attn = h + drop(u), {**attn, **w}
        if cfg.bmsa and (cfg.mask_a or cfg.mask_b):
            u, w = BMSA(cfg, name="bmsa")(nn.LayerNorm(name="ln_bmsa")(h), ctx)
            h, attn = h + drop(u), {**attn, **w}
        y = nn.Dense(cfg.hidden * cfg.mlp_ratio, name="mlp_in")(nn.LayerNorm(name="ln_mlp")(h))
        y = nn.Dense(cfg.hidden, name="mlp_out")(drop(nn.gelu(y)))
        return jnp.where(valid[:, None], h + drop(y), 0.0), attn


def cls_index(graph: jraph.GraphsTuple) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """([G] index of each graph's CLS node, [G] bool graph has one and is real)."""
    n, g = graph.nodes["kind"].shape[0], graph.n_node.shape[0]
    graph_of = masks.graph_index(graph)
    is_cls = (graph.nodes["kind"] == NodeKind.CLS) & graph.nodes["valid"]
    first = jax.ops.segment_min(jnp.where(is_cls, jnp.arange(n), n), graph_of, g)
    found = (first < n) & graph.globals["valid"]
    return jnp.where(found, first, 0), found


class BGAN(nn.Module):
    """Bio-inspired graph attention network over padded CG batches."""

    config: BGANConfig
    stats: DatasetStats = DatasetStats()
    """What the run measured on its data (standardisation, compaction bounds)."""

    def context(self, graph: jraph.GraphsTuple, edge_emb) -> Context:
        cfg, nodes = self.config, graph.nodes
        layout = masks.dense_layout(graph, cfg.dense_graph_nodes) if cfg.attention == "dense" else None
        pairs, over = compaction.compact_pairs(graph, cfg, self.stats.compaction)
        return Context(
            edge_emb=edge_emb, layout=layout, pairs=pairs, neuron_id=nodes["neuron_id"],
            is_compartment=masks.isin(nodes["kind"], COMPARTMENT_KINDS) & (nodes["neuron_id"] >= 0),
            overflow=over)

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, *, return_attention: bool = False,
                 train: bool = False):
        cfg = self.config
        nodes, edges = graph.nodes, graph.edges
        valid, edge_valid = nodes["valid"], edges["valid"]
        x = node_inputs(nodes, cfg, self.stats)  # [N, 2F]
        h = jnp.where(valid[:, None], nn.Dense(cfg.hidden, name="node_embed")(x), 0.0)  # [N, d]
        ex = jnp.concatenate([edges["features"] * edges["feature_mask"], edges["feature_mask"]], -1)
        edge_emb = nn.gelu(nn.Dense(cfg.edge_hidden, name="edge_embed")(ex))
        edge_emb = jnp.where(edge_valid[:, None], edge_emb, 0.0)  # [E, de]
        ctx = self.context(graph, edge_emb)
        h = jnp.where(ctx.overflow, jnp.nan, h)  # dropped pairs: NaN everywhere, never a quiet error
        attention: List[Dict] = []
        for b in range(cfg.num_blocks):
            h, w = Block(cfg, name=f"block_{b}")(h, ctx, valid, train)
            attention.append(w)
        h = jnp.where(valid[:, None], nn.LayerNorm(name="final_ln")(h), 0.0)
        outputs = self.heads(graph, h, edge_emb)
        return (outputs, attention) if return_attention else outputs

    def totals(self, graph: jraph.GraphsTuple, h) -> jnp.ndarray:
        """[G, graph_totals] log1p of per-graph sums over compartments of softplus(W h):
        a sum, so independent of node order and padding, and >= 0 before the log."""
        nodes = graph.nodes
        comp = masks.isin(nodes["kind"], COMPARTMENT_KINDS) & nodes["valid"]  # [N]
        t = nn.softplus(nn.Dense(self.config.graph_totals, name="totals_proj")(h))  # [N, k]
        summed = jax.ops.segment_sum(jnp.where(comp[:, None], t, 0.0), masks.graph_index(graph),
                                     graph.n_node.shape[0])  # [G, k]
        return jnp.log1p(summed)

    def heads(self, graph, h, edge_emb) -> Dict[str, jnp.ndarray]:
        """Node [N, *], edge [E, *], graph [G, *] outputs and reconstruction [N, F]."""
        cfg = self.config
        valid, edge_valid = graph.nodes["valid"][:, None], graph.edges["valid"][:, None]
        cls, found = cls_index(graph)
        g = jnp.where(found[:, None], h[cls], 0.0)  # [G, d]
        out = {"node_embedding": h, "graph_embedding": g}
        if cfg.num_node_outputs:
            out["node"] = jnp.where(valid, nn.Dense(cfg.num_node_outputs, name="node_head")(h), 0.0)
        if cfg.num_graph_outputs:
            read = jnp.concatenate([g, self.totals(graph, h)], -1) if cfg.graph_totals else g
            out["graph"] = jnp.where(found[:, None],
                                     nn.Dense(cfg.num_graph_outputs, name="graph_head")(read), 0.0)
        if cfg.num_edge_outputs:
            pair = jnp.concatenate([h[graph.senders], h[graph.receivers], edge_emb], -1)
            y = nn.gelu(nn.Dense(cfg.hidden, name="edge_hidden")(pair))
            out["edge"] = jnp.where(edge_valid, nn.Dense(cfg.num_edge_outputs, name="edge_head")(y), 0.0)
        if cfg.reconstruct:
            width = graph.nodes["features"].shape[-1]
            out["reconstruction"] = jnp.where(valid, nn.Dense(width, name="reconstruct_head")(h), 0.0)
        return out


def create_model(config: BGANConfig = BGANConfig(), stats: DatasetStats = DatasetStats()
                 ) -> BGAN:
    """The BGAN module for ``config`` (and a run's measured ``stats``); use its pure
    ``init`` / ``apply``."""
    return BGAN(config, stats)
