"""TAVRNN: temporal attention-augmented variational graph RNN (arXiv 2410.00665).

Input: a recording as T window graphs (``bgan_jax.tavrnn.spikes.dynamic_graphs``), each
with N neuron nodes (rows 0..N-1), N history nodes (rows N..2N-1) and padding,
stacked along a leading time axis. Per step t, with GCN(.) a graph
convolution over window t's graph (symmetric normalisation, self-loops)::

    x~   = relu(W_x x_t)                                    feature map     [P, H]
    h~   = tanh(h_{t-1} + c_t)                              c_t: temporal attention (below)
    enc  = relu(GCN([x~ || h~]))
    q(z) = N(mu, sigma):   mu = GCN(enc), sigma = softplus(GCN(enc))          [P, L]
    p(z) = N(mu0, sigma0): from relu(W h~) (VGAE: N(0, I))
    z    = mu + sigma * eps                                 reparameterised
    A^_t = sigmoid(z z^T) over the neuron rows               inner-product decoder [N, N]
    h_t  = GRU(h~, [x~ || relu(W_z z)]), every gate a GCN    graph GRU

Temporal attention (TAVRNN only): neuron i queries its own history-node rows of
the last K = ``attention_span`` hidden states, scaled dot product::

    a_{i,s} = softmax_{t-K <= s < t}( (W_q h_{t-1}[i]) . (W_k h_s[N+i]) / sqrt(H) )
    c_t[i] = c_t[N+i] = sum_s a_{i,s} W_v h_s[N+i]          (0 at t = 0)

Loss per step (summed over time): KL(q || p) * 0.5 / N averaged over neurons,
plus weighted BCE of A^_t against A_t + I with positive weight (M - E) / E and
normalisation M / (2 (M - E)), M the pairs in the loss and E the positives among
them (as VGAE/VGRNN). Variants in the same code: ``vgrnn`` (no temporal
attention) and ``vgae`` (no recurrence, standard normal prior, each window alone).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph

VARIANTS = ("tavrnn", "vgrnn", "vgae")
_MIN_STD = 1e-4  # keeps log(sigma) finite


@dataclasses.dataclass(frozen=True)
class TAVRNNConfig:
    """Defaults as in the paper: hidden 32, latent 8."""

    variant: str = "tavrnn"
    """tavrnn, vgrnn (no temporal attention) or vgae (static, per window)."""
    hidden: int = 32
    latent: int = 8
    attention_span: int = 8
    """Past steps the temporal attention sees (a window keeps the cost linear in T and
    the first, input-less step from becoming a constant attention sink)."""

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if min(self.hidden, self.latent, self.attention_span) < 1:
            raise ValueError(f"hidden, latent and attention_span must be >= 1, got {self}")

    @property
    def recurrent(self) -> bool:
        return self.variant != "vgae"

    @property
    def attention(self) -> bool:
        return self.variant == "tavrnn"


class Propagation(NamedTuple):
    """GCN weights of one graph: D^-1/2 (A + I) D^-1/2 as edge and self weights."""

    senders: jnp.ndarray  # [Q]
    receivers: jnp.ndarray  # [Q]
    edge_weight: jnp.ndarray  # [Q], 0 on padding edges
    self_weight: jnp.ndarray  # [P]


def propagation(graph: jraph.GraphsTuple) -> Propagation:
    p, q = graph.nodes.shape[0], graph.senders.shape[0]
    valid = (jnp.arange(q) < jnp.sum(graph.n_edge[:-1])).astype(jnp.float32)  # [Q]
    deg = 1.0 + jax.ops.segment_sum(valid, graph.receivers, p)  # [P]
    inv = jax.lax.rsqrt(deg)
    return Propagation(graph.senders, graph.receivers,
                       valid * inv[graph.senders] * inv[graph.receivers], 1.0 / deg)


def propagate(prop: Propagation, x: jnp.ndarray) -> jnp.ndarray:
    """[P, D] -> [P, D]: normalised sum over in-neighbours and self."""
    msg = prop.edge_weight[:, None] * x[prop.senders]
    return prop.self_weight[:, None] * x + jax.ops.segment_sum(msg, prop.receivers, x.shape[0])


class GCN(nn.Module):
    features: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray, prop: Propagation) -> jnp.ndarray:
        return propagate(prop, nn.Dense(self.features, use_bias=self.use_bias)(x))


class StepOutputs(NamedTuple):
    """Per step (stacked over time by the scan: a leading [T] axis)."""

    mu: jnp.ndarray  # [N, L] posterior mean (the embedding)
    std: jnp.ndarray  # [N, L]
    prior_mu: jnp.ndarray  # [N, L]
    prior_std: jnp.ndarray  # [N, L]
    z: jnp.ndarray  # [N, L] sample (= mu without a noise key)
    attention: jnp.ndarray  # [N, K] weight on the state 1..K steps back (zeros: no attention)


class GraphGRU(nn.Module):
    """GRU whose input and hidden transforms are GCNs over the current graph."""

    hidden: int

    @nn.compact
    def __call__(self, h, x, prop):
        def gate(name, a, b):
            return GCN(self.hidden, name=f"{name}_x")(a, prop) + \
                GCN(self.hidden, use_bias=False, name=f"{name}_h")(b, prop)

        r = nn.sigmoid(gate("reset", x, h))
        u = nn.sigmoid(gate("update", x, h))
        c = jnp.tanh(gate("candidate", x, r * h))
        return u * h + (1.0 - u) * c


class TemporalAttention(nn.Module):
    """Each neuron attends over its history-node rows of the last ``span`` hidden states."""

    hidden: int

    @nn.compact
    def __call__(self, h, memory, t):
        # h [P, H]; memory [K, N, H]: history-node rows of h_{t-K}..h_{t-1} (oldest first)
        span, n = memory.shape[:2]
        q = nn.Dense(self.hidden, name="query")(h[:n])  # [N, H]
        k = nn.Dense(self.hidden, name="key")(memory)  # [K, N, H]
        v = nn.Dense(self.hidden, name="value")(memory)  # [K, N, H]
        scores = jnp.einsum("nh,snh->ns", q, k) / jnp.sqrt(self.hidden)  # [N, K]
        filled = jnp.arange(span) >= span - t  # [K] slots written so far
        scores = jnp.where(filled[None], scores, -1e9)
        weights = jax.nn.softmax(scores, axis=-1) * filled[None]  # [N, K]; all 0 at t = 0
        context = jnp.einsum("ns,snh->nh", weights, v)  # [N, H]
        pad = jnp.zeros((h.shape[0] - 2 * n, self.hidden), h.dtype)
        # tanh keeps h~ in the GRU's range: an unbounded sum compounds over steps
        return jnp.tanh(h + jnp.concatenate([context, context, pad])), weights[:, ::-1]


class Cell(nn.Module):
    """One time step (scanned over the recording)."""

    config: TAVRNNConfig
    n_neurons: int

    @nn.compact
    def __call__(self, carry, inputs):
        h, memory, t = carry  # [P, H], [K, N, H], step
        graph, eps = inputs  # one window's GraphsTuple, [P, L] noise
        cfg, n = self.config, self.n_neurons
        prop = propagation(graph)
        x = nn.relu(nn.Dense(cfg.hidden, name="phi_x")(graph.nodes))  # [P, H]
        weights = jnp.zeros((n, memory.shape[0]), x.dtype)  # [N, K] by lag 1..K
        if cfg.attention:
            h, weights = TemporalAttention(cfg.hidden)(h, memory, t)
        enc_in = jnp.concatenate([x, h], axis=-1) if cfg.recurrent else x
        enc = nn.relu(GCN(cfg.hidden, name="encoder")(enc_in, prop))
        mu = GCN(cfg.latent, name="mean")(enc, prop)  # [P, L]
        std = nn.softplus(GCN(cfg.latent, name="std")(enc, prop)) + _MIN_STD
        if cfg.recurrent:
            prior = nn.relu(nn.Dense(cfg.hidden, name="prior")(h))
            prior_mu = nn.Dense(cfg.latent, name="prior_mean")(prior)
            prior_std = nn.softplus(nn.Dense(cfg.latent, name="prior_std")(prior)) + _MIN_STD
        else:
            prior_mu, prior_std = jnp.zeros_like(mu), jnp.ones_like(std)
        z = mu + std * eps
        if cfg.recurrent:
            phi_z = nn.relu(nn.Dense(cfg.hidden, name="phi_z")(z))
            h = GraphGRU(cfg.hidden, name="gru")(h, jnp.concatenate([x, phi_z], -1), prop)
            memory = jnp.concatenate([memory[1:], h[None, n:2 * n]])  # drop the oldest
        out = StepOutputs(mu[:n], std[:n], prior_mu[:n], prior_std[:n], z[:n], weights)
        return (h, memory, t + 1), out


class TAVRNN(nn.Module):
    """The whole recording in one ``lax.scan`` (full backpropagation through time)."""

    config: TAVRNNConfig
    n_neurons: int

    @nn.compact
    def __call__(self, graphs: jraph.GraphsTuple, key: Optional[jax.Array] = None) -> StepOutputs:
        # graphs: leading time axis, nodes [T, P, F]; key None: z = mu (evaluation)
        steps, p = graphs.nodes.shape[:2]
        if 2 * self.n_neurons > p:
            raise ValueError(f"{p} node rows cannot hold {self.n_neurons} neurons + history")
        shape = (steps, p, self.config.latent)
        eps = jnp.zeros(shape) if key is None else jax.random.normal(key, shape)
        h0 = jnp.zeros((p, self.config.hidden))
        memory = jnp.zeros((self.config.attention_span, self.n_neurons, self.config.hidden))
        scan = nn.scan(Cell, variable_broadcast="params", split_rngs={"params": False})
        _, out = scan(self.config, self.n_neurons, name="cell")(
            (h0, memory, jnp.zeros((), jnp.int32)), (graphs, eps))
        return out


def create_tavrnn(config: TAVRNNConfig, n_neurons: int) -> TAVRNN:
    return TAVRNN(config, n_neurons)


def reconstruction_loss(z: jnp.ndarray, adjacency: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Weighted BCE of sigmoid(z z^T) against A + I over the pairs where mask is 1."""
    # z [N, L]; adjacency, mask [N, N]
    logits = z @ z.T
    labels = jnp.maximum(adjacency.astype(jnp.float32), jnp.eye(z.shape[0]))
    pairs = jnp.sum(mask)
    pos = jnp.sum(labels * mask)
    pos_weight = (pairs - pos) / jnp.maximum(pos, 1.0)
    norm = pairs / jnp.maximum(2.0 * (pairs - pos), 1.0)
    bce = pos_weight * labels * nn.softplus(-logits) + (1.0 - labels) * nn.softplus(logits)
    return norm * jnp.sum(bce * mask) / jnp.maximum(pairs, 1.0)


def kl_divergence(mu, std, prior_mu, prior_std) -> jnp.ndarray:
    """KL(N(mu, std) || N(prior_mu, prior_std)) * 0.5 / N, summed over latents, mean over N."""
    n = mu.shape[0]
    kl = (2.0 * jnp.log(prior_std) - 2.0 * jnp.log(std)
          + (std ** 2 + (mu - prior_mu) ** 2) / prior_std ** 2 - 1.0)
    return 0.5 / n * jnp.mean(jnp.sum(kl, axis=-1))


def loss_terms(out: StepOutputs, adjacency: jnp.ndarray, mask: jnp.ndarray):
    """(reconstruction, KL), each summed over time; adjacency, mask [T, N, N]."""
    recon = jax.vmap(reconstruction_loss)(out.z, adjacency, mask)
    kl = jax.vmap(kl_divergence)(out.mu, out.std, out.prior_mu, out.prior_std)
    return jnp.sum(recon), jnp.sum(kl)


def edge_probabilities(mu: jnp.ndarray) -> jnp.ndarray:
    """[T, N, L] embeddings -> [T, N, N] decoded link probabilities."""
    return jax.nn.sigmoid(jnp.einsum("tnl,tml->tnm", mu, mu))
