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
"""

from bgan_jax.bgan.analysis import analyze_all
from bgan_jax.bgan.attention import AttentionWeights, dense_attention, pair_softmax, sparse_attention
from bgan_jax.bgan.baselines import create_mlp, create_variant
from bgan_jax.bgan.config import BGANConfig
from bgan_jax.bgan.losses import (accuracy, classification_loss, mask_node_features,
                                  reconstruction_loss, regression_loss)
from bgan_jax.bgan.masks import (DenseLayout, Pairs, backward_pairs, dense_block_size,
                                 dense_layout, forward_pairs, ganlow_pairs, ganup_pairs,
                                 graph_index, receives, touched, transpose)
from bgan_jax.bgan.model import (BGAN, BMSA, NSA, Block, EdgeAttention, MaskedAttention,
                                 bmsa_heads, cls_index, compact_pairs,
                                 compaction, create_model, mechanism_pairs,
                                 pair_overflow)
from bgan_jax.bgan.train import TrainConfig, load_run, train_and_evaluate
from bgan_jax.runs.checkpoints import CheckpointError, Checkpoints
from bgan_jax.runs.config import ConfigError, LoopConfig, apply_overrides, from_dict
from bgan_jax.runs.loop import TrainingDiverged, train_loop
from bgan_jax.runs.workdir import RunDirError
from bgan_jax.snn.model import SNNConfig, create_snn
from bgan_jax.snn.train import SNNTrainConfig, train_snn
from bgan_jax.tavrnn.model import TAVRNN, TAVRNNConfig, create_tavrnn
from bgan_jax.tavrnn.spikes import WindowConfig, dynamic_graphs, read_spikes
from bgan_jax.tavrnn.train import TemporalConfig, train_temporal

__all__ = [
    "BGAN", "BGANConfig", "BMSA", "NSA", "AttentionWeights", "Block", "DenseLayout",
    "EdgeAttention", "MaskedAttention", "Pairs", "accuracy", "analyze_all", "backward_pairs",
    "bmsa_heads", "classification_loss", "cls_index", "compact_pairs", "mechanism_pairs",
    "compaction", "pair_overflow", "create_mlp", "create_model",
    "create_variant", "dense_attention", "dense_block_size", "dense_layout", "forward_pairs",
    "ganlow_pairs", "ganup_pairs", "graph_index", "mask_node_features", "pair_softmax",
    "receives", "touched", "reconstruction_loss", "regression_loss", "sparse_attention", "transpose",
    "TrainConfig", "load_run", "train_and_evaluate",
    "CheckpointError", "Checkpoints", "ConfigError", "LoopConfig", "RunDirError",
    "TrainingDiverged", "apply_overrides", "from_dict", "train_loop",
    "SNNConfig", "SNNTrainConfig", "create_snn", "train_snn",
    "TAVRNN", "TAVRNNConfig", "TemporalConfig", "WindowConfig", "create_tavrnn",
    "dynamic_graphs", "read_spikes", "train_temporal",
]
