"""Characterise one cell, start to finish, in this process: the unit a batch runs.

``python -m bnnsim.ephys.run_cell JOB.json`` runs one job in a fresh process
(NEURON keeps its mechanisms per process, and a crash of one cell must not
take the batch down). The outcome row is written to ``DIR/rows/NAME.json``
last, so a killed build redoes the cell.

Measurements (features and traces) are cached by content: the sha256 of
every file the cell reads, the temperature, dt and the protocol version. A
cell seen before (in any dataset) is not simulated again. The firing class
is derived from the stored traces every time, so new e-type rules relabel a
dataset from the cache without simulating anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from bnnsim.ephys import etype, features, nrn, protocol, repairs
from bnnsim.ephys.errors import CellError, ConversionFailed, ExportFailed, SimulationFailed

MORPHOLOGICAL = ("cells", "cell2_ca_poolses")  # libNeuroML members jNeuroML exports as hoc
TRACE_EVERY = 4  # traces are stored every 4th step (0.1 ms at the default dt)
SUMMARY_SWEEPS = ("x1.5", "x3.0")


def _finite(x) -> Optional[float]:
    return None if x is None or not np.isfinite(x) else float(x)


def summary_features(ch: protocol.Characterisation) -> Dict[str, Optional[float]]:
    """The e-features of a cell (None where the protocol does not define them)."""
    out: Dict[str, Optional[float]] = {
        "rheobase_nA": ch.rheobase_nA,
        "fi_slope_hz_per_nA": protocol.fi_slope(ch.fi),
        "ohmic_input_resistance": features.input_resistance(ch.sweeps["probe"]),
        "voltage_base": features.efel_features(ch.sweeps["probe"], ["voltage_base"])[
            "voltage_base"],
    }
    sag = features.efel_features(ch.sweeps["sag"], ["sag_ratio1", "sag_amplitude"])
    out.update(sag)
    sweeps = ("rest",) if ch.outcome == "spontaneous" else SUMMARY_SWEEPS
    for name in sweeps:
        if name in ch.sweeps:
            for k, v in features.efel_features(ch.sweeps[name], features.SPIKE_FEATURES).items():
                out[f"{name}/{k}"] = v
    return {k: _finite(v) for k, v in out.items()}


def save_traces(ch: protocol.Characterisation, path: Path) -> None:
    """All sweeps of the protocol, float32, every TRACE_EVERY-th step."""
    arrays = {}
    for name, tr in ch.sweeps.items():
        arrays[f"{name}.t"] = np.asarray(tr.t[::TRACE_EVERY], np.float32)
        arrays[f"{name}.v"] = np.asarray(tr.v[::TRACE_EVERY], np.float32)
        arrays[f"{name}.stim"] = np.asarray([tr.amp, tr.start, tr.end], np.float64)
    arrays["fi"] = np.asarray(ch.fi, np.float64).reshape(-1, 2)
    arrays["search"] = np.asarray(ch.search, np.float64).reshape(-1, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_characterisation(path: Path, measured: dict) -> protocol.Characterisation:
    """The protocol's result back from a traces file (what the e-type rules read)."""
    z = np.load(path)
    sweeps = {}
    for key in z.files:
        if key.endswith(".stim"):
            name = key[:-5]
            amp, start, end = (float(x) for x in z[key])
            sweeps[name] = protocol.Trace(z[f"{name}.t"].astype(np.float64),
                                          z[f"{name}.v"].astype(np.float64), amp, start, end)
    return protocol.Characterisation(
        measured["outcome"], (measured.get("efeatures") or {}).get("rheobase_nA"), sweeps,
        [tuple(x) for x in z["fi"].tolist()], [tuple(x) for x in z["search"].tolist()],
        measured.get("dt_ms", protocol.DT_MS))


def cache_key(job: dict, files: Dict[str, str], tag: str = "measure") -> str:
    """Key of a cell's measurement. ``tag`` "etype-1" gives the key results were
    stored under before the firing class left the cache (still read)."""
    h = hashlib.sha256()
    for part in (protocol.PROTOCOL_VERSION, tag, job["cell_id"],
                 repr(bool(job.get("repair"))),
                 repr(float(job["temperature_c"])), repr(float(job.get("dt_ms", protocol.DT_MS)))):
        h.update(part.encode() + b"\0")
    if _gates(job) != nrn.GATES_AS_EXPORTED:  # absent from the keys of earlier builds
        h.update(f"gates={_gates(job)}".encode() + b"\0")
    for digest in sorted(files.values()):
        h.update(digest.encode())
    return h.hexdigest()[:24]


def _gates(job: dict) -> str:
    return job.get("gates") or nrn.GATES_AS_EXPORTED


def unsupported(job: dict) -> Optional[str]:
    """Why a cell cannot go through the NEURON protocol at all, or None."""
    if job.get("kind", "cells") not in MORPHOLOGICAL:
        return (f"{job['cell_id']} is a point-neuron cell ({job['kind']}); the NEURON "
                f"protocol characterises cells with a morphology (<cell>, <cell2CaPools>) only")
    return None


def check_model(job: dict) -> tuple:
    """(NeuroML to define beside the cell, repairs made) or ExportFailed naming what is
    missing (see ``repairs``)."""
    missing = repairs.missing_concentration_models(job["file"], job["cell_id"],
                                                   job.get("allow", ()))
    if not missing:
        return "", []
    names = ", ".join(f"species {m.species!r} -> {m.model!r}" for m in missing)
    if not job.get("repair"):
        raise ExportFailed(job["name"], f"the cell names concentration models no included "
                           f"file defines ({names}); --fill-missing-ca-dynamics defines "
                           f"them with Hay et al. 2011's defaults")
    if not repairs.defines_hay_type(job["file"], job.get("allow", ())):
        raise ExportFailed(job["name"], f"the cell names concentration models no included "
                           f"file defines ({names}), and its files do not define "
                           f"{repairs.HAY_TYPE} to fill them with")
    return repairs.hay_defaults(missing), [
        f"{m.model}: {repairs.HAY_TYPE} with defaults {repairs.HAY_DEFAULTS}" for m in missing]


