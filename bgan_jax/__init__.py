"""bgan-jax: network representation learning on biophysical neural networks, in JAX.

Three models in one house, each a subpackage with the same shape (model, train,
report, entry), sharing one run scaffold (``bgan_jax.runs``: typed configs,
workdirs, checkpoints, the training loop, tables)::

    bgan_jax.bgan     BGAN over NeuroML computational graphs (and its baselines)
    bgan_jax.tavrnn   TAVRNN / VGRNN / VGAE over spike recordings
    bgan_jax.snn      spiking networks (STBP, spike-timing gradient scaling)

Functional API::

    model = bgan_jax.create_model(bgan_jax.BGANConfig(num_graph_outputs=3))
    params = jax.jit(model.init)(jax.random.key(0), batch)
    outputs, attention = model.apply(params, batch, return_attention=True)

    table = bgan_jax.train_and_evaluate(bgan_jax.TrainConfig(num_steps=200), data_dir, workdir)
    run = bgan_jax.load_run(workdir)
    analyses, outcomes = bgan_jax.analyze_all(run, [(name, cg)], reference_cgs)

``batch`` is a padded ``jraph.GraphsTuple`` from ``graphs.batch_and_pad``.
``attention[block][mechanism]`` is an ``AttentionWeights(edges [E, H], self [N, H])``
aligned with the batch's edge arrays (mechanisms: ``ganlow`` (a list, one per
hop round), ``ganup``, ``mask_a``, ``mask_b``). TAVRNN takes window graphs from
``bgan_jax.tavrnn.spikes.dynamic_graphs``.

Names are loaded on first use (PEP 562), so ``import bgan_jax.runs.allocator`` or a
command line's ``--help`` does not pay for jax and flax.
"""

from __future__ import annotations

import importlib
from typing import Dict

_EXPORTS: Dict[str, str] = {  # public name -> the module that defines it
    "BGAN": "bgan_jax.bgan.model",
    "BMSA": "bgan_jax.bgan.model",
    "NSA": "bgan_jax.bgan.model",
    "Block": "bgan_jax.bgan.model",
    "EdgeAttention": "bgan_jax.bgan.model",
    "MaskedAttention": "bgan_jax.bgan.model",
    "bmsa_heads": "bgan_jax.bgan.model",
    "cls_index": "bgan_jax.bgan.model",
    "compact_pairs": "bgan_jax.bgan.compaction",
    "mechanism_pairs": "bgan_jax.bgan.masks",
    "compaction": "bgan_jax.bgan.compaction",
    "pair_overflow": "bgan_jax.bgan.compaction",
    "create_model": "bgan_jax.bgan.model",
    "BGANConfig": "bgan_jax.bgan.config",
    "AttentionWeights": "bgan_jax.bgan.attention",
    "dense_attention": "bgan_jax.bgan.attention",
    "pair_softmax": "bgan_jax.bgan.attention",
    "projected_sparse_attention": "bgan_jax.bgan.attention",
    "sparse_attention": "bgan_jax.bgan.attention",
    "DenseLayout": "bgan_jax.bgan.masks",
    "Pairs": "bgan_jax.bgan.masks",
    "backward_pairs": "bgan_jax.bgan.masks",
    "dense_block_size": "bgan_jax.bgan.masks",
    "dense_layout": "bgan_jax.bgan.masks",
    "forward_pairs": "bgan_jax.bgan.masks",
    "ganlow_pairs": "bgan_jax.bgan.masks",
    "ganup_pairs": "bgan_jax.bgan.masks",
    "graph_index": "bgan_jax.bgan.masks",
    "receives": "bgan_jax.bgan.masks",
    "touched": "bgan_jax.bgan.masks",
    "transpose": "bgan_jax.bgan.masks",
    "accuracy": "bgan_jax.bgan.losses",
    "classification_loss": "bgan_jax.bgan.losses",
    "mask_node_features": "bgan_jax.bgan.losses",
    "reconstruction_loss": "bgan_jax.bgan.losses",
    "regression_loss": "bgan_jax.bgan.losses",
    "analyze_all": "bgan_jax.bgan.analysis",
    "create_mlp": "bgan_jax.bgan.baselines",
    "create_variant": "bgan_jax.bgan.baselines",
    "TrainConfig": "bgan_jax.bgan.train",
    "load_run": "bgan_jax.bgan.train",
    "train_and_evaluate": "bgan_jax.bgan.train",
    "CheckpointError": "bgan_jax.runs.checkpoints",
    "Checkpoints": "bgan_jax.runs.checkpoints",
    "ConfigError": "bgan_jax.runs.config",
    "LoopConfig": "bgan_jax.runs.config",
    "apply_overrides": "bgan_jax.runs.config",
    "from_dict": "bgan_jax.runs.config",
    "RunDirError": "bgan_jax.runs.workdir",
    "TrainingDiverged": "bgan_jax.runs.loop",
    "train_loop": "bgan_jax.runs.loop",
    "SNNConfig": "bgan_jax.snn.model",
    "create_snn": "bgan_jax.snn.model",
    "SNNTrainConfig": "bgan_jax.snn.train",
    "train_snn": "bgan_jax.snn.train",
    "TAVRNN": "bgan_jax.tavrnn.model",
    "TAVRNNConfig": "bgan_jax.tavrnn.model",
    "create_tavrnn": "bgan_jax.tavrnn.model",
    "TemporalConfig": "bgan_jax.tavrnn.train",
    "train_temporal": "bgan_jax.tavrnn.train",
    "WindowConfig": "bgan_jax.tavrnn.spikes",
    "dynamic_graphs": "bgan_jax.tavrnn.spikes",
    "read_spikes": "bgan_jax.tavrnn.spikes",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bgan_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})

