"""Planted-correlation datasets: ground truth for the attention / attribution analysis.

In each case the graph label (``low`` / ``high``) is decided by one NeuroML parameter
of one kind of component, and nothing else: every network is drawn at random by the
canonical generator (family within the case, size, connectivity, coupling, drive,
jitter), then that parameter is set on every planted component, from the case's high
range on a majority of them for label 1 and on a minority for label 0 (the rest from
its low range). No single component decides the label: a model has to read all of
them, so each planted component is part of the truth the analysis should find. The file is written by ``bnnsim.canonical`` and converted by the real front
end, so the planted value reaches the CG through the same path as any model's
parameters, and the analysis must find it among every other feature.

``meta["planted"]`` of each CG names the case, its node kind, feature group and
column, and the planted node indices (the components that carry the signal).
No simulation is run: the label is planted, not measured.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import neuroml.writers
import numpy as np
from tqdm import tqdm

from bnnsim.dataset import assign_splits, finished_row, record_row, write_report
from bnnsim.generate import FAMILIES, NetworkSpec, poisson_train, random_network
from bnnsim import canonical
from graphs import convert_file, save_cg
from graphs.cg import CG
from graphs.schema import NODE_INDEX, NODE_COLUMNS, NodeKind

LABELS = ("low", "high")


class PlantedCase(NamedTuple):
    """One planted truth: the label is ``column`` of the ``kind`` nodes, low or high."""

    name: str
    kind: NodeKind
    column: str  # a graphs.schema node column
    low: tuple[float, float]  # value range (NeuroML units of the parameter) for label 0
    high: tuple[float, float]  # ... for label 1
    families: tuple[str, ...]
    drive: str | None  # None: drawn at random
    description: str

    @property
    def group(self) -> str:
        """The feature group holding ``column`` (from the schema, its one home)."""
        return NODE_COLUMNS[NODE_INDEX[self.column]].group


CASES: dict[str, PlantedCase] = {c.name: c for c in (
    PlantedCase("synapse_tau_decay", NodeKind.SYNAPSE, "syn_tau_decay",
                (2.0, 4.0), (9.0, 14.0), FAMILIES, None,
                "decay time constant (ms) of every chemical synapse"),
    PlantedCase("input_rate", NodeKind.INPUT, "input_rate", (20.0, 60.0),
                (300.0, 900.0), FAMILIES, "poisson", "rate (Hz) of the Poisson spike sources"),
    PlantedCase("soma_diameter", NodeKind.SOMA, "diameter", (8.0, 14.0),
                (26.0, 40.0), ("hh",), None, "soma diameter (um) of the HH cells"),
    PlantedCase("dendrite_gk", NodeKind.DENDRITE, "g_k", (1.0, 4.0),
                (15.0, 30.0), ("hh",), None,
                "potassium channel density (mS/cm2) on the dendrites of ball-and-stick cells"),
    PlantedCase("refractory", NodeKind.NEURON, "refract", (1.0, 2.0),
                (5.0, 8.0), ("lif",), None, "refractory period (ms) of the LIF neurons"),
)}


def case_of(name: str) -> PlantedCase:
    if name not in CASES:
        raise ValueError(f"unknown planted case {name!r}; known: {sorted(CASES)}")
    return CASES[name]


def _targets(spec: NetworkSpec, case: PlantedCase) -> list[tuple[str, int]]:
    """The components that carry the planted parameter: ("neurons" | "connections" |
    "sources", index)."""
    if case.name == "synapse_tau_decay":
        return [("connections", k) for k in range(len(spec.connections))]
    if case.name == "input_rate":
        return [("sources", k) for k in range(len(spec.sources))]
    if case.name == "dendrite_gk":
        return [("neurons", i) for i, c in enumerate(spec.cells)
                if any(s[1] == "dendrite" for s in c.get("segments", ()))]
    if case.name in ("soma_diameter", "refractory"):
        return [("neurons", i) for i in range(len(spec.cells))]
    raise ValueError(f"no planting rule for case {case.name!r}")  # added to CASES only


def majority(k: int, label: int, rng) -> np.ndarray:
    """[k] bool: which of k components get a high value; label 1 <=> a strict majority
    does. The count is drawn from the label's side, at least 20% away from a tie."""
    if label:
        lo, hi = max(k // 2 + 1, int(np.ceil(0.7 * k))), k
    else:
        lo, hi = 0, min((k - 1) // 2, int(np.floor(0.3 * k)))
    return rng.permutation(np.arange(k) < int(rng.integers(lo, hi + 1)))


def plant(spec: NetworkSpec, case: PlantedCase, label: int, rng
          ) -> tuple[NetworkSpec, dict[str, set[int]]]:
    """The spec with the planted parameter set on every planted component (a high value
    on a majority of them for label 1, on a minority for label 0), and which components
    those are: {"neurons": ..., "connections": ..., "sources": ...}."""
    targets = _targets(spec, case)
    high = majority(len(targets), label, rng)
    value = {t: round(float(rng.uniform(*(case.high if h else case.low))), 3)
             for t, h in zip(targets, high)}
    cells = [dict(c) for c in spec.cells]
    connections = [dict(c, synapse=dict(c["synapse"])) for c in spec.connections]
    sources = list(spec.sources)
    for (what, i), v in value.items():
        if what == "connections":  # exp2 (tauDecay) and alpha (tau) synapses
            syn = connections[i]["synapse"]
            syn["tauDecay" if "tauDecay" in syn else "tau"] = v
        elif what == "sources":
            sources[i] = poisson_train(rng, v, spec.meta["duration_ms"])
        elif case.name == "soma_diameter":
            cells[i]["segments"] = tuple((s[0], s[1], s[2], s[3], v) if s[1] == "soma" else s
                                         for s in cells[i]["segments"])
        elif case.name == "dendrite_gk":
            cells[i]["density"] = tuple((d[0], d[1], v, d[3]) if d[0] == "dendrite" else d
                                        for d in cells[i]["density"])
        else:  # refractory
            cells[i]["refract"] = v
    which: dict[str, set[int]] = {"neurons": set(), "connections": set(), "sources": set()}
    for what, i in targets:
        which[what].add(i)
    return spec._replace(cells=cells, connections=connections, sources=sources), which


def planted_nodes(cg: CG, case: PlantedCase, model: canonical.NetworkModel,
                  which: dict[str, set[int]]) -> np.ndarray:
    """[N] bool: the CG nodes of ``case.kind`` that carry the planted value."""
    names = set()
    names |= {f"{pop}/{i}" for k, (pop, i) in enumerate(model.neurons) if k in which["neurons"]}
    names |= {model.connections[k] for k in which["connections"]}
    names |= {f"src{k}/0" for k in which["sources"]}
    node_names = [str(x) for x in cg.node_name]
    owner = np.array([node_names[j] if j >= 0 else "" for j in cg.neuron_id])  # neuron's name
    named = np.array([x in names for x in node_names]) | np.isin(owner, sorted(names))
    col = NODE_INDEX[case.column]
    return named & (cg.node_kind == case.kind) & (cg.node_feature_mask[:, col] > 0)


def planted_network(case: PlantedCase, seed: int, label: int,
                    neuron_range=(6, 12)) -> tuple[NetworkSpec, dict[str, set[int]]]:
    """A random network of the case's families with its label planted; seeds whose
    network has no planted component (e.g. no excitatory synapse) are skipped."""
    for attempt in range(100):
        s = seed * 100 + attempt
        rng = np.random.default_rng([s, 7])
        spec = random_network(s, families=case.families, neuron_range=neuron_range,
                              drive=case.drive, p_connect=float(rng.choice((0.2, 0.3, 0.5))))
        spec, which = plant(spec, case, label, rng)
        if any(which.values()):
            return spec, which
    raise RuntimeError(f"{case.name}: no network with a planted component from seed {seed}")


def build_planted(out_dir, case_name: str, n: int = 160, seed: int = 0,
                  neuron_range=(6, 12), progress: bool = True) -> dict:
    """Write ``n`` networks of one planted case (labels balanced) as a dataset directory
    that ``bgan_jax.bgan.data`` loads with task ``planted``; every network's outcome is
    reported and a failing one does not stop the rest."""
    case = case_of(case_name)
    out = Path(out_dir)
    (out / "nml").mkdir(parents=True, exist_ok=True)
    (out / "graphs").mkdir(parents=True, exist_ok=True)
    labels = np.random.default_rng([seed, 11]).permutation(np.arange(n) % 2)
    rows = []
    for i in tqdm(range(n), desc=f"planted {case.name}", disable=not progress):
        name, net_seed = f"{case.name}{i:04d}", seed * 100000 + i
        done = finished_row(out, name)  # a resumed build keeps what it finished
        if done is not None:
            rows.append(done)
            continue
        try:
            spec, which = planted_network(case, net_seed, int(labels[i]), neuron_range)
            model = canonical.network_model(spec.cells, spec.pulses, spec.connections,
                                            spec.gaps, spec.sources, doc_id=name)
            nml = out / "nml" / f"{name}.net.nml"
            neuroml.writers.NeuroMLWriter.write(model.doc, str(nml))
            cg = convert_file(nml)
            nodes = planted_nodes(cg, case, model, which)
            if not nodes.any():
                raise RuntimeError("the planted parameter did not reach any CG node")
            meta = dict(cg.meta, generator=dict(spec.meta, seed=net_seed),
                        labels={"planted": int(labels[i])},
                        planted=dict(case=case.name, kind=case.kind.name.lower(),
                                     group=case.group, column=case.column,
                                     label=LABELS[int(labels[i])],
                                     nodes=np.flatnonzero(nodes).tolist()))
            npz = save_cg(dataclasses.replace(cg, meta=meta), out / "graphs" / f"{name}.npz")
            rows.append({"file": str(nml), "npz": str(npz),
                         "status": "ok", "n_nodes": cg.n_nodes, "n_edges": cg.n_edges,
                         "labels": {"planted": int(labels[i])},
                         "generator": dict(spec.meta, seed=net_seed)})
        except Exception as err:  # keep going; the report says what failed
            rows.append({"file": name, "status": "error", "generator": {"seed": net_seed},
                         "error": {"type": type(err).__name__, "message": str(err)}})
        record_row(out, name, rows[-1])
    for row, split in zip(rows, assign_splits(rows, None, stratify="planted")):
        row["split"] = split  # in report.json, what bgan_jax.bgan.data reads
    report = {"n": n, "seed": seed,
              "case": case._asdict() | {"kind": case.kind.name.lower(), "group": case.group},
              "networks": rows,
              "splits": dict(Counter(r["split"] for r in rows if r["status"] == "ok"))}
    write_report(out, report, rows)
    return report

