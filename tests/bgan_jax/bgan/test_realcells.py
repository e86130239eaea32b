"""Real-cell tasks and the ground-truth read-out on a generated set with a known answer
(``realcells``): the simulator is replaced by a known function of the variant factors."""

import dataclasses
import json

import numpy as np
import pytest

from bgan_jax.bgan import data as data_lib
from bgan_jax.bgan import groundtruth, tabular
from bnnsim.ephys import sensitivity
from bnnsim.ephys.targets import TARGET_NAMES, target_vector
from bnnsim.ephys.variants import factor_columns
from tests.bgan_jax.bgan import realcells


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return realcells.write_dataset(tmp_path_factory.mktemp("realcells"))


def _rows(root):
    import json
    r = json.loads((root / "report.json").read_text())
    return r["cells"] + r["variants"]


def test_targets_mask_what_is_undefined():
    y, m = target_vector({"rheobase_nA": 0.1, "x1.5/mean_frequency": 0.0, "sag_ratio1": None,
                          "x1.5/adaptation_index2": float("nan")})
    assert m[TARGET_NAMES.index("log_rheobase")] and y[0] == pytest.approx(-1.0)
    assert not m[TARGET_NAMES.index("log_rate_1.5x")]  # log10 of 0 is undefined, not -inf
    assert not m[TARGET_NAMES.index("sag_ratio")] and not m[TARGET_NAMES.index("adaptation_1.5x")]
    assert np.isfinite(y).all()
    assert not m[TARGET_NAMES.index("log_rate_rest")]  # not spontaneously active
    y, m = target_vector({"rest/mean_frequency": 2.0, "rheobase_nA": None})
    assert m.tolist() == [name == "log_rate_rest" for name in TARGET_NAMES]
    assert y[TARGET_NAMES.index("log_rate_rest")] == pytest.approx(np.log10(2.0))


def test_subthreshold_targets_need_a_quiet_cell():
    """Input resistance and sag measured on a cell that fires at rest are noise: masked;
    the same numbers on a silent cell are targets."""
    passive = {"ohmic_input_resistance": 410.9, "sag_ratio1": 0.55}
    rin, sag = TARGET_NAMES.index("log_input_resistance"), TARGET_NAMES.index("sag_ratio")
    _, m = target_vector(dict(passive, **{"rest/spike_count": 5.0, "rest/mean_frequency": 5.1}))
    assert not m[rin] and not m[sag] and m[TARGET_NAMES.index("log_rate_rest")]
    y, m = target_vector(dict(passive, **{"rest/spike_count": 0.0}))
    assert m[rin] and m[sag] and y[rin] == pytest.approx(np.log10(410.9))
    y, m = target_vector(passive)
    assert m[rin] and m[sag]


def test_measured_sensitivity_ranks_the_known_slopes(dataset):
    """The joint regression over 24 variants recovers the generating slopes (noise-free
    linear truth: exactly), marginal slopes their order of size; factor_columns maps
    factors to where a CG shows them."""
    sens = sensitivity.cell_sensitivities(_rows(dataset))
    assert sorted(sens) == [f"gen__cell{c}" for c in range(4)]
    s = sens["gen__cell0"]
    t = TARGET_NAMES.index("log_rheobase")
    est = {k: s.slope[i, t] for i, k in enumerate(s.keys)}
    assert s.joint[t]
    for k, true in realcells.RHEOBASE_SLOPE.items():
        assert est[k] == pytest.approx(true, abs=1e-6)
    _, x, y, m = sensitivity.design([r for r in _rows(dataset)
                                     if (r["variant_of"] or r["name"]) == "gen__cell0"])
    marginal, _ = sensitivity.marginal_slopes(x, y, m)
    assert np.argmin(marginal[:, t]) == s.keys.index("soma_group/naChan")
    assert not np.isfinite(s.slope[:, TARGET_NAMES.index("sag_ratio")]).any()  # undefined
    cols = factor_columns(_rows(dataset)[0]["file"], "cell0")
    assert cols["soma_group/naChan"] == ("soma_group", "na")
    assert cols["dend_group/leakChan"] == ("dend_group", "leak")
    pairs = sensitivity.column_sensitivity(s, cols, t)
    assert max(pairs, key=pairs.get) == ("soma_group", "na")


