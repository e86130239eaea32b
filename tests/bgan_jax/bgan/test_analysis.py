"""Analysis: attention tables, integrated gradients, planted truth, outputs, analyze.py."""

import dataclasses
import json

import jax
import networkx as nx
import numpy as np
import pytest

from bgan_jax.bgan import analysis as A
from bgan_jax.bgan import data as data_lib
from bgan_jax.bgan.config import BGANConfig
from bgan_jax.bgan.model import create_model
from bgan_jax.bgan.report import write_all
from bnnsim.planted import CASES, LABELS, build_planted, case_of
from graphs import load_cg
from graphs.batching import batch_and_pad
from graphs.schema import NODE_COLUMNS, NODE_GROUPS, NODE_INDEX, NodeKind, decode
from tests.graph_factory import permute_cg, random_cg

CONFIG = BGANConfig(hidden=16, heads=2, num_blocks=2, num_graph_outputs=2, reconstruct=False)


def _params(model, cg):
    return model.init(jax.random.PRNGKey(0), batch_and_pad([cg]))["params"]


MODEL = create_model(CONFIG)
PARAMS = _params(MODEL, random_cg(0))  # parameter shapes do not depend on the graph
_ANALYZERS = {}


def analyse(cg, steps=16, reference=None, model=MODEL, params=PARAMS, name="g", pad_factor=1):
    """One model's analysis; analyzers are cached per (model, steps): one jit each."""
    key = (id(model), steps)
    if key not in _ANALYZERS:
        _ANALYZERS[key] = A.make_analyzer(model.apply, data_lib.task_of("planted"), steps,
                                          CONFIG)
    base = A.kind_baseline(reference or [cg])
    return A.analyze_model(_ANALYZERS[key], params, cg, name, "planted", base, pad_factor)


def test_attention_shares_sum_to_one_per_receiver_kind():
    a = analyse(random_cg(0))
    table = A.concat([a.attention], model=["g"])
    kinds = A.kind_attention(table)
    totals = A.group_sum({**kinds, "share": kinds["share"]},
                         ["block", "mechanism", "head", "receiver_kind"], "share")
    np.testing.assert_allclose(totals["sum"], 1.0, rtol=1e-5)
    edges = A.edge_attention(table)
    per_mech = A.group_sum(edges, ["block", "mechanism", "head"], "share")
    np.testing.assert_allclose(per_mech["sum"], 1.0, rtol=1e-5)
    assert set(table["mechanism"]) == {"ganlow", "ganup", "mask_a", "mask_b"}
    self_rows = table["edge"] < 0
    assert (table["sender"][self_rows] == table["receiver"][self_rows]).all()
    assert (table["sender_kind"][self_rows] == A.SENDER_KIND_NAMES.index("self")).all()


def test_integrated_gradients_are_complete_and_skip_baseline_features():
    cg = random_cg(1)
    kind_onehot = [NODE_INDEX[f"kind_{k.name.lower()}"] for k in NodeKind]
    features = cg.node_features.copy()  # random_cg adds noise to some one-hot entries
    features[:, kind_onehot] = np.eye(len(NodeKind))[cg.node_kind]
    cg = dataclasses.replace(cg, node_features=features)
    a = analyse(cg, steps=64)
    # completeness: the attributions add up to F(x) - F(baseline)
    assert a.completeness_gap < 1e-2  # relative to F(x) - F(baseline)
    # the baseline is each kind's mean: a column constant within a kind gets nothing
    assert np.abs(a.attribution[:, kind_onehot]).max() == 0.0
    same = analyse(cg, steps=64, reference=[cg])  # deterministic
    np.testing.assert_array_equal(a.attribution, same.attribution)


def test_analysis_is_independent_of_node_order_and_padding():
    cg = random_cg(2)
    a = analyse(cg)
    perm, order, _ = permute_cg(cg, 5)
    b = analyse(perm, reference=[cg])
    np.testing.assert_allclose(b.attribution, a.attribution[order], atol=1e-5)
    np.testing.assert_allclose(A.group_shares(b), A.group_shares(a), atol=1e-5)
    np.testing.assert_allclose(b.prediction, a.prediction, atol=1e-6)
    # a bigger padded shape: same numbers
    big = analyse(cg, pad_factor=4)
    np.testing.assert_allclose(big.attribution, a.attribution, atol=1e-5)
    np.testing.assert_allclose(np.sort(big.attention["weight"]), np.sort(a.attention["weight"]),
                               atol=1e-6)


