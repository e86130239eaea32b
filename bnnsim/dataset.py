"""The canonical dataset: generated NeuroML networks, converted to CGs, labelled by
simulating them with bnnsim.

For network i of a run with seed S (network seed S * 100000 + i):
``DIR/nml/net<i>.net.nml`` (the model), ``DIR/graphs/net<i>.npz`` (its CG,
labels in ``meta["labels"]``), ``DIR/report.json`` (every network's outcome,
the split sizes and the class balance per task and split) and
``DIR/manifest.json`` (schema, sources, checksums).

Labels (``meta["labels"]``; node arrays are aligned with the CG's nodes, -1 /
NaN where a node is not a neuron):
* ``firing_pattern``: class index into ``labels.FIRING_PATTERNS`` per node;
* ``rate_hz``: firing rate per node;
* ``regime``: index into ``labels.REGIMES``; ``mean_rate_hz``, ``synchrony``;
* ``stdp_dw``: per node, the STDP weight change over the run of a plastic
  synapse node (final - initial weight; None elsewhere): the learning process.
Measured activity (rate, ISI CV, burst fraction, mean V) goes into the
activity feature columns of neuron nodes only when asked for
(``activity_features=True``, ``--activity-features``): hidden by default, so
no task sees its own label.

Splits: networks of ``ood_family`` (default ``adex``) form the ``ood`` split
(a parameter family never seen in training); the rest go to train / val /
test (70 / 15 / 15) stratified by regime: within each regime class, networks
are ordered by a hash of their seed and cut in those proportions, so the rare
regimes reach every split. A network is in exactly one split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import neuroml.writers
import numpy as np
from tqdm import tqdm

import bnnsim
from bnnsim.generate import FAMILIES, NetworkSpec, random_network
from bnnsim.labels import (
    FIRING_PATTERNS,
    REGIMES,
    network_regime,
    pattern_of,
    spike_stats,
)
from bnnsim.morphology import network_rows, neuron_view
from bnnsim import canonical
from graphs import convert_file, load_cg, save_cg
from graphs.errors import GraphFileError
from graphs.schema import NODE_COLUMNS, NODE_INDEX, encode_values
from graphs.storage import atomic_write, write_manifest

SPLITS = ("train", "val", "test", "ood")


def _seed_hash(seed: int) -> int:
    return int(hashlib.sha256(str(seed).encode()).hexdigest(), 16)


def assign_splits(rows: Sequence[dict], ood_family: str | None, stratify: str = "regime"
                  ) -> list[str]:
    """The split of every report row (failed rows: "none"): ``ood`` for the held-out
    family, else train/val/test 70/15/15 within each class of the graph label
    ``stratify`` by seed hash."""
    splits = ["none"] * len(rows)
    members = []
    for i, r in enumerate(rows):
        if r["status"] != "ok":
            continue
        if ood_family and r["generator"]["family"] == ood_family:
            splits[i] = "ood"
        else:
            members.append((i, r["labels"][stratify], _seed_hash(r["generator"]["seed"])))
    for i, split in stratified_split(members).items():
        splits[i] = split
    return splits


def stratified_split(members: Sequence[tuple]) -> dict:
    """[(item, class, order key)] -> {item: train/val/test}: 70/15/15 within each class,
    in order of the key (a hash: reproducible, unrelated to the data)."""
    groups: dict = {}
    for item, cls, key in members:
        groups.setdefault(cls, []).append((key, item))
    out = {}
    for group in groups.values():
        group.sort()
        m = len(group)
        n_test = int(round(0.15 * m))
        n_val = int(round(0.15 * m)) if m - n_test > 1 else 0
        for rank, (_, item) in enumerate(group):
            out[item] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def spec_model(spec: NetworkSpec):
    """(simulator ``Model`` over compartment rows, [N] soma row per neuron)."""
    return network_rows(spec.cells, spec.pulses, spec.connections, spec.gaps, spec.sources)


def simulate_spec(spec: NetworkSpec, dt: float = 0.05) -> bnnsim.SimResult:
    """One network's simulation, one column per neuron."""
    m, soma = spec_model(spec)
    r = bnnsim.simulate(m.cells, m.inputs, spec.meta["duration_ms"], dt, synapses=m.synapses,
                        gaps=m.gaps, sources=m.sources)
    return neuron_view(r, soma)


def neuron_stats(spec: NetworkSpec, result: bnnsim.SimResult) -> list[dict[str, float]]:
    """``spike_stats`` of every neuron (plus its spike count ``n``), computed once."""
    trains = [result.spike_times(i) for i in range(len(spec.cells))]
    return [dict(spike_stats(t, spec.meta["duration_ms"]), n=len(t)) for t in trains]