def test_loader_tasks_splits_and_unlabelled(dataset):
    ef = data_lib.load_splits(dataset, "efeatures")
    assert [len(ef[s]) for s in ("train", "val", "test", "ood")] == [50, 25, 25, 0]
    e = ef["train"][0]
    assert e.graph_y.shape == (len(TARGET_NAMES),) and e.graph_mask.sum() == 2
    mean, std = data_lib.target_scale(ef["train"], data_lib.task_of("efeatures"))
    assert std[0] > 0 and mean[TARGET_NAMES.index("sag_ratio")] == 0.0  # never known: (0, 1)
    batch = data_lib.make_batch(ef["train"][:3], 4, (mean, std))
    assert batch.globals["y"].shape == (4, len(TARGET_NAMES))
    assert batch.globals["y_mask"][:3].sum() == 6 and not batch.globals["y_mask"][3].any()
    dt = data_lib.load_splits(dataset, "dendrite_type")
    assert {int(x.graph_y[0]) for x in dt["train"]} == {0, 1}  # aspiny cell0, spiny cell1


def test_efeatures_bgan_learns_and_reads_out_the_known_sensitivity(dataset, tmp_path):
    """BGAN on the efeatures task: R^2 on the held-out cells' variants, and its
    attribution ranks (segment group, species) like the known truth."""
    from bgan_jax.bgan.train import TrainConfig, load_run, train_and_evaluate

    base = TrainConfig()
    config = dataclasses.replace(base, task="efeatures", num_steps=300, eval_every=50,
                                 checkpoint_every=300, batch_size=8,
                                 model=base.model.replace(hidden=32, num_blocks=2))
    run_dir = tmp_path / "efeatures-bgan-s0"
    table = train_and_evaluate(config, dataset, run_dir, progress=False)
    for split in ("val", "test"):
        assert table["splits"][split]["r2/log_rheobase"] >= 0.6, table["splits"][split]
    from experiments.cells import with_parts
    row = {"task": "efeatures", "variant": "bgan", "seed": 0, "splits": dict(table["splits"])}
    with_parts([row], tmp_path, dataset)  # OUT/efeatures-bgan-s0 is the run below
    parts, test = row["splits"], table["splits"]["test"]  # the held-out cell, its variants
    assert parts["test_cells"]["count"] + parts["test_variants"]["count"] == test["count"]
    assert parts["test_variants"]["r2/log_rheobase"] >= 0.6, parts
    assert json.loads((tmp_path / "results.json").read_text())[0]["splits"].keys() >= \
        {"test_cells", "test_variants"}  # kept
    skipped = []
    rows = groundtruth.readout(load_run(run_dir), dataset, targets=("log_rheobase",),
                               steps=8, progress=False, skipped=skipped)
    assert len(rows) == 4 and all(r["pairs"] == 5 for r in rows) and skipped == []
    assert all(r["variants"] > 0 and r["variants_skipped"] == 0 for r in rows)
    summary = groundtruth.summary(rows)["log_rheobase"]
    assert summary["median_spearman"] >= 0.7, rows
    assert summary["top_match"] >= 0.75  # soma Na: the largest effect
    assert summary["within_cell_r"] >= 0.7  # it predicts how the variants move rheobase
    # the doubling read-out: the model's own change per doubling ranks the pairs too
    assert all(len(r["perturbation"]) == r["pairs"] for r in rows)
    assert summary["perturbation_median_spearman"] >= 0.7, [r["perturbation"] for r in rows]
    assert summary["perturbation_top_match"] >= 0.75
    assert summary["ig_vs_doubling_median_spearman"] >= 0.7  # both read the same model
    from experiments.cells import readout_markdown, readout_report
    md, report = readout_markdown(rows, skipped), readout_report(rows)
    assert f"| log_rheobase | 4/4 | {summary['median_spearman']:.3f} / " \
           f"{summary['perturbation_median_spearman']:.3f} |" in md
    assert f"| {summary['ig_vs_doubling_median_spearman']:.3f} |" in md
    assert md.count("| gen__cell") == 4 and "soma_group/na" in md
    assert report.count("Doubling each density of the source cell") == 4
    from experiments.cell_figures import readout_figure
    png = readout_figure(rows[0], dataset, tmp_path / "fig.png")
    assert png.stat().st_size > 10_000
    assert all(len(r["model_change"]) == r["variants"] for r in rows)


