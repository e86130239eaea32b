"""TAVRNN: spike-train front end, model invariances, loss, training, CLI and analysis."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import train
import analyze
from bgan_jax.tavrnn import model as T
from bgan_jax.tavrnn import train as temporal
from bnnsim.population import PopulationConfig, save_population, simulate_population
from bgan_jax.tavrnn import spikes as S
from bgan_jax.tavrnn.spikes import SpikeDataError

SMALL = PopulationConfig(n_neurons=24, n_communities=3, n_segments=6, segment_ms=4000.0)
WIN = S.WindowConfig(bin_ms=10.0, window_ms=1000.0, stride_ms=1000.0)


@pytest.fixture(scope="session")
def recording(tmp_path_factory):
    """A small simulated community recording (24 neurons, 24 s), saved as .npz."""
    path = tmp_path_factory.mktemp("rec") / "pop.npz"
    return save_population(simulate_population(SMALL), path)


def toy_trains(n=6, duration=4000.0, seed=0, silent=(5,)):
    rng = np.random.default_rng(seed)
    times = rng.uniform(0, duration, 400)
    ids = rng.integers(0, n, 400)
    keep = ~np.isin(ids, silent)
    return S.from_arrays(times[keep], ids[keep], n, duration)


def stacked(trains, config=WIN, **kw):
    dg = S.dynamic_graphs(trains, config, **kw)
    return dg, jax.tree.map(jnp.asarray, S.stack_graphs(dg.graphs))


# -- front end -------------------------------------------------------------------

def test_silent_neurons_and_empty_windows_give_defined_graphs():
    trains = S.from_arrays([10.0, 20.0, 1500.0], [0, 1, 0], n_neurons=4, duration=3000.0)
    dg = S.dynamic_graphs(trains, WIN)
    assert np.isfinite(dg.features).all()
    assert not dg.adjacency[2].any()  # nothing fires in the last window
    assert not dg.adjacency[:, 3].any()  # neuron 3 never fires
    r = S.correlation(np.zeros((50, 3)))
    assert np.array_equal(r, np.zeros((3, 3)))


def test_functional_adjacency_threshold_and_top_k():
    r = np.array([[0, .9, .1, -.5], [.9, 0, .3, 0], [.1, .3, 0, .25], [-.5, 0, .25, 0]])
    a = S.functional_adjacency(r, threshold=0.2)
    assert a.tolist() == (r >= 0.2).tolist()
    k1 = S.functional_adjacency(r, top_k=1)
    assert np.array_equal(k1, k1.T) and not k1.diagonal().any()
    assert k1[0, 1] and k1[2, 1] and k1[3, 2] and not k1[0, 3]  # r < 0 never chosen


def test_window_graph_layout_history_links_and_hidden_pairs():
    trains = toy_trains()
    hide = np.zeros((4, 6, 6), bool)  # 4 windows of 1 s
    hide[1, 0, 1] = hide[1, 1, 0] = True
    dg = S.dynamic_graphs(trains, WIN, hide=hide)
    shapes = {(g.nodes.shape, g.senders.shape) for g in dg.graphs}
    assert len(shapes) == 1  # one padded shape for every window
    g = dg.graphs[1]
    pairs = set(zip(g.senders[:g.n_edge[0]].tolist(), g.receivers[:g.n_edge[0]].tolist()))
    assert {(i, i + 6) for i in range(6)} <= pairs and {(i + 6, i) for i in range(6)} <= pairs
    assert (0, 1) not in pairs  # hidden from the input ...
    assert dg.features[1, 6:, -1].all() and not dg.features[1, :6, -1].any()  # history flag
    np.testing.assert_array_equal(dg.features[1, 6:12, :-1], dg.features[0, :6, :-1])


@pytest.mark.parametrize("name,text,problem", [
    ("a.csv", "time_ms,neuron\n1.0,0\n-2,1\n", ">= 0"),
    ("b.csv", "when,who\n1,2\n", "names no time column"),
    ("c.csv", "time_ms,neuron\n1.0,zero\n", "bad row"),
    ("d.spikes", "0 0.1 7\n", "expected 2 columns"),
    ("e.xyz", "1,2\n", "unknown spike file type"),
])
def test_bad_spike_files_raise_typed_errors_naming_the_file(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpikeDataError, match=problem) as err:
        S.read_spikes(path)
    assert name in str(err.value)


def test_spike_file_formats_agree(tmp_path):
    times, ids = np.array([1.5, 2.0, 30.25]), np.array([0, 2, 1])
    (tmp_path / "a.csv").write_text("time_ms,neuron\n" + "".join(
        f"{t},{i}\n" for t, i in zip(times, ids)))
    (tmp_path / "b.csv").write_text("".join(f"{t},{i}\n" for t, i in zip(times, ids)))
    (tmp_path / "c.spikes").write_text("".join(f"{i} {t / 1e3}\n" for t, i in zip(times, ids)))
    np.savez(tmp_path / "d.npz", times=times, ids=ids)
    got = [S.read_spikes(tmp_path / f) for f in ("a.csv", "b.csv", "c.spikes", "d.npz")]
    for g in got:
        np.testing.assert_allclose(g.times, [1.5, 2.0, 30.25])
        assert g.ids.tolist() == [0, 2, 1] and g.n_neurons == 3
    with pytest.raises(SpikeDataError, match="shorter than one window"):
        S.dynamic_graphs(got[0], WIN)


# -- model -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy():
    trains = toy_trains(n=6, duration=6000.0)
    dg, g = stacked(trains)
    return trains, dg, g


@pytest.mark.parametrize("variant", T.VARIANTS)
def test_independent_of_padding_and_neuron_order(toy, variant):
    trains, dg, g = toy
    model = T.create_tavrnn(T.TAVRNNConfig(variant=variant, attention_span=3), 6)
    params = model.init(jax.random.key(0), g)
    out = model.apply(params, g)
    _, g_pad = stacked(trains, pad_nodes=40, pad_edges=256)
    out_pad = model.apply(params, g_pad)
    for a, b in zip(out, out_pad):
        np.testing.assert_allclose(a, b, atol=1e-5)
    perm = np.array([3, 0, 5, 1, 4, 2])  # new neuron j is old neuron perm[j]
    inv = np.argsort(perm)
    permuted = S.from_arrays(trains.times, inv[trains.ids], 6, trains.duration)
    _, g_perm = stacked(permuted)
    out_perm = model.apply(params, g_perm)
    np.testing.assert_allclose(out_perm.mu, out.mu[:, perm], atol=1e-5)
    np.testing.assert_allclose(out_perm.attention, out.attention[:, perm], atol=1e-5)
    assert all(np.isfinite(x).all() for x in out)


def test_attention_is_causal_and_normalised(toy):
    trains, dg, g = toy
    model = T.create_tavrnn(T.TAVRNNConfig(attention_span=3), 6)
    params = model.init(jax.random.key(0), g)
    out = model.apply(params, g)
    sums = np.asarray(out.attention.sum(-1))  # [T, N]
    np.testing.assert_allclose(sums[0], 0.0)  # nothing to attend to at t = 0
    np.testing.assert_allclose(sums[1:], 1.0, atol=1e-5)
    assert np.all(np.asarray(out.attention[1, :, 1:]) == 0)  # only 1 step back exists
    changed = g._replace(nodes=g.nodes.at[-1].set(g.nodes[-1] + 1.0))  # the last window only
    out2 = model.apply(params, changed)
    np.testing.assert_allclose(out2.mu[:-1], out.mu[:-1], atol=1e-6)
    assert not np.allclose(out2.mu[-1], out.mu[-1])


def test_vgae_is_static_vgrnn_is_recurrent(toy):
    trains, dg, g = toy
    changed = g._replace(nodes=g.nodes.at[0].set(g.nodes[0] + 1.0))  # the first window only
    for variant, static in (("vgae", True), ("vgrnn", False)):
        model = T.create_tavrnn(T.TAVRNNConfig(variant=variant), 6)
        params = model.init(jax.random.key(0), g)
        a, b = model.apply(params, g).mu, model.apply(params, changed).mu
        assert np.allclose(a[2:], b[2:], atol=1e-6) == static  # window 1 sees window 0's history


def test_reconstruction_loss_matches_the_weighted_bce_formula():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 3)).astype(np.float32)
    adj = np.triu(rng.uniform(size=(5, 5)) < 0.4, 1)
    adj = adj | adj.T
    mask = np.ones((5, 5), np.float32)
    mask[0, 1] = mask[1, 0] = 0
    labels = np.maximum(adj, np.eye(5))
    m, e = mask.sum(), (labels * mask).sum()
    pw, norm = (m - e) / e, m / (2 * (m - e))
    p = 1 / (1 + np.exp(-(z @ z.T)))
    bce = -(pw * labels * np.log(p) + (1 - labels) * np.log(1 - p))
    want = norm * (bce * mask).sum() / m
    np.testing.assert_allclose(T.reconstruction_loss(z, adj, mask), want, rtol=1e-5)
    assert float(T.kl_divergence(z, np.ones_like(z), z, np.ones_like(z))) == pytest.approx(0, abs=1e-6)
    empty = T.reconstruction_loss(z, np.zeros((5, 5), bool), np.zeros((5, 5), np.float32))
    assert np.isfinite(empty)


def test_holdout_pairs_are_balanced_and_hidden_symmetrically():
    rng = np.random.default_rng(0)
    adj = np.triu(rng.uniform(size=(3, 10, 10)) < 0.3, 1)
    adj = adj | adj.transpose(0, 2, 1)
    pairs, labels, hide = temporal.holdout_pairs(adj, 0.2, rng)
    assert labels.sum() == (labels == 0).sum() > 0
    assert np.array_equal(hide, hide.transpose(0, 2, 1))
    assert np.all(adj[pairs[:, 0], pairs[:, 1], pairs[:, 2]] == labels.astype(bool))


# -- training, metrics, CLI ------------------------------------------------------

def fast_config(variant="tavrnn", steps=60):
    return temporal.TemporalConfig(model=T.TAVRNNConfig(variant=variant), num_steps=steps,
                                   log_every=20, checkpoint_every=30)


def test_fast_tavrnn_learns_links_communities_and_regimes(recording, tmp_path):
    table = temporal.train_temporal(fast_config(), recording, tmp_path / "run", progress=False)
    assert table["link_auc"] > 0.85
    assert table["ari"] > 0.8 and table["nmi"] > 0.8
    assert table["regime_accuracy"] > 0.7
    summary = analyze_run(tmp_path / "run")
    assert summary["metrics"] == pytest.approx({k: table[k] for k in summary["metrics"]}, abs=1e-6)


def analyze_run(workdir):
    assert analyze.main(["--workdir", str(workdir)]) == 0
    out = workdir / "analysis"
    for name in ("report.md", "windows.csv", "neurons.csv", "figures/connectivity.png",
                 "figures/embedding_trajectories.png", "figures/attention_over_time.png"):
        assert (out / name).stat().st_size > 0, name
    return json.loads((out / "analysis.json").read_text())


def test_window_regimes_leave_out_straddling_windows():
    truth = temporal.Truth(None, np.array([0, 2, 1]), 4000.0, ("a", "b", "c"))
    starts = np.array([0.0, 2000.0, 3000.0, 4000.0, 8000.0, 11000.0])
    got = temporal.window_regimes(starts, 2000.0, truth)
    assert got.tolist() == [0, 0, -1, 2, 1, -1]


def test_train_py_tavrnn_resume_and_bad_data(recording, tmp_path, capsys):
    work = tmp_path / "w"
    args = ["--model", "vgae", "--data", str(recording), "--workdir", str(work), "--no-progress",
            "--set", "log_every=1", "--set", "checkpoint_every=2", "--set", "num_steps=4"]
    assert train.main(args) == 0
    saved = json.loads((work / "config.json").read_text())
    assert saved["kind"] == "tavrnn" and saved["model"]["variant"] == "vgae"
    assert train.main(args) == 1  # checkpoints exist, no --resume
    assert "--resume" in capsys.readouterr().err
    assert train.main(args[:-2] + ["--set", "num_steps=6", "--resume"]) == 0
    logged = [json.loads(x)["step"] for x in (work / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5, 6]  # went on from step 4
    bad = tmp_path / "bad.csv"
    bad.write_text("when,who\n1,2\n")
    assert train.main(["--model", "tavrnn", "--data", str(bad), "--workdir",
                       str(tmp_path / "x"), "--no-progress"]) == 1
    assert "bad.csv" in capsys.readouterr().err
    assert train.main(["--model", "tavrnn", "--set", "model.hidden=0"]) == 2
    assert train.main(["--model", "tavrnn", "--set", "windows.window_ms=1005"]) == 2
    assert "multiple of bin_ms" in capsys.readouterr().err


@pytest.mark.slow
def test_full_comparison_meets_the_targets(tmp_path):
    """The RESULTS.md setup: 3 seeds x (tavrnn, vgrnn, vgae) on the default recording."""
    from experiments import tavrnn as temporal_eval

    rows = temporal_eval.run(tmp_path, seeds=(0, 1, 2), steps=400)
    for metric, target in temporal_eval.TARGETS.items():
        mean = np.mean([r[metric] for r in rows if r["variant"] == "tavrnn"])
        assert mean > target, (metric, mean)