def network_labels(spec: NetworkSpec, result: bnnsim.SimResult,
                   stats: Sequence[dict[str, float]]) -> dict:
    """Per-neuron patterns and rates, per-connection STDP weight change (None if not
    plastic), the network regime (indices into the class lists)."""
    dw = [float(w - c.get("weight", 1.0)) if c["synapse"].get("stdp") else None
          for w, c in zip(result.weights, spec.connections)]
    regime = network_regime(result.spikes, result.v, result.dt)
    return {"firing_pattern": [FIRING_PATTERNS.index(pattern_of(st, st["n"])) for st in stats],
            "rate_hz": [st["rate"] for st in stats], "stdp_dw": dw,
            "regime": REGIMES.index(regime["regime"]), "mean_rate_hz": regime["mean_rate"],
            "synchrony": regime["synchrony"]}


def with_activity(cg, neuron_of_node: Sequence[int], stats: Sequence[dict[str, float]],
                  result: bnnsim.SimResult):
    """The CG with measured rate, ISI CV, burst fraction and mean V on its neuron nodes."""
    features, mask = cg.node_features.copy(), cg.node_feature_mask.copy()
    cols = [NODE_INDEX[c] for c in ("rate", "isi_cv", "burst_fraction", "mean_v")]
    for node, j in enumerate(neuron_of_node):
        if j < 0:
            continue
        st = stats[j]
        values = [st["rate"], st["cv"], st["burst_fraction"], float(result.v[:, j].mean())]
        features[node, cols] = encode_values(NODE_COLUMNS, np.asarray(cols), np.asarray(values))
        mask[node, cols] = 1.0
    return dataclasses.replace(cg, node_features=features, node_feature_mask=mask)


def build_one(spec: NetworkSpec, name: str, out: Path, result: bnnsim.SimResult,
              activity_features: bool = False) -> dict:
    """Write, convert and label one simulated network -> its report entry."""
    model = canonical.network_model(spec.cells, spec.pulses, spec.connections, spec.gaps,
                                    spec.sources, doc_id=name)
    nml = out / "nml" / f"{name}.net.nml"
    nml.parent.mkdir(parents=True, exist_ok=True)
    neuroml.writers.NeuroMLWriter.write(model.doc, str(nml))
    cg = convert_file(nml)
    stats = neuron_stats(spec, result)
    labels = network_labels(spec, result, stats)
    node_of = {f"{pop}/{i}": k for k, (pop, i) in enumerate(model.neurons)}
    index = [node_of.get(str(nm), -1) for nm in cg.node_name]  # CG node -> neuron or -1
    node_labels = {key: [labels[key][j] if j >= 0 else (-1 if key == "firing_pattern" else None)
                         for j in index] for key in ("firing_pattern", "rate_hz")}
    syn_of = {name: k for k, name in enumerate(model.connections)}
    node_labels["stdp_dw"] = [labels["stdp_dw"][syn_of[str(nm)]] if str(nm) in syn_of else None
                              for nm in cg.node_name]
    meta = dict(cg.meta, generator=spec.meta, types=spec.types,
                labels={**node_labels, **{k: labels[k] for k in
                                          ("regime", "mean_rate_hz", "synchrony")}})
    if activity_features:
        cg = with_activity(cg, index, stats, result)
    npz = out / "graphs" / f"{name}.npz"
    save_cg(dataclasses.replace(cg, meta=meta), npz)
    return {"file": str(nml), "npz": str(npz), "status": "ok", "n_nodes": cg.n_nodes,
            "n_edges": cg.n_edges, "labels": labels}


def _simulate_chunk(specs: Sequence[NetworkSpec], dt: float) -> list:
    """Results (or the exception) per network; vmapped together when all share a duration."""
    try:
        durations = {s.meta["duration_ms"] for s in specs}
        if len(durations) == 1:
            models, somas = zip(*(spec_model(s) for s in specs))
            results = bnnsim.simulate_many(models, durations.pop(), dt)
            return [neuron_view(r, soma) for r, soma in zip(results, somas)]
    except Exception:  # one bad network must not sink the chunk: fall back to one by one
        pass
    out = []
    for spec in specs:
        try:
            out.append(simulate_spec(spec, dt))
        except Exception as err:
            out.append(err)
    return out


def finished_row(out: Path, name: str) -> dict | None:
    """The report row of an item a previous (possibly killed) build finished, or None
    when it must be built (again): no marker, a damaged marker, or a graph file that
    does not load. Items are marked only after their graph is written, so a kill
    mid-item leaves it unmarked."""
    marker = out / "rows" / f"{name}.json"
    try:
        row = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(row, dict) or "status" not in row:
        return None
    if row["status"] == "ok":
        try:
            load_cg(out / "graphs" / f"{name}.npz")
        except GraphFileError:
            return None
    return row


def record_row(out: Path, name: str, row: dict) -> None:
    """Mark an item finished (atomically: a kill leaves no half-written marker)."""
    text = json.dumps(row).encode()
    atomic_write(out / "rows" / f"{name}.json", lambda f: f.write(text))


