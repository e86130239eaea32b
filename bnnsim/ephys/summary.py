"""The tables RESULTS.md shows for a real-cell dataset: ``python -m bnnsim.ephys.summary DIR``.

* outcomes and every failure with its typed reason;
* outcomes, e-types and time per part of the corpus (Blue Brain, Allen, Allen
  fits, the others);
* the e-type our rules give against the type the authors declared, where the
  corpus says it (cell names of Pospischil et al. 2008; the pyloric AB/PD
  pacemaker of Prinz et al. 2004; the CA1 types of Bezaire et al. 2016; the human
  L2/3 types of Yao et al. 2022);
* Blue Brain cells: the declared e-type (NeuroML-DB's ``labels.tsv``) against the
  measured class, through the Petilla mapping in ``etype``;
* Allen cells by the authors' dendrite type (aspiny cells, mostly
  fast-spiking interneurons, should fire faster with narrower spikes).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

# cell name (as bnnsim.ephys.corpus names it) -> (the type the authors declared, the
# class of etype.ETYPES the literature reports for that type, or None where we make no
# claim). Pospischil et al. 2008 and Prinz et al. 2004 name the firing; Bezaire et al.
# 2016 (CA1) and Yao et al. 2022 (human L2/3) name cell types, whose usual firing is:
# PV+ basket, axo-axonic and bistratified cells fast-spiking (non-adapting); CCK+ and
# Schaffer-collateral-associated cells, O-LM cells and pyramidal cells regular-spiking
# adapting; neurogliaform cells late-spiking (delayed). Ivy and VIP cells are left
# without an expectation: their reported firing varies.
DECLARED: Dict[str, Tuple[str, Optional[str]]] = {
    "PospischilEtAl2008__RS": ("regular spiking (adapting)", "continuous adapting"),
    "PospischilEtAl2008__FS": ("fast spiking (non-adapting)", "continuous non-adapting"),
    "PospischilEtAl2008__IB": ("intrinsically bursting", "bursting"),
    "PospischilEtAl2008__IBR": ("repetitive bursting", "bursting"),
    "PospischilEtAl2008__LTS": ("low-threshold spike (rebound burst)", "bursting"),
    "ca1__pvbasketcell": ("CA1 PV+ basket (Bezaire)", "continuous non-adapting"),
    "ca1__axoaxoniccell": ("CA1 axo-axonic (Bezaire)", "continuous non-adapting"),
    "ca1__bistratifiedcell": ("CA1 bistratified (Bezaire)", "continuous non-adapting"),
    "ca1__cckcell": ("CA1 CCK+ basket (Bezaire)", "continuous adapting"),
    "ca1__scacell": ("CA1 Schaffer-collateral-associated (Bezaire)", "continuous adapting"),
    "ca1__olmcell": ("CA1 O-LM (Bezaire)", "continuous adapting"),
    "ca1__ngfcell": ("CA1 neurogliaform (Bezaire)", "delayed"),
    "ca1__ivycell": ("CA1 ivy (Bezaire)", None),
    "ca1__poolosyncell": ("CA1 pyramidal (Bezaire)", "continuous adapting"),
    "ca1__cutsuridiscell": ("CA1 pyramidal (Bezaire, after Cutsuridis)", "continuous adapting"),
    "Human-L2-3-Cortical-Microcircuit__HL23PYR": ("human L2/3 PYR (Yao)", "continuous adapting"),
    "Human-L2-3-Cortical-Microcircuit__HL23PV": ("human L2/3 PV (Yao)", "continuous non-adapting"),
    "Human-L2-3-Cortical-Microcircuit__HL23SST": ("human L2/3 SST (Yao)", "continuous adapting"),
    "Human-L2-3-Cortical-Microcircuit__HL23VIP": ("human L2/3 VIP (Yao)", None),
}
PACEMAKER_PREFIX = "PyloricNetwork__AB_PD"  # AB/PD: the pyloric pacemaker, bursts


def declared_rows(report: dict) -> List[dict]:
    rows = {r["name"]: r for r in report["cells"]}
    out = []
    for name, (said, expect) in DECLARED.items():
        if name in rows:
            out.append(_declared(rows[name], said, expect))
    for name, r in sorted(rows.items()):
        if name.startswith(PACEMAKER_PREFIX):
            out.append(_declared(r, "pyloric pacemaker (bursting)", "bursting"))
    return out


def _declared(r: dict, said: str, expect: str) -> dict:
    got = r.get("etype")
    return {"cell": r["name"], "declared": said, "expected": expect,
            "measured": got if r.get("characterised") else f"failed: {r['status']}",
            "outcome": r["status"], "agrees": None if expect is None else got == expect,
            "rule": r.get("etype_rule")}


def bbp_rows(report: dict) -> List[dict]:
    """Declared Blue Brain e-type against the measured class, per e-type: how many
    cells, how many measured as the Petilla name says (``etype.expected_class``), and
    what was measured."""
    from bnnsim.ephys.etype import expected_class, petilla

    groups: Dict[str, List[dict]] = {}
    for r in report["cells"]:
        declared = (r.get("labels") or {}).get("declared_etype")
        if declared:
            groups.setdefault(declared, []).append(r)
    out = []
    for declared, rs in sorted(groups.items()):
        done = [r for r in rs if r.get("characterised")]
        expect = expected_class(declared)
        out.append({"declared": declared, "petilla": " ".join(petilla(declared)),
                    "expected": expect, "cells": len(rs), "characterised": len(done),
                    "agree": sum(r.get("etype") == expect for r in done),
                    "measured": dict(Counter(r.get("etype") for r in done).most_common())})
    return out


def source_rows(report: dict) -> List[dict]:
    """Per part of the corpus (``corpus.SOURCE_GROUPS``): cells, characterised, outcomes,
    e-types, and the median and summed seconds of the cells this dataset simulated
    (cells read back from the cache are left out of the times)."""
    from bnnsim.ephys.corpus import SOURCE_GROUPS, source_group

    groups: Dict[str, List[dict]] = {g: [] for g in SOURCE_GROUPS}
    for r in report["cells"]:
        groups[source_group(r.get("file") or "", (r.get("labels") or {}).get("repository"))
               ].append(r)
    out = []
    for g, rs in groups.items():
        timed = [r["seconds"] for r in rs if r.get("cached") is False and r.get("seconds")]
        out.append({"source": g, "cells": len(rs),
                    "characterised": sum(bool(r.get("characterised")) for r in rs),
                    "outcomes": dict(Counter(r["status"] for r in rs).most_common()),
                    "etypes": dict(Counter(r["etype"] for r in rs
                                           if r.get("characterised")).most_common()),
                    "median_s": round(float(np.median(timed)), 1) if timed else None,
                    "simulated_s": round(float(np.sum(timed)), 1), "simulated": len(timed)})
    return out


def _stats(values: List[Optional[float]]) -> str:
    v = np.asarray([x for x in values if x is not None], float)
    if not v.size:
        return "n/a"
    return f"{np.median(v):.3g} [{np.percentile(v, 25):.3g}, {np.percentile(v, 75):.3g}] (n={v.size})"


def allen_rows(report: dict) -> List[dict]:
    """Median [IQR] of rate and width at 1.5x rheobase, rheobase, Rin by dendrite type."""
    groups: Dict[str, List[dict]] = {}
    for r in report["cells"]:
        d = (r.get("labels") or {}).get("dendrite_type")
        if d and r.get("characterised"):
            groups.setdefault(d, []).append(r)
    out = []
    for d, rs in sorted(groups.items()):
        f = [r.get("efeatures") or {} for r in rs]
        out.append({"dendrite_type": d, "cells": len(rs),
                    "rate_hz_1.5x": _stats([x.get("x1.5/mean_frequency") for x in f]),
                    "ap_width_ms_1.5x": _stats([x.get("x1.5/AP_width") for x in f]),
                    "rheobase_nA": _stats([x.get("rheobase_nA") for x in f]),
                    "input_resistance_MOhm": _stats([x.get("ohmic_input_resistance") for x in f]),
                    "etypes": dict(sorted(Counter(r.get("etype") for r in rs).items()))})
    return out


def _table(rows: List[dict], cols: List[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def render(report: dict) -> str:
    ch = report["characterised"]
    parts = [f"{ch['cells']}/{ch['of']} cells characterised ({100 * ch['share']:.1f}%); "
             f"outcomes {report['outcomes']}; {report['n_variants']} variants "
             f"({report['variant_outcomes']}).", "",
             "E-types: " + ", ".join(f"{k} {v}" for k, v in sorted(report["etypes"].items())),
             "", "Per part of the corpus (times: cells simulated by this dataset):", "",
             _table(source_rows(report), ["source", "cells", "characterised", "outcomes",
                                          "etypes", "simulated", "median_s", "simulated_s"]),
             "", "Declared vs measured:", "",
             _table(declared_rows(report), ["cell", "declared", "expected", "measured",
                                            "agrees", "rule"]),
             "", "Blue Brain cells: declared e-type vs measured class:", "",
             _table(bbp_rows(report), ["declared", "petilla", "expected", "cells",
                                       "characterised", "agree", "measured"]),
             "", "Allen cells by the authors' dendrite type (median [IQR]):", "",
             _table(allen_rows(report), ["dendrite_type", "cells", "rate_hz_1.5x",
                                         "ap_width_ms_1.5x", "rheobase_nA",
                                         "input_resistance_MOhm", "etypes"]),
             "", "Failures:", ""]
    parts += [f"* {f['message']}" for f in report["failures"]] or \
        ["* none"]
    if report.get("dt_check"):
        parts += ["", "Half-dt check:", "",
                  _table(report["dt_check"], ["name", "rheobase_nA rel_change",
                                              "x1.5/mean_frequency rel_change",
                                              "x1.5/AP_width rel_change", "etype"])]
    parts += ["", f"Timing: {report['timing']}"]
    return "\n".join(parts) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bnnsim.ephys.summary DATASET_DIR", file=sys.stderr)
        return 2
    path = Path(argv[0]) / "report.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {path}: not a finished real-cell dataset ({e})", file=sys.stderr)
        return 1
    sys.stdout.write(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
