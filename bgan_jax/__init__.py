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

The names below (``__all__``) are the public API: models, configs, training and
loading runs, analysis, the data and loss helpers a researcher needs, and the errors.
Everything else (the mechanisms' modules, attention kernels, the run scaffold's
internals) is internal: import it from its module, knowing it may change. Names are
loaded on first use (PEP 562), so ``import bgan_jax.runtime.allocator`` or a command
line's ``--help`` does not pay for jax and flax; type checkers and IDEs see them
through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Dict

_EXPORTS: Dict[str, str] = {  # public name -> the module that defines it
    # models
    "BGAN": "bgan_jax.bgan.model",
    "create_model": "bgan_jax.bgan.model",
    "create_variant": "bgan_jax.bgan.baselines",
    "create_mlp": "bgan_jax.bgan.baselines",
    "TAVRNN": "bgan_jax.tavrnn.model",
    "create_tavrnn": "bgan_jax.tavrnn.model",
    "create_snn": "bgan_jax.snn.model",
    # configs
    "BGANConfig": "bgan_jax.bgan.config",
    "TrainConfig": "bgan_jax.bgan.train",
    "TAVRNNConfig": "bgan_jax.tavrnn.model",
    "TemporalConfig": "bgan_jax.tavrnn.train",
    "WindowConfig": "bgan_jax.tavrnn.spikes",
    "SNNConfig": "bgan_jax.snn.model",
    "SNNTrainConfig": "bgan_jax.snn.train",
    "Backend": "bgan_jax.bgan.config",
    "DatasetStats": "bgan_jax.bgan.config",
    "Compaction": "bgan_jax.bgan.config",
    "MechanismBounds": "bgan_jax.bgan.config",
    "LoopConfig": "bgan_jax.runs.config",
    "apply_overrides": "bgan_jax.runs.config",
    "from_dict": "bgan_jax.runs.config",
    # training and runs
    "train_and_evaluate": "bgan_jax.bgan.train",
    "train_temporal": "bgan_jax.tavrnn.train",
    "train_snn": "bgan_jax.snn.train",
    "load_run": "bgan_jax.bgan.train",
    "Checkpoints": "bgan_jax.runs.checkpoints",
    # analysis
    "analyze_all": "bgan_jax.bgan.analysis",
    "AttentionWeights": "bgan_jax.bgan.attention",
    "mechanism_pairs": "bgan_jax.bgan.masks",
    # data
    "dynamic_graphs": "bgan_jax.tavrnn.spikes",
    "read_spikes": "bgan_jax.tavrnn.spikes",
    "dense_block_size": "bgan_jax.bgan.masks",
    "compaction": "bgan_jax.bgan.compaction",
    "pair_overflow": "bgan_jax.bgan.compaction",
    # losses
    "accuracy": "bgan_jax.bgan.losses",
    "classification_loss": "bgan_jax.bgan.losses",
    "mask_node_features": "bgan_jax.bgan.losses",
    "reconstruction_loss": "bgan_jax.bgan.losses",
    "regression_loss": "bgan_jax.bgan.losses",
    # errors
    "CheckpointError": "bgan_jax.runs.checkpoints",
    "ConfigError": "bgan_jax.runs.config",
    "RunDirError": "bgan_jax.runs.workdir",
    "TrainingDiverged": "bgan_jax.runs.loop",
}

if TYPE_CHECKING:  # what IDEs and type checkers see; the same names as _EXPORTS
    from bgan_jax.bgan.analysis import analyze_all
    from bgan_jax.bgan.attention import AttentionWeights
    from bgan_jax.bgan.baselines import create_mlp, create_variant
    from bgan_jax.bgan.compaction import compaction, pair_overflow
    from bgan_jax.bgan.config import (Backend, BGANConfig, Compaction, DatasetStats,
                                      MechanismBounds)
    from bgan_jax.bgan.losses import (accuracy, classification_loss, mask_node_features,
                                      reconstruction_loss, regression_loss)
    from bgan_jax.bgan.masks import dense_block_size, mechanism_pairs
    from bgan_jax.bgan.model import BGAN, create_model
    from bgan_jax.bgan.train import TrainConfig, load_run, train_and_evaluate
    from bgan_jax.runs.checkpoints import CheckpointError, Checkpoints
    from bgan_jax.runs.config import ConfigError, LoopConfig, apply_overrides, from_dict
    from bgan_jax.runs.loop import TrainingDiverged
    from bgan_jax.runs.workdir import RunDirError
    from bgan_jax.snn.model import SNNConfig, create_snn
    from bgan_jax.snn.train import SNNTrainConfig, train_snn
    from bgan_jax.tavrnn.model import TAVRNN, TAVRNNConfig, create_tavrnn
    from bgan_jax.tavrnn.spikes import WindowConfig, dynamic_graphs, read_spikes
    from bgan_jax.tavrnn.train import TemporalConfig, train_temporal

__all__ = [  # literal, for type checkers; tests/test_layout.py checks it is _EXPORTS
    "BGAN", "create_model", "create_variant", "create_mlp", "TAVRNN", "create_tavrnn",
    "create_snn", "BGANConfig", "TrainConfig", "TAVRNNConfig", "TemporalConfig",
    "WindowConfig", "SNNConfig", "SNNTrainConfig", "Backend", "DatasetStats", "Compaction",
    "MechanismBounds", "LoopConfig", "apply_overrides",
    "from_dict", "train_and_evaluate", "train_temporal", "train_snn", "load_run",
    "Checkpoints", "analyze_all", "AttentionWeights", "mechanism_pairs", "dynamic_graphs",
    "read_spikes", "dense_block_size", "compaction", "pair_overflow", "accuracy",
    "classification_loss", "mask_node_features", "reconstruction_loss", "regression_loss",
    "CheckpointError", "ConfigError", "RunDirError", "TrainingDiverged",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bgan_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})