def write_report(out: Path, report: dict, rows: Sequence[dict]) -> None:
    """manifest.json, then report.json: the dataset is complete once report.json is there."""
    write_manifest(out, [{k: r.get(k) for k in ("file", "npz", "status", "error")} for r in rows])
    text = json.dumps(report, indent=1).encode()
    atomic_write(out / "report.json", lambda f: f.write(text))


def _n_rows(spec: NetworkSpec) -> int:
    """Simulator rows (compartments) of a network."""
    return sum(len(c.get("segments", ((),))) for c in spec.cells)


def build_dataset(out_dir, n: int, seed: int = 0, families: Sequence[str] = FAMILIES,
                  ood_family: str | None = "adex", dt: float = 0.05, chunk: int = 8,
                  neuron_range=(10, 60), activity_features: bool = False,
                  progress: bool = True) -> dict:
    """Generate, simulate (``chunk`` networks vmapped together) and label ``n`` networks;
    every network's outcome is reported. Resumable: started again on the same
    directory after a kill, it keeps every network that was finished and builds the
    rest (a chunk with an unfinished member is simulated whole, as in an
    uninterrupted build, so the result is the same)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = [random_network(seed * 100000 + i, families=families, neuron_range=neuron_range)
             for i in range(n)]
    # simulate networks of similar size together: a chunk is padded to its largest
    order = sorted(range(n), key=lambda i: _n_rows(specs[i]))
    rows: list[dict | None] = [finished_row(out, f"net{i:05d}") for i in range(n)]
    bar = tqdm(total=n, initial=sum(r is not None for r in rows), desc="networks",
               disable=not progress)
    for start in range(0, n, chunk):
        ids = order[start:start + chunk]
        if all(rows[i] is not None for i in ids):
            continue
        chunk_specs = [specs[i] for i in ids]
        for i, spec, result in zip(ids, chunk_specs, _simulate_chunk(chunk_specs, dt)):
            if rows[i] is not None:
                continue
            name = f"net{i:05d}"
            try:
                if isinstance(result, Exception):
                    raise result
                row = build_one(spec, name, out, result, activity_features)
            except Exception as err:  # keep going; the report says what failed
                row = {"file": name, "status": "error",
                       "error": {"type": type(err).__name__, "message": str(err)}}
            row["generator"] = spec.meta
            record_row(out, name, row)
            rows[i] = row
            bar.update(1)
    bar.close()
    # the split lives in report.json only (what bgan_jax.bgan.data reads): every CG is
    # written once, before the labels that stratify the split are all known
    for row, split in zip(rows, assign_splits(rows, ood_family)):
        row["split"] = split
    report = {"n": n, "seed": seed, "ood_family": ood_family,
              "generator_args": {"families": list(families), "neuron_range": list(neuron_range)},
              "networks": rows,
              "splits": dict(Counter(r["split"] for r in rows if r["status"] == "ok")),
              "class_balance": class_balance(rows)}
    write_report(out, report, rows)
    return report


def class_balance(rows: Sequence[dict]) -> dict:
    """Counts per class, per task and split (node firing pattern, graph regime)."""
    out: dict = {"firing_pattern": {}, "regime": {}}
    for split in SPLITS:
        ok = [r for r in rows if r["status"] == "ok" and r["split"] == split]
        pats = Counter(FIRING_PATTERNS[p] for r in ok for p in r["labels"]["firing_pattern"])
        regs = Counter(REGIMES[r["labels"]["regime"]] for r in ok)
        out["firing_pattern"][split] = {c: pats.get(c, 0) for c in FIRING_PATTERNS}
        out["regime"][split] = {c: regs.get(c, 0) for c in REGIMES}
    return out


DEFAULT_NETWORKS = 200
DEFAULT_VERSION = "canonical-v4"  # v2: HH family; v3: spike-source rates as features; v4: schema 1.1


def default_cache_dir() -> Path:
    """``$BGAN_JAX_CACHE`` or ``~/.cache/bgan-jax``."""
    import os
    return Path(os.environ.get("BGAN_JAX_CACHE", Path.home() / ".cache" / "bgan-jax"))


def default_dataset(cache_dir=None, n: int = DEFAULT_NETWORKS, progress: bool = True) -> Path:
    """The embedded default dataset: built on first use (about 4 minutes on 2 CPU cores
    for 200 networks), then reused. Returns its directory.

    The directory name holds the version and size; a build that did not finish goes on
    where it stopped (in ``NAME.partial``, renamed when complete).
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = root / f"{DEFAULT_VERSION}-n{n}"
    if not (out / "report.json").is_file():
        tmp = out.with_name(out.name + ".partial")
        build_dataset(tmp, n, seed=0, progress=progress)
        tmp.rename(out)
    return out
