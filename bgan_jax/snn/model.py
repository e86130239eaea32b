"""Spiking networks trained with STBP and local spike-based gradient scaling.

STBP (spatio-temporal backpropagation) with a surrogate spike gradient, and the
gradient scaling of arXiv 2308.00558 (``../shared/seeds/002_*``, second
abstract): a synapse's weight gradient is scaled by the causal relation of its
pre- and post-synaptic spikes.

Neuron (LIF, hard reset, one row per unit, time step t = 0..T-1)::

    u_t = decay * u_{t-1} * (1 - o_{t-1}) + W x_t        membrane
    o_t = H(u_t - threshold)                             spike

H's derivative is replaced by a surrogate: ``rectangular`` 1/a on |u - thr| < a/2
(a = ``surrogate_width``), or ``sigmoid``: k sigma(k (u - thr)) (1 - sigma(...)) with
k = 4 / a. Encoding: ``direct`` (the analog image every step) or ``rate``
(Bernoulli spikes with the pixel intensity as probability). Readout: a
non-spiking dense layer averaged over the T steps gives the logits.

Gradient scaling (``scale_by_spike_timing``, off by default). For a dense
spiking layer with presynaptic activity p_t [B, I] and postsynaptic spikes
o_t [B, O], with traces x_t = lam * x_{t-1} + p_t and y_t = lam * y_{t-1} + o_t::

    C_ij = sum_{t,b} x_t[b, i] * o_t[b, j]          pre at or before post (causal)
    A_ij = sum_{t,b} p_t[b, i] * y_{t-1}[b, j]      post strictly before pre (anti-causal)
    s_ij = 1 + alpha * (C_ij - A_ij) / (C_ij + A_ij)   (1 where C + A = 0)
    grad W_ij <- s_ij * grad W_ij                   in [1 - alpha, 1 + alpha] x grad

Defaults alpha = 0.5, lam = 0.5. Biases, convolution kernels and the readout
(no postsynaptic spikes) keep their gradients.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

SURROGATES = ("rectangular", "sigmoid")
ENCODINGS = ("direct", "rate")


@dataclasses.dataclass(frozen=True)
class SNNConfig:
    """Defaults: one dense hidden layer of 128 LIF units, 8 steps, direct encoding."""

    hidden: Tuple[int, ...] = (128,)
    conv: Tuple[int, ...] = ()
    """Channels of 3x3 convolutional LIF layers before the dense ones (image input)."""
    num_classes: int = 10
    steps: int = 8
    decay: float = 0.5
    threshold: float = 1.0
    surrogate: str = "rectangular"
    surrogate_width: float = 1.0
    encoding: str = "direct"

    def __post_init__(self):
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {self.surrogate!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.steps < 1 or not self.hidden or min(self.hidden + self.conv) < 1:
            raise ValueError(f"need steps >= 1 and at least one hidden layer, got {self}")
        if not 0.0 <= self.decay < 1.0 or self.surrogate_width <= 0:
            raise ValueError(f"need 0 <= decay < 1 and surrogate_width > 0, got {self}")


def make_spike(surrogate: str, width: float):
    """Heaviside forward, surrogate derivative backward (custom_vjp)."""

    @jax.custom_vjp
    def spike(x):
        return (x >= 0).astype(x.dtype)

    def fwd(x):
        return spike(x), x

    def bwd(x, g):
        if surrogate == "rectangular":
            d = (jnp.abs(x) < width / 2).astype(x.dtype) / width
        else:
            k = 4.0 / width
            s = jax.nn.sigmoid(k * x)
            d = k * s * (1.0 - s)
        return (g * d,)

    spike.defvjp(fwd, bwd)
    return spike


class Records(NamedTuple):
    """Per step (stacked over T by the scan)."""

    readout: jnp.ndarray  # [B, C] readout current
    pre: Tuple[jnp.ndarray, ...]  # per dense spiking layer: its input [B, I]
    post: Tuple[jnp.ndarray, ...]  # per dense spiking layer: its spikes [B, O]
    conv: Tuple[jnp.ndarray, ...]  # per conv layer: its spikes [B, H, W, C]


class Step(nn.Module):
    """One time step of the whole network (scanned over T)."""

    config: SNNConfig

    @nn.compact
    def __call__(self, carry, x):
        cfg = self.config
        spike = make_spike(cfg.surrogate, cfg.surrogate_width)
        u_prev, o_prev = carry
        layers = [nn.Conv(c, (3, 3), name=f"conv{i}") for i, c in enumerate(cfg.conv)] + \
            [nn.Dense(w, name=f"dense{i}") for i, w in enumerate(cfg.hidden)]
        us, spikes, inputs = [], [], []
        h = x
        for k, layer in enumerate(layers):
            if k == len(cfg.conv):
                h = h.reshape(h.shape[0], -1)  # conv maps -> dense inputs
            u = cfg.decay * u_prev[k] * (1.0 - o_prev[k]) + layer(h)
            inputs.append(h)
            h = spike(u - cfg.threshold)
            us.append(u)
            spikes.append(h)
        readout = nn.Dense(cfg.num_classes, name="readout")(h)
        c = len(cfg.conv)
        return (tuple(us), tuple(spikes)), Records(readout, tuple(inputs[c:]),
                                                   tuple(spikes[c:]), tuple(spikes[:c]))


def layer_shapes(config: SNNConfig, x_shape) -> list:
    """Membrane shapes of the spiking layers for an input batch of shape x_shape."""
    b = x_shape[0]
    spatial = tuple(x_shape[1:3]) if config.conv else ()
    return [(b,) + spatial + (c,) for c in config.conv] + [(b, h) for h in config.hidden]


class SNN(nn.Module):
    """Input [B, H, W] (or [B, H, W, 1]) in [0, 1] -> (logits [B, C], Records over T)."""

    config: SNNConfig

    @nn.compact
    def __call__(self, x: jnp.ndarray, key: Optional[jax.Array] = None):
        cfg = self.config
        if x.ndim == 3:
            x = x[..., None]  # [B, H, W, 1]
        if not cfg.conv:
            x = x.reshape(x.shape[0], -1)
        if cfg.encoding == "rate":
            if key is None:
                raise ValueError("rate encoding draws spikes: pass a key")
            xs = jax.random.bernoulli(key, jnp.clip(x, 0, 1), (cfg.steps,) + x.shape)
            xs = xs.astype(jnp.float32)
        else:
            xs = jnp.broadcast_to(x, (cfg.steps,) + x.shape)
        zeros = tuple(jnp.zeros(s) for s in layer_shapes(cfg, x.shape))
        scan = nn.scan(Step, variable_broadcast="params", split_rngs={"params": False})
        _, rec = scan(cfg, name="step")((zeros, zeros), xs)
        return rec.readout.mean(axis=0), rec


def spike_counts(rec: Records) -> jnp.ndarray:
    """[B] spikes per sample over all spiking layers and steps."""
    total = sum(jnp.sum(o, axis=tuple(i for i in range(o.ndim) if i != 1))
                for o in rec.post + rec.conv)
    return total


def _trace(x: jnp.ndarray, lam: float) -> jnp.ndarray:
    """[T, ...] -> exponentially filtered trace y_t = lam * y_{t-1} + x_t."""
    def step(y, xt):
        y = lam * y + xt
        return y, y
    return jax.lax.scan(step, jnp.zeros_like(x[0]), x)[1]


def timing_scale(pre: jnp.ndarray, post: jnp.ndarray, alpha: float = 0.5,
                 lam: float = 0.5) -> jnp.ndarray:
    """[T, B, I], [T, B, O] -> [I, O] gradient factors in [1 - alpha, 1 + alpha]."""
    x = _trace(pre, lam)
    y = _trace(post, lam)
    y_before = jnp.concatenate([jnp.zeros_like(y[:1]), y[:-1]])  # y_{t-1}
    causal = jnp.einsum("tbi,tbo->io", x, post)
    anti = jnp.einsum("tbi,tbo->io", pre, y_before)
    total = causal + anti
    return 1.0 + alpha * jnp.where(total > 0, (causal - anti) / jnp.where(total > 0, total, 1.0),
                                   0.0)


def spike_scale_tree(params, rec: Records, config: SNNConfig, alpha: float = 0.5,
                     lam: float = 0.5):
    """A pytree like ``params``: timing factors on the dense spiking kernels, 1 elsewhere."""
    factors = jax.tree.map(jnp.ones_like, params)
    inner = dict(factors["params"]["step"])
    for i in range(len(config.hidden)):
        name = f"dense{i}"
        inner[name] = dict(inner[name], kernel=jax.lax.stop_gradient(
            timing_scale(rec.pre[i], rec.post[i], alpha, lam)))
    return {**factors, "params": {**factors["params"], "step": inner}}


def scale_by_spike_timing() -> optax.GradientTransformationExtraArgs:
    """Multiplies gradients by ``spike_scale`` (a pytree like the updates, from
    ``spike_scale_tree``) passed as an extra argument to ``update``; identity without it."""

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None, *, spike_scale=None, **extra):
        del params, extra
        if spike_scale is None:
            return updates, state
        return jax.tree.map(lambda g, s: g * s, updates, spike_scale), state

    return optax.GradientTransformationExtraArgs(init, update)


def create_snn(config: SNNConfig) -> SNN:
    return SNN(config)


__all__ = ["SNN", "SNNConfig", "create_snn", "make_spike", "scale_by_spike_timing",
                 "spike_counts", "spike_scale_tree", "timing_scale"]
