"""Write an analysis out: CSV + JSON tables, PNG figures, GraphML graphs, report.md.

Every file is written from the numpy tables of ``bgan_jax.bgan.analysis``; figures use
matplotlib's Agg backend (no display needed) and GraphML goes through networkx,
so the graphs open in Gephi, Cytoscape or ``networkx.read_graphml``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

from bgan_jax.bgan import analysis as A  # noqa: E402
from graphs.schema import FEATURE_GROUPS, NODE_COLUMNS, decode  # noqa: E402

MECHANISM_TITLES = {"ganlow": "GANlow (inside a neuron)", "ganup": "GANup (between neurons)",
                    "mask_a": "MaskA (forward signal flow)", "mask_b": "MaskB (backward flow)"}
DRAW_MAX_NODES = 80  # models larger than this get no graph drawing (unreadable)


def _plain(v):
    if isinstance(v, (np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    return str(v)


def table_rows(table: A.Columns) -> List[Dict]:
    cols = list(table)
    n = len(table[cols[0]]) if cols else 0
    return [{c: _plain(table[c][i]) for c in cols} for i in range(n)]


def write_csv(path: Path, table: A.Columns) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(table))
        w.writerows([list(r.values()) for r in table_rows(table)])


def mean_over_heads(table: A.Columns, keys: Sequence[str]) -> A.Columns:
    """Average a per-head table (``share``) over heads, per ``keys``."""
    g = A.group_sum(table, keys, "share")
    return {**{k: g[k] for k in keys}, "share": g["sum"] / np.maximum(g["count"], 1)}


# -- figures ------------------------------------------------------------------------

def _heatmap(ax, matrix, rows, cols, title, cbar_label, fig, fmt="{:.2f}", vmax=None):
    im = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=vmax or max(float(np.nanmax(matrix)), 1e-9),
                   aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title, fontsize=10)
    if matrix.size <= 120:
        for (i, j), v in np.ndenumerate(matrix):
            if np.isfinite(v) and v > 0:
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="white" if v < 0.6 * (vmax or np.nanmax(matrix)) else "black")
    fig.colorbar(im, ax=ax, label=cbar_label, fraction=0.046, pad=0.04)


def plot_kind_attention(kinds: A.Columns, path: Path) -> None:
    """Rows: blocks; columns: mechanisms; each a receiver x sender kind share map."""
    t = mean_over_heads(kinds, ["block", "mechanism", "receiver_kind", "sender_kind"])
    blocks = sorted(set(t["block"].astype(int)))
    mechs = [m for m in MECHANISM_TITLES if m in set(t["mechanism"])] + \
        sorted(set(t["mechanism"]) - set(MECHANISM_TITLES))
    rows = sorted(set(t["receiver_kind"].astype(int)))
    cols = sorted(set(t["sender_kind"].astype(int)))
    row_names, col_names = [A.KIND_NAMES[k] for k in rows], [A.SENDER_KIND_NAMES[k] for k in cols]
    fig, axes = plt.subplots(len(blocks), len(mechs), squeeze=False,
                             figsize=(3.8 * len(mechs), 3.3 * len(blocks)))
    for bi, b in enumerate(blocks):
        for mi, m in enumerate(mechs):
            mat = np.full((len(rows), len(cols)), np.nan)
            sel = (t["block"].astype(int) == b) & (t["mechanism"] == m)
            for r, s, v in zip(t["receiver_kind"][sel], t["sender_kind"][sel], t["share"][sel]):
                mat[rows.index(int(r)), cols.index(int(s))] = v
            ax = axes[bi, mi]
            _heatmap(ax, mat, row_names, col_names,
                     f"block {b + 1} - {MECHANISM_TITLES.get(m, m)}",
                     "share of attention", fig, vmax=1.0)
            ax.set_xlabel("sender (attended) kind")
            ax.set_ylabel("receiver kind")
    fig.suptitle("Where each kind of node looks: share of its attention per sender kind "
                 "(mean over heads and models)", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_edge_attention(edges: A.Columns, path: Path) -> None:
    t = mean_over_heads(edges, ["block", "mechanism", "edge_kind"])
    rows = sorted({(int(b), str(m)) for b, m in zip(t["block"], t["mechanism"])})
    used = sorted(set(t["edge_kind"].astype(int)))
    mat = np.full((len(rows), len(used)), np.nan)
    for b, m, e, v in zip(t["block"], t["mechanism"], t["edge_kind"], t["share"]):
        mat[rows.index((int(b), str(m))), used.index(int(e))] = v
    fig, ax = plt.subplots(figsize=(2 + 1.1 * len(used), 1.5 + 0.4 * len(rows)))
    _heatmap(ax, mat, [f"block {b + 1} {m}" for b, m in rows], [A.EDGE_KINDS[e] for e in used],
             "Share of attention carried by each edge kind", "share of attention", fig, vmax=1.0)
    ax.set_xlabel("edge kind (self = a node attending to itself)")
    ax.set_ylabel("block and mechanism")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_attribution(analyses: Sequence[A.ModelAnalysis], path: Path) -> None:
    shares = np.mean([A.group_shares(a) for a in analyses], 0)  # [K, G]
    keep = shares.sum(1) > 0
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.5 * keep.sum()))
    _heatmap(ax, shares[keep], [k for k, u in zip(A.KIND_NAMES, keep) if u], list(FEATURE_GROUPS),
             "Which features drive the output: share of |integrated gradients|",
             "share of attribution", fig)
    ax.set_xlabel("feature group")
    ax.set_ylabel("node kind")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


KIND_COLOURS = {"cls": "#7f7f7f", "neuron": "#d62728", "soma": "#ff7f0e", "dendrite": "#2ca02c",
                "axon": "#9467bd", "synapse": "#1f77b4", "input": "#e377c2"}


def plot_model(a: A.ModelAnalysis, graph: nx.MultiDiGraph, path: Path) -> None:
    """Nodes coloured by kind, sized by attribution; edges as wide as their attention."""
    pos = nx.spring_layout(graph.to_undirected(), seed=0)
    score = A.node_scores(a)
    size = 40 + 400 * score / max(score.max(), 1e-30)
    fig, ax = plt.subplots(figsize=(8, 7))
    att = np.array([graph.edges[e].get("attention_mean", 0.0) for e in graph.edges])
    nx.draw_networkx_edges(graph, pos, ax=ax, width=0.3 + 4 * att / max(att.max(), 1e-30),
                           alpha=0.6, arrowsize=6, edge_color="#444444")
    nodes = list(graph.nodes)
    nx.draw_networkx_nodes(graph, pos, ax=ax, nodelist=nodes, node_size=size[nodes],
                           node_color=[KIND_COLOURS[graph.nodes[n]["kind"]] for n in nodes])
    for kind, colour in KIND_COLOURS.items():
        if any(graph.nodes[n]["kind"] == kind for n in nodes):
            ax.scatter([], [], c=colour, label=kind)
    ax.legend(title="node kind", loc="best", fontsize=8)
    ax.set_title(f"{a.name}: node size = attribution, edge width = mean attention")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- GraphML ------------------------------------------------------------------------

def model_graph(a: A.ModelAnalysis) -> nx.MultiDiGraph:
    """The CG with node kinds, names, present features (reference units), attribution,
    attention received; edges with their kind and mean attention per mechanism
    (over blocks and heads; GANup rows carry the neuron-to-neuron weight they lift)."""
    cg, t = a.cg, a.attention
    g = nx.MultiDiGraph(name=a.name)  # parallel edges (e.g. two synapses) stay apart
    score, received = A.node_scores(a), A.attention_received(a)
    for i in range(cg.n_nodes):
        attrs = {"kind": A.KIND_NAMES[cg.node_kind[i]], "name": str(cg.node_name[i]),
                 "neuron_id": int(cg.neuron_id[i]), "attribution": float(score[i]),
                 "attention_received": float(received[i])}
        for j in np.flatnonzero(cg.node_feature_mask[i]):
            col = NODE_COLUMNS[j]
            if col.transform != "onehot":
                attrs[f"{col.group}.{col.name}"] = float(decode(col, cg.node_features[i, j]))
        g.add_node(i, **attrs)
    edge_rows = t["edge"] >= 0
    weights = {}  # mechanism -> [E] mean over the (block, head) slots that attend
    for m in sorted(set(t["mechanism"][edge_rows])):
        sel = edge_rows & (t["mechanism"] == m)
        slots = len({(b, h) for b, h in zip(t["block"][sel], t["head"][sel])})
        w = np.bincount(t["edge"][sel], weights=t["weight"][sel], minlength=cg.n_edges)
        weights[f"attention_{m}"] = w[:cg.n_edges] / max(slots, 1)
    weights["attention_mean"] = (np.mean(list(weights.values()), 0) if weights
                                 else np.zeros(cg.n_edges))
    columns = {"kind": [A.EDGE_KINDS[k] for k in cg.edge_kind],
               "forward": cg.edge_forward.astype(int).tolist(),
               **{k: v.astype(float).tolist() for k, v in weights.items()}}
    g.add_edges_from(  # one pass; networkx stores a dict per edge anyway
        (int(s), int(r), e, {k: col[e] for k, col in columns.items()})
        for e, (s, r) in enumerate(zip(cg.senders, cg.receivers)))
    return g


# -- the whole output ---------------------------------------------------------------

def write_all(analyses: Sequence[A.ModelAnalysis], out: Path, meta: Dict,
              outcomes: Sequence[Dict], draw_limit: int = 6) -> Dict:
    """Tables, figures, GraphML and report.md for the analysed models; returns the
    summary also saved as ``analysis.json``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "graphml").mkdir(exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    attention = A.concat([a.attention for a in analyses], model=[a.name for a in analyses])
    tables = {"attribution_groups": A.attribution_table(analyses),
              "attribution_columns": A.column_table(analyses),
              "components": A.component_table(analyses)}
    figures = {"attribution": "figures/attribution.png"}
    plot_attribution(analyses, out / figures["attribution"])
    if len(attention.get("weight", ())):  # baselines without attention have none
        tables["attention_kinds"] = A.kind_attention(attention)
        tables["attention_edges"] = A.edge_attention(attention)
        figures["attention_kinds"] = "figures/attention_kinds.png"
        figures["attention_edges"] = "figures/attention_edges.png"
        plot_kind_attention(tables["attention_kinds"], out / figures["attention_kinds"])
        plot_edge_attention(tables["attention_edges"], out / figures["attention_edges"])
    for name, table in tables.items():
        _decode_kinds(table)
        write_csv(out / f"{name}.csv", table)
    drawn = []
    for a in analyses:
        graph = model_graph(a)
        nx.write_graphml(graph, out / "graphml" / f"{a.name}.graphml")
        if a.cg.n_nodes <= DRAW_MAX_NODES and len(drawn) < draw_limit:
            drawn.append(f"figures/model_{a.name}.png")
            plot_model(a, graph, out / drawn[-1])
    planted = A.planted_metrics(analyses)
    summary = {**meta, "models": len(analyses), "outcomes": list(outcomes),
               "figures": figures, "drawings": drawn, "planted": planted,
               "completeness_gap_max": max((a.completeness_gap for a in analyses), default=0.0),
               "tables": {k: table_rows(v) for k, v in tables.items()}}
    (out / "analysis.json").write_text(json.dumps(summary, indent=1))
    (out / "report.md").write_text(report_markdown(summary, tables))
    return summary


def _decode_kinds(table: A.Columns) -> None:
    """Kind columns as names (in place) for the files a person reads."""
    for col, names in (("sender_kind", A.SENDER_KIND_NAMES), ("receiver_kind", A.KIND_NAMES),
                       ("edge_kind", A.EDGE_KINDS)):
        if col in table and table[col].dtype.kind in "iuf":
            table[col] = np.array([names[int(k)] for k in table[col]], object)
    if "block" in table:
        table["block"] = table["block"].astype(int) + 1  # blocks count from 1 in files


def _md_table(rows: List[Dict], cols: Sequence[str], fmt: Optional[Dict] = None) -> str:
    fmt = fmt or {}
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(fmt.get(c, "{}").format(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def report_markdown(summary: Dict, tables: Dict[str, A.Columns]) -> str:
    ok = [o for o in summary["outcomes"] if o["status"] == "ok"]
    bad = [o for o in summary["outcomes"] if o["status"] != "ok"]
    lines = [f"# Analysis of {summary.get('workdir', 'a trained model')}", "",
             f"Model `{summary.get('model')}` trained on task `{summary.get('task')}` "
             f"(checkpoint step {summary.get('step')}); {len(ok)} model(s) analysed"
             + (f", {len(bad)} skipped (below)" if bad else "") + ".", "",
             "## Which features drive the output", "",
             "Share of the model's |integrated gradients| per node kind and feature group "
             "(mean over analysed models; baseline = the mean features of each node kind "
             "in the reference set, so only features that differ from a typical node of "
             "their kind can earn a share). `ranked first` = fraction of models in which "
             f"that cell had the largest share. Path steps: {summary.get('ig_steps', '?')}; "
             "largest relative completeness gap (sum of attributions vs F(x) - F(baseline)): "
             f"{summary['completeness_gap_max']:.3g}.", ""]
    top = table_rows(tables["attribution_groups"])[:8]
    lines += [_md_table(top, ["node_kind", "group", "share_mean", "share_std", "ranked_first"],
                        {"share_mean": "{:.3f}", "share_std": "{:.3f}",
                         "ranked_first": "{:.2f}"}), "",
              f"![attribution]({summary['figures']['attribution']})", "",
              "Strongest single features:", ""]
    cols = table_rows(tables["attribution_columns"])[:10]
    lines += [_md_table(cols, ["node_kind", "column", "group", "share_mean"],
                        {"share_mean": "{:.3f}"}), ""]
    if "attention_kinds" in tables:
        lines += ["## Where attention goes", "",
                  "For each mechanism, the receiver <- sender kind pairs with the largest "
                  "share of the receivers' attention (mean over blocks, heads and models), "
                  "then the share each receiver kind keeps on itself.", ""]
        k = mean_over_heads(tables["attention_kinds"], ["mechanism", "receiver_kind",
                                                         "sender_kind"])
        rows = table_rows(k)
        for m in dict.fromkeys(r["mechanism"] for r in rows):
            mine = sorted((r for r in rows if r["mechanism"] == m), key=lambda r: -r["share"])
            pairs = ", ".join([f"{r['receiver_kind']} <- {r['sender_kind']} {r['share']:.2f}"
                               for r in mine if r["sender_kind"] != "self"][:4]) or "none"
            selves = ", ".join(f"{r['receiver_kind']} {r['share']:.2f}"
                               for r in mine if r["sender_kind"] == "self")
            lines.append(f"- **{MECHANISM_TITLES.get(m, m)}**: {pairs}; on itself: {selves}")
        lines += ["", f"![attention by kind]({summary['figures']['attention_kinds']})", "",
                  f"![attention by edge kind]({summary['figures']['attention_edges']})", ""]
    planted = summary.get("planted")
    if planted:
        lines += ["## Planted truth", "",
                  f"Case `{planted['case']}`, {planted['n']} models: the planted (kind, group) "
                  f"ranked first by attribution in {planted['ranked_first']:.0%} of them "
                  f"(mean share {planted['planted_share']:.2f}); planted components vs the "
                  f"rest: AUROC {planted['auroc_attribution']:.3f} by attribution, "
                  f"{planted['auroc_attention']:.3f} by attention received.", ""]
    lines += ["## Most important components", "",
              "Top nodes of each model by attribution (first 3 models; all models, and "
              "the top nodes by attention received, in `components.csv`).", ""]
    comp = [r for r in table_rows(tables["components"])
            if r["rank"] <= 5 and r["ranked_by"] == "attribution"]
    models = list(dict.fromkeys(r["model"] for r in comp))[:3]
    lines += [_md_table([r for r in comp if r["model"] in models],
                        ["model", "rank", "name", "node_kind", "attribution_share",
                         "attention_received"],
                        {"attribution_share": "{:.3f}", "attention_received": "{:.3f}"}), ""]
    for d in summary["drawings"][:3]:
        lines += [f"![model]({d})", ""]
    lines += ["## Files", "",
              "- `attribution_groups.csv`, `attribution_columns.csv`: attribution shares",
              "- `attention_kinds.csv`: mean weight and share per block, mechanism, head, "
              "receiver and sender kind; `attention_edges.csv`: per edge kind",
              "- `components.csv`: top components per model, by attribution and by "
              "attention received",
              "- `graphml/*.graphml`: every model with node features, attribution and "
              "attention per mechanism on edges (Gephi, Cytoscape, networkx)",
              "- `analysis.json`: all of the above and every input's outcome", ""]
    if bad:
        lines += ["## Skipped inputs", ""] + [f"- `{o['name']}`: {o['error']}" for o in bad] + [""]
    return "\n".join(lines)