def test_tabular_baseline_scores_like_the_models(dataset):
    task = data_lib.task_of("efeatures")
    splits = data_lib.load_splits(dataset, "efeatures")
    out = tabular.fit_predict(task, splits["train"], splits)
    assert out["train"]["r2/log_rheobase"] > 0.8
    assert set(out["test"]) >= {"r2", "loss", "count", "r2/log_rate_1.5x"}
    cls = tabular.fit_predict(data_lib.task_of("dendrite_type"),
                              data_lib.load_splits(dataset, "dendrite_type")["train"],
                              {"train": data_lib.load_splits(dataset, "dendrite_type")["train"]})
    assert cls["train"]["balanced_accuracy"] == 1.0


def test_held_out_parts_split_test_into_source_cells_and_variants(dataset, tmp_path, capsys):
    from experiments.cells import held_out_parts, run_tabular, with_parts

    splits = data_lib.load_splits(dataset, "efeatures")
    parts = held_out_parts(dataset, splits)
    assert [len(parts[k]) for k in ("test_cells", "test_variants", "test_variants_same_regime")
            ] == [1, 24, 24]
    assert {e.name for e in parts["test_cells"]} == {e.name for e in splits["test"]} - \
        {e.name for e in parts["test_variants"]}
    # same regime: each variant scored only on what its source cell defines
    rate = TARGET_NAMES.index("log_rate_1.5x")
    (cell,) = parts["test_cells"]
    no_rate = dataclasses.replace(cell, graph_mask=cell.graph_mask & (np.arange(len(TARGET_NAMES)) != rate))
    masked = held_out_parts(dataset, {"test": [no_rate] + parts["test_variants"]})
    assert all(e.graph_mask[rate] for e in masked["test_variants"])  # as measured
    same = masked["test_variants_same_regime"]
    assert len(same) == 24 and not any(e.graph_mask[rate] for e in same)
    assert all(e.graph_mask[TARGET_NAMES.index("log_rheobase")] for e in same)
    assert held_out_parts(dataset, {"test": parts["test_cells"]}) == {}  # no variants: no parts
    gbm = run_tabular(dataset, "efeatures", seed=0)["splits"]
    assert gbm["test_variants"]["count"] + gbm["test_cells"]["count"] == gbm["test"]["count"]
    lost = {"task": "efeatures", "variant": "bgan", "seed": 9, "splits": {}}  # no run dir
    assert with_parts([lost], tmp_path, dataset) == [lost] and lost["splits"] == {}
    assert "efeatures-bgan-s9: not scored on test_cells, test_variants, test_variants_same_regime" in capsys.readouterr().err


