"""BGANConfig.log_densities: channel densities as log10, a doubling the same step for
every channel, in the model and in the feature statistics alike."""

import jax
import jax.numpy as jnp
import numpy as np

from bgan_jax import BGANConfig, DatasetStats, create_model
from bgan_jax.bgan import inputs
from bgan_jax.bgan.data import Example, feature_stats
from bgan_jax.bgan.model import node_inputs
from graphs import batch_and_pad, convert_file
from graphs.examples import bundled_examples_dir
from graphs.schema import NODE_COLUMNS, NODE_INDEX, encode_column

G_NA, G_LEAK = NODE_INDEX["g_na"], NODE_INDEX["g_leak"]


def encoded(density_ms_cm2):
    return encode_column(NODE_COLUMNS[G_NA], np.asarray(density_ms_cm2))


def test_a_doubling_is_one_step_for_every_channel_and_absent_is_finite():
    x = np.zeros((3, len(NODE_COLUMNS)))
    x[:, G_NA] = encoded([50.0, 100.0, 0.0])  # Na doubled, then absent
    x[:, G_LEAK] = encoded([0.01, 0.02, 0.0])  # leak doubled: 0.01 in the schema's encoding
    x[:, NODE_INDEX["length"]] = 3.0  # not a density: unchanged
    y = inputs.log_densities(x)
    assert abs(x[1, G_LEAK] - x[0, G_LEAK]) < 0.011  # what the schema's encoding shows
    for j in (G_NA, G_LEAK):
        assert abs(y[1, j] - y[0, j] - np.log10(2)) < 0.01
        assert y[2, j] == np.log10(inputs.DENSITY_FLOOR)
    assert np.all(y[:, NODE_INDEX["length"]] == 3.0)
    assert inputs.DENSITY_COLUMNS.sum() == 6  # g_na, g_k, g_ca, g_h, g_leak, g_other
    np.testing.assert_allclose(np.asarray(inputs.log_densities(jnp.asarray(x, jnp.float32),
                                                                jnp)), y, rtol=1e-5, atol=1e-5)


def test_statistics_are_of_what_the_model_sees_and_the_model_runs():
    cgs = [convert_file(p) for p in sorted(bundled_examples_dir().glob("*.nml"))[:6]]
    examples = [Example(cg, np.zeros(cg.n_nodes, np.float32), np.zeros(cg.n_nodes, bool),
                        np.zeros(1, np.float32), np.zeros(1, bool), str(i))
                for i, cg in enumerate(cgs)]
    mean, std = feature_stats(examples, log_densities=True)
    x = np.concatenate([cg.node_features for cg in cgs])
    known = np.concatenate([cg.node_feature_mask for cg in cgs]) > 0
    seen = inputs.log_densities(x)
    j = int(np.flatnonzero(inputs.DENSITY_COLUMNS & (known.sum(0) > 1))[0])
    np.testing.assert_allclose(mean[j], seen[known[:, j], j].mean(), rtol=1e-5, atol=1e-6)
    config = BGANConfig(hidden=16, heads=2, num_blocks=1, log_densities=True)
    stats = DatasetStats(feature_shift=tuple(map(float, mean)),
                         feature_scale=tuple(map(float, std)))
    batch = batch_and_pad(cgs)
    standardised = np.asarray(node_inputs(batch.nodes, config, stats))[:, :len(NODE_COLUMNS)]
    real = np.asarray(batch.nodes["valid"])
    assert np.isfinite(standardised).all()
    assert abs(standardised[real][np.asarray(batch.nodes["feature_mask"])[real][:, j] > 0,
                                  j].mean()) < 1e-4  # standardised on the same inputs
    model = create_model(config, stats)
    params = jax.jit(model.init)(jax.random.key(0), batch)
    out = jax.jit(model.apply)(params, batch)
    assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(out))