def simulate(job: dict, cache: Path):
    """Export, compile, run the protocol, measure and classify
    -> (the measured part of a row, the Characterisation)."""
    where = f"{job['file']}\0{job['cell_id']}\0{job['temperature_c']}\0{job.get('repair')}"
    work = cache / "export" / hashlib.sha256(where.encode()).hexdigest()[:16]
    if unsupported(job):
        raise ExportFailed(job["name"], unsupported(job))
    extra, repaired = check_model(job)
    exported = nrn.export(job["file"], job["cell_id"], job["temperature_c"], work, extra)
    if _gates(job) == nrn.GATES_EXPONENTIAL:
        exported = nrn.with_exponential_gates(exported)
    lib = nrn.compile_mechanisms(exported.mods, cache, job["name"])
    dt = float(job.get("dt_ms", protocol.DT_MS))
    cell = nrn.NeuronCell(exported, lib, job["temperature_c"], dt)
    try:
        ch = protocol.characterise(cell, dt)
    except SimulationFailed:
        raise
    except Exception as e:  # eFEL or NEURON failing on odd voltages: this cell only
        raise SimulationFailed(job["name"], f"{type(e).__name__}: {e}") from None
    measured = {"outcome": ch.outcome, "efeatures": summary_features(ch),
                "fi": ch.fi, "search": ch.search, "dt_ms": dt, "gates": _gates(job),
                "n_sections": len(exported.sections), "soma_section": exported.soma,
                "repairs": repaired}
    return measured, ch


def run(job: dict) -> dict:
    """One job -> its report row (also written to DIR/rows/NAME.json)."""
    from graphs import convert_file, save_cg
    from graphs.errors import ConversionError

    t0 = time.time()
    out, cache, name = Path(job["out"]), Path(job["cache"]), job["name"]
    row = {k: job.get(k) for k in ("name", "file", "cell_id", "temperature_c",
                                   "temperature_from", "labels", "variant_of", "factors",
                                   "family")}
    row["granularity"] = job.get("granularity", "section")
    row["protocol_version"] = protocol.PROTOCOL_VERSION
    try:
        try:
            cg = convert_file(job["file"], job.get("granularity", "section"),
                              allow=job.get("allow", ()))
        except ConversionError as e:
            raise ConversionFailed(name, str(e)) from None
        key = cache_key(job, cg.meta["files"])
        row["cache_key"] = key
        hit = cache / "results" / f"{key}.json"
        traces = out / "traces" / f"{name}.npz"
        legacy = cache / "results" / f"{cache_key(job, cg.meta['files'], 'etype-1')}"
        if not hit.is_file() and legacy.with_suffix(".json").is_file() \
                and legacy.with_suffix(".npz").is_file():
            hit.write_bytes(legacy.with_suffix(".json").read_bytes())
            (cache / "results" / f"{key}.npz").write_bytes(legacy.with_suffix(".npz").read_bytes())
        if hit.is_file() and (cache / "results" / f"{key}.npz").is_file():
            measured = json.loads(hit.read_text())
            traces.parent.mkdir(parents=True, exist_ok=True)
            traces.write_bytes((cache / "results" / f"{key}.npz").read_bytes())
            row["cached"] = True
        else:
            measured, ch = simulate(job, cache)
            save_traces(ch, traces)
            hit.parent.mkdir(parents=True, exist_ok=True)
            (cache / "results" / f"{key}.npz").write_bytes(traces.read_bytes())
            hit.write_text(json.dumps(measured))
            row["cached"] = False
        cls = etype.classify(load_characterisation(traces, measured))
        measured.update(etype=cls["etype"], etype_rule=cls["rule"], etype_sweep=cls["sweep"])
        row.update(measured)
        row["status"] = measured["outcome"]
        row["characterised"] = True
        row["traces"] = str(traces)
        labels = {**(job.get("labels") or {}), "etype": etype.ETYPES.index(measured["etype"]),
                  "etype_name": measured["etype"], "outcome": measured["outcome"],
                  "efeatures": measured["efeatures"], "source_cell": job.get("variant_of") or name,
                  "family": job.get("family") or job.get("variant_of") or name,
                  "factors": job.get("factors"), "temperature_c": job["temperature_c"],
                  "repairs": measured.get("repairs") or []}
        npz = out / "graphs" / f"{name}.npz"
        save_cg(dataclasses.replace(cg, meta=dict(cg.meta, labels=labels)), npz)
        row.update(npz=str(npz), n_nodes=cg.n_nodes, n_edges=cg.n_edges, sha256=cg.meta["files"])
    except CellError as e:
        row.update(status=e.stage, characterised=False,
                   error={"type": type(e).__name__, "stage": e.stage, "message": str(e)})
    except Exception as e:  # anything unforeseen is this cell's failure, not the batch's
        row.update(status="simulation", characterised=False,
                   error={"type": type(e).__name__, "stage": "simulation",
                          "message": f"{name}: {type(e).__name__}: {e}"})
    row["seconds"] = round(time.time() - t0, 2)
    marker = out / "rows" / f"{name}.json"
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".partial")
    tmp.write_text(json.dumps(row))
    tmp.replace(marker)
    return row


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text())
    row = run(job)
    return 0 if row["characterised"] else 1


if __name__ == "__main__":
    sys.exit(main())