def test_tabular_target_known_where_a_column_is_not():
    """A target defined for few cells (the spontaneous rate) whose rows leave a column
    all NaN (scikit-learn cannot bin it) is still fitted, and predicts on full rows."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    x = np.column_stack([np.arange(8.0), np.full(8, np.nan), np.r_[np.full(4, np.nan),
                                                                     np.arange(4.0)]])
    predict = tabular._fit(HistGradientBoostingRegressor(min_samples_leaf=1), x[:4],
                           np.arange(4.0))
    assert np.all(np.isfinite(predict(x)))


def test_spearman_and_score_edge_cases():
    assert np.isnan(groundtruth.spearman(np.ones(3), np.arange(3.0)))  # constant side
    s = groundtruth.score(np.array([3.0, 2.0, 1.0]), np.array([0.9, 0.5, 0.1]))
    assert s["spearman"] == pytest.approx(1.0) and s["top_match"]


def test_run_grid_runs_only_what_is_missing(tmp_path):
    from experiments.grid import run_grid

    calls = []

    def run(task, variant, seed):
        calls.append((task, variant, seed))
        return {"task": task, "variant": variant, "seed": seed, "metric": "r2", "steps": 1,
                "splits": {"test": {"r2": 0.5, "count": 1}}}

    run_grid(tmp_path, ["efeatures"], ["bgan", "gbm"], [0], run)
    rows = run_grid(tmp_path, ["efeatures"], ["bgan", "gbm"], [0, 1], run)
    assert calls == [("efeatures", "bgan", 0), ("efeatures", "gbm", 0),
                     ("efeatures", "bgan", 1), ("efeatures", "gbm", 1)]
    assert len(rows) == 4 and (tmp_path / "results.md").is_file()


def test_run_grid_reports_a_failed_run_and_goes_on(tmp_path):
    from experiments.grid import run_grid

    def run(task, variant, seed):
        if variant == "bgan" and seed == 0:
            raise FloatingPointError("step 2: loss is not finite")
        return {"task": task, "variant": variant, "seed": seed, "metric": "r2", "steps": 1,
                "splits": {"test": {"r2": 0.5, "count": 1}}}

    rows = run_grid(tmp_path, ["efeatures"], ["bgan", "gbm"], [0, 1], run)
    assert [("error" in r) for r in rows] == [True, False, False, False]
    text = (tmp_path / "results.md").read_text()
    assert "efeatures bgan seed 0: FloatingPointError: step 2: loss is not finite" in text
    again = run_grid(tmp_path, ["efeatures"], ["bgan", "gbm"], [0, 1],
                     lambda t, v, s: dict(run(t, v, s + 1), seed=s))  # the failed one again
    assert len(again) == 4 and not any("error" in r for r in again)


def test_readout_says_why_a_cell_is_not_scored(dataset):
    """A cell whose variants all have another graph, or with too few measured pairs, is
    not scored, and the row says why (batch jobs report every item)."""
    from graphs import load_cg
    rows = _rows(dataset)
    sens = sensitivity.cell_sensitivities(rows)
    source = next(r for r in rows if r["name"] == "gen__cell0")
    load = lambda r: (r, load_cg(dataset / "graphs" / r["npz"].split("/")[-1]))  # noqa: E731
    src = load(source)
    other = load(next(r for r in rows if r["variant_of"] is None and r["name"] != "gen__cell0"))
    smaller = dataclasses.replace(other[1], node_kind=other[1].node_kind[:1])
    assert smaller.n_nodes != src[1].n_nodes
    t = TARGET_NAMES.index("log_rheobase")
    row = groundtruth.cell_readout(None, None, src, [(other[0], smaller)], sens["gen__cell0"], t)
    assert row == {"cell": "gen__cell0", "target": "log_rheobase",
                   "skipped": "none of its 1 variants has the source cell's graph"}
    sag = TARGET_NAMES.index("sag_ratio")  # never defined: no measured pair
    row = groundtruth.cell_readout(None, None, src, [], sens["gen__cell0"], sag)
    assert row["skipped"].startswith("the target is not defined for this cell")


def test_within_cell_r_pools_variants_and_skips_undefined():
    rows = [{"model_change": [1.0, 2.0], "measured_change": [0.1, None]},
            {"model_change": [3.0, 4.0], "measured_change": [0.3, 0.4]}]
    assert groundtruth.within_cell_r(rows) == pytest.approx(1.0)
    assert np.isnan(groundtruth.within_cell_r(rows[:1]))  # one defined variant


def test_doubling_read_out_doubles_one_density_and_measures_the_change(dataset):
    """``doubled`` doubles g_<species> in mS/cm^2 on the group's nodes only; the doubling
    read-out is |prediction(doubled) - prediction(source)| per pair, from one batch."""
    from graphs import load_cg
    from graphs.schema import NODE_COLUMNS, NODE_INDEX, decode

    source = next(r for r in _rows(dataset) if r["name"] == "gen__cell0")
    cg = load_cg(dataset / "graphs" / source["npz"].split("/")[-1])
    groups = groundtruth._groups(cg, source)
    col = NODE_INDEX["g_na"]
    soma = np.asarray(groups["soma_group"])
    x = groundtruth.doubled(cg.node_features, soma, "na")
    assert decode(NODE_COLUMNS[col], cg.node_features[soma, col]).max() > 0
    np.testing.assert_allclose(decode(NODE_COLUMNS[col], x[soma, col]),
                               2 * decode(NODE_COLUMNS[col], cg.node_features[soma, col]),
                               rtol=1e-6)
    rest = np.ones(cg.n_nodes, bool)
    rest[soma] = False
    assert np.array_equal(np.delete(x, col, 1), np.delete(cg.node_features, col, 1))
    assert np.array_equal(x[rest], cg.node_features[rest])

    def predict(params, graph):  # a known "model": 3 * summed encoded g_na of each graph
        feats = graph.nodes["features"][:, col] * graph.nodes["valid"]
        g = np.repeat(np.arange(len(graph.n_node)), graph.n_node)
        return 3.0 * np.bincount(g, feats, minlength=len(graph.n_node))

    pairs = [("soma_group", "na"), ("dend_group", "leak")]
    got = groundtruth.perturbation_sensitivity(predict, None, cg, groups, pairs)
    want = 3.0 * (x[soma, col] - cg.node_features[soma, col]).sum()
    np.testing.assert_allclose(got, [want, 0.0], rtol=1e-5)


def test_compilation_cache_option_sets_jax_config(tmp_path):
    import jax

    from experiments.grid import use_compilation_cache
    before = (jax.config.jax_compilation_cache_dir,
              jax.config.jax_persistent_cache_min_compile_time_secs)
    try:
        use_compilation_cache(None)
        assert jax.config.jax_compilation_cache_dir == before[0]
        use_compilation_cache(str(tmp_path))
        assert jax.config.jax_compilation_cache_dir == str(tmp_path)
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])


def test_train_subset_keeps_a_fraction_of_the_train_cells_with_their_variants(dataset, tmp_path):
    from experiments.cells import train_subset

    full = data_lib.load_splits(dataset, "efeatures")
    half = data_lib.load_splits(train_subset(dataset, tmp_path / "half", 0.5), "efeatures")
    cell = {e.name.split("__v")[0] for e in half["train"]}
    assert len(cell) == 1 and len(half["train"]) == 25  # one of two cells, its 24 variants
    assert {e.name for e in half["train"]} < {e.name for e in full["train"]}
    for split in ("val", "test"):
        assert [e.name for e in half[split]] == [e.name for e in full[split]]
    again = data_lib.load_splits(train_subset(dataset, tmp_path / "half", 0.5), "efeatures")
    assert [e.name for e in again["train"]] == [e.name for e in half["train"]]  # seeded
    whole = data_lib.load_splits(train_subset(dataset, tmp_path / "all", 1.0), "efeatures")
    assert len(whole["train"]) == len(full["train"])
    with pytest.raises(ValueError, match="fraction"):
        train_subset(dataset, tmp_path / "none", 0.0)


# -- the within-family difference loss (TrainConfig.variant_pair_weight) ---------------------

def test_family_pair_terms_score_differences_within_a_family_only():
    from bgan_jax.bgan.losses import family_pair_terms

    y = np.array([[0.0, 1.0], [1.0, 1.0], [5.0, 0.0], [9.0, 9.0]], np.float32)  # [G, T]
    where = np.array([[1, 1], [1, 1], [1, 0], [1, 1]], bool)
    family = np.array([0, 0, 0, 0], np.int32)  # the last graph is padding (not valid)
    valid = np.array([True, True, True, False])
    # a prediction off by a constant has every difference right
    total, n = family_pair_terms(y + 3.0, y, where, family, valid)
    assert float(total) == 0.0 and int(n) == 3 + 1  # 3 pairs on target 0, 1 on target 1
    pred = y.copy()
    pred[1, 0] += 2.0  # graph 1 off by 2: its two pairs on target 0 each err by 2
    total, n = family_pair_terms(pred, y, where, family, valid)
    assert float(total) == pytest.approx(8.0) and int(n) == 4
    other = np.array([0, 1, 1, 1], np.int32)  # graph 1 alone with graph 2: one pair
    total, n = family_pair_terms(pred, y, where, other, valid)
    assert float(total) == pytest.approx(4.0) and int(n) == 1
    order = np.array([2, 0, 1, 3])  # the graphs' order does not matter
    again = family_pair_terms(pred[order], y[order], where[order], other[order], valid[order])
    assert float(again[0]) == pytest.approx(4.0) and int(again[1]) == 1
    none = family_pair_terms(pred, y, np.zeros_like(where), family, valid)
    assert float(none[0]) == 0.0 and int(none[1]) == 0 and np.isfinite(float(none[0]))


def test_family_batches_keep_a_cell_with_its_variants(dataset):
    train = data_lib.load_splits(dataset, "efeatures")["train"]
    assert {e.family for e in train} == {"gen__cell0", "gen__cell1"}
    plain = data_lib.epoch_plan(train, 5, seed=0, epoch=1)
    plan = data_lib.epoch_plan(train, 5, seed=0, epoch=1, families=True)
    assert len(plan) == len(plain)  # the same steps per epoch
    order = [i for _, groups in plan for g in groups for i in g]
    assert sorted(order) == list(range(len(train)))

    def mixed(steps):  # steps holding graphs of both families
        return sum(len({train[i].family for g in groups for i in g}) > 1 for _, groups in steps)

    assert mixed(plan) <= 1 < mixed(plain)  # one step straddles the two families at most
    again = data_lib.epoch_plan(train, 5, seed=0, epoch=1, families=True)  # seeded
    assert [[g.tolist() for g in gs] for _, gs in again] == [[g.tolist() for g in gs]
                                                             for _, gs in plan]
    batches = data_lib.batches(train, 5, seed=0, epoch=1, families=True)
    for (_, (group,)), (batch,) in zip(plan, batches):  # ids: equal exactly within a family
        ids = batch.globals["family"][batch.globals["valid"]].tolist()
        fams = [train[i].family for i in group]
        assert len(ids) == len(fams) and all((a == b) == (f == g) for a, f in zip(ids, fams)
                                             for b, g in zip(ids, fams))


def test_training_with_variant_pair_weight_adds_the_difference_loss(dataset, tmp_path):
    from bgan_jax.bgan.train import TrainConfig, train_and_evaluate

    base = TrainConfig()
    with pytest.raises(ValueError, match="graph regression"):
        TrainConfig(task="etype", variant_pair_weight=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        TrainConfig(task="efeatures", variant_pair_weight=-1.0)
    config = dataclasses.replace(base, task="efeatures", num_steps=60, eval_every=60,
                                 checkpoint_every=60, batch_size=8, variant_pair_weight=1.0,
                                 model=base.model.replace(hidden=16, num_blocks=1))
    table = train_and_evaluate(config, dataset, tmp_path / "run", progress=False)
    assert np.isfinite(table["splits"]["test"]["loss"])
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
              .splitlines()]
    assert all(np.isfinite(e["loss"]) for e in logged if "loss" in e)
    train_lines = [e for e in logged if "grad_norm" in e]
    assert train_lines and all(np.isfinite(e["pair_loss"]) and e["pair_loss"] > 0
                               for e in train_lines)  # the batches hold pairs


def test_grid_overrides_reach_every_run_and_bad_ones_stop_before_any(dataset, tmp_path):
    from experiments import cells
    from experiments.grid import run_dir, run_one
    from bgan_jax.runs.config import ConfigError

    run_one(dataset, tmp_path, "efeatures", "mlp", 0, steps=4,
            overrides=["batch_size=4", "model.hidden=8"])
    saved = json.loads((run_dir(tmp_path, "efeatures", "mlp", 0) / "config.json").read_text())
    assert saved["batch_size"] == 4 and saved["model"]["hidden"] == 8
    with pytest.raises(ConfigError, match="graph regression"):
        cells.main(["--data", str(dataset), "--out", str(tmp_path / "bad"), "--tasks", "etype",
                    "--variants", "bgan", "--set", "variant_pair_weight=1.0"])
    assert not (tmp_path / "bad" / "results.json").exists()