def test_auroc():
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert A.auroc(s, np.array([False, False, True, True])) == 0.75
    assert A.auroc(s, np.array([False, False, False, True])) == 1.0
    assert A.auroc(np.ones(3), np.array([True, False, False])) == 0.5
    assert np.isnan(A.auroc(s, np.zeros(4, bool)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_planted_datasets_carry_exactly_their_planted_value(tmp_path, case):
    c = case_of(case)
    report = build_planted(tmp_path, case, n=8, seed=3, progress=False)
    ok = [r for r in report["networks"] if r["status"] == "ok"]
    assert len(ok) == 8 and sorted(r["labels"]["planted"] for r in ok) == [0] * 4 + [1] * 4
    assert set(report["splits"]) <= {"train", "val", "test"}
    column = NODE_COLUMNS[NODE_INDEX[c.column]]
    for r in ok:
        cg = load_cg(r["npz"])
        truth = cg.meta["planted"]
        assert (truth["kind"], truth["group"]) == (c.kind.name.lower(), c.group)
        nodes = np.array(truth["nodes"])
        assert nodes.size and (cg.node_kind[nodes] == c.kind).all()
        values = decode(column, cg.node_features[nodes, NODE_INDEX[c.column]])
        # the case ranges are in the columns' reference units; a finite spike train's
        # measured rate deviates from the rate it was drawn with
        slack = 0.5 if c.column == "input_rate" else 1e-3
        high = values >= c.high[0] * (1 - slack)
        low = values <= c.low[1] * (1 + slack)
        assert (high ^ low).all(), values  # every planted value is in one of the ranges
        assert (high.sum() > nodes.size / 2) == bool(r["labels"]["planted"])  # majority rule
        assert truth["label"] == LABELS[r["labels"]["planted"]]
    assert c.group in NODE_GROUPS
    with pytest.raises(ValueError, match="unknown planted case"):
        case_of("nope")


def test_outputs_tables_figures_graphml_and_report(tmp_path):
    cg = random_cg(4)
    a, b = analyse(cg), analyse(random_cg(5), name="h")
    summary = write_all([a, b], tmp_path, {"task": "planted", "model": "bgan", "step": 0},
                        [{"name": "g", "status": "ok"}, {"name": "h", "status": "ok"},
                         {"name": "bad.nml", "status": "error", "error": "MalformedXML: x"}])
    for f in ("attribution_groups.csv", "attribution_columns.csv", "components.csv",
              "attention_kinds.csv", "attention_edges.csv", "analysis.json", "report.md",
              "figures/attribution.png", "figures/attention_kinds.png",
              "figures/attention_edges.png", "figures/model_g.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    g = nx.read_graphml(tmp_path / "graphml" / "g.graphml")
    assert g.number_of_nodes() == cg.n_nodes and g.number_of_edges() == cg.n_edges
    edge = next(iter(g.edges(data=True)))[2]
    assert {"kind", "attention_ganlow", "attention_mask_a", "attention_mean"} <= set(edge)
    report = (tmp_path / "report.md").read_text()
    assert "figures/attention_kinds.png" in report and "bad.nml" in report
    assert json.loads((tmp_path / "analysis.json").read_text())["models"] == 2
    assert summary["planted"] is None
    shares = summary["tables"]["attribution_groups"]
    assert abs(sum(r["share_mean"] for r in shares) - 1.0) < 1e-6


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """One small planted case, trained and analysed (the fast planted-truth check: a
    smaller model and budget than the slow test; soma -> neuron -> CLS is one NSA)."""
    from experiments.planted import run_case
    from bgan_jax.bgan.train import TrainConfig
    out = tmp_path_factory.mktemp("planted")
    config = TrainConfig(model=BGANConfig(hidden=32, num_blocks=2, reconstruct=False))
    return out, run_case("soma_diameter", out, networks=64, steps=120, config=config)


def test_read_out_finds_planted_soma_diameter(planted_run):
    _, row = planted_run
    assert row["test_accuracy"] >= 0.9, row
    assert row["ranked_first"] >= 0.9, row
    assert row["auroc_attribution"] >= 0.9, row


def test_analyze_cli_reports_bad_files_and_keeps_going(planted_run, tmp_path, capsys):
    out, _ = planted_run

    from analyze import main
    good = sorted((out / "soma_diameter" / "data" / "nml").glob("*.nml"))[:2]
    bad = tmp_path / "broken.net.nml"
    bad.write_text("<neuroml><network")
    code = main(["--workdir", str(out / "soma_diameter" / "run"), "--nml", *map(str, good),
                 str(bad), "--out", str(tmp_path / "a"), "--no-progress", "--steps", "8"])
    err = capsys.readouterr().err
    assert code == 0 and "broken.net.nml" in err
    summary = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert summary["models"] == 2
    assert [o["status"] for o in summary["outcomes"]].count("error") == 1
    assert main(["--workdir", str(tmp_path / "nothing")]) == 1
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--workdir", str(tmp_path / "empty")]) == 1
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.slow
def test_read_out_finds_every_planted_truth(tmp_path):
    from experiments.planted import passed, run_case
    rows = [run_case(case, tmp_path, networks=160, steps=300) for case in CASES]
    assert all(passed(r) for r in rows), [(r["case"], r["ranked_first"], r["auroc_attribution"])
                                          for r in rows]


def test_untrained_mlp_analysis_has_no_attention_but_attribution():
    from bgan_jax.bgan.baselines import create_mlp
    cg = random_cg(6)
    mlp = create_mlp(CONFIG)
    a = analyse(cg, model=mlp, params=_params(mlp, cg))
    assert len(a.attention["weight"]) == 0 and np.abs(a.attribution).sum() > 0
