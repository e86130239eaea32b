"""A labelled dataset of real cells: every cell characterised, converted and split.

``DIR/graphs/NAME.npz``: the cell's CG, labels in ``meta["labels"]``
(``etype`` index into ``etype.ETYPES``, ``efeatures``, the authors'
``dendrite_type`` / ``layer`` / ``cre_line``, ``repository``, ``source_cell``
and, for a variant, its ``factors``). ``DIR/traces/NAME.npz``: every sweep of
the protocol. ``DIR/variants/``: the variants' NeuroML. ``DIR/report.json``:
every cell's outcome (``ok``, ``no_spikes``, ``spontaneous``, ``block``, or the
failed stage: ``conversion``, ``export``, ``compile``, ``simulation``), class
balance, splits, timing, the dt check. ``DIR/manifest.json``: protocol
version and the sha256 of every input file.

Splits are by family (``families``: cells that are one model in all but
morphology or density jitter, and a variant with its source), so a test score
measures cells whose biophysics the model never saw. The cells of
``ood_repository`` (and any family one of them is in) are the ``ood`` split
(the by-repository out-of-distribution test); the other families go
70/15/15 to train/val/test within each e-type (a family's most common) by a
hash of the family's name.

Each cell runs in a process of its own (``run_cell``), ``workers`` at a time;
a build killed at any point resumes where it stopped (a cell counts as done
once its row is written), and results are cached by content across datasets.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tqdm import tqdm

from bnnsim.dataset import default_cache_dir, stratified_split
from bnnsim.ephys import etype, families, nrn, protocol, variants
from bnnsim.ephys.corpus import CellSource, author_labels, discover
from bnnsim.ephys.errors import NonFiniteVoltage
from bnnsim.ephys.nrn import neuron_env
from bnnsim.ephys.run_cell import MORPHOLOGICAL, unsupported
from graphs.schema import GRANULARITIES
from graphs.storage import atomic_write, write_manifest

CELL_TIMEOUT_S = 3600.0
DEFAULT_OOD_REPOSITORY = "OpenSourceBrain/BahlEtAl2012_ReducedL5PyrCell"
VARIANT_KINDS = MORPHOLOGICAL  # point cells have no channel densities


def job_of(src: CellSource, out: Path, cache: Path, **extra) -> dict:
    """One cell's job (``extra``: repair, granularity, family, allow, variant fields)."""
    return {"name": src.name, "file": src.file, "cell_id": src.cell_id, "kind": src.kind,
            "temperature_c": src.temperature_c, "temperature_from": src.temperature_from,
            "labels": author_labels(src), "out": str(out), "cache": str(cache),
            "variant_of": None, "factors": None, "family": src.name, **extra}


def corpus_families(sources: Sequence[CellSource]) -> Dict[str, str]:
    """{cell name: family} (``families``), from each cell's biophysics."""
    return families.families([(s.name, s.repository, s.biophysics) for s in sources])


def _read_row(out: Path, name: str) -> Optional[dict]:
    try:
        row = json.loads((out / "rows" / f"{name}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return row if isinstance(row, dict) and "status" in row else None


def _non_finite(row: dict) -> bool:
    return (row.get("error") or {}).get("type") == NonFiniteVoltage.__name__


def finished(out: Path, name: str, job: Optional[dict] = None) -> Optional[dict]:
    """The row of a cell a previous build finished (None: do it). A row written with
    another family or other author labels than ``job`` now has (the corpus grew, or an
    older build) is redone: from the cache, only its graph is written again."""
    row = _read_row(out, name)
    if row is None:
        return None
    if job is not None and any(row.get(k) != job.get(k) for k in ("family", "labels")):
        return None
    if row.get("protocol_version", "ephys-1") != protocol.PROTOCOL_VERSION:
        return None  # measured under another protocol (rows before ephys-2 do not say)
    if "dt_fallback" in row or (_non_finite(row) and "fallbacks" not in row):
        return None  # the numerics fallbacks were not tried, or not these ones
    if row.get("characterised") and not Path(row.get("npz") or "").is_file():
        return None
    return row


def _failed_row(job: dict, stage: str, message: str) -> dict:
    row = {k: job.get(k) for k in ("name", "file", "cell_id", "temperature_c", "labels",
                                   "variant_of", "factors", "family")}
    row.update(status=stage, characterised=False, protocol_version=protocol.PROTOCOL_VERSION,
               error={"type": "CellError", "stage": stage, "message": f"{job['name']}: {message}"})
    return row


def fallbacks(job: dict) -> List[dict]:
    """The jobs to try, in order, when ``job``'s voltage goes non-finite: first the
    same step with the gates integrated exactly (``nrn.exponential_gates``: the
    export's forward Euler diverges on a gate faster than dt / 2), then also
    ``protocol.DT_FALLBACK_MS`` (stiff calcium or other non-gate equations)."""
    exact = dict(job, gates=nrn.GATES_EXPONENTIAL)
    out = [] if job.get("gates") == nrn.GATES_EXPONENTIAL else [exact]
    if float(job.get("dt_ms", protocol.DT_MS)) > protocol.DT_FALLBACK_MS:
        out.append(dict(exact, dt_ms=protocol.DT_FALLBACK_MS))
    return out


def _numerics(job: dict) -> str:
    return (f"dt {float(job.get('dt_ms', protocol.DT_MS))} ms, gates "
            f"{job.get('gates') or nrn.GATES_AS_EXPORTED}")


def run_job(job: dict, timeout: float = CELL_TIMEOUT_S) -> dict:
    """Run one cell in a fresh process; a crash or timeout is that cell's outcome. A cell
    whose voltage goes non-finite is run again with each of ``fallbacks`` until one
    is finite; the row lists what was tried (``fallbacks``). A cell another build into
    the same folder finished since this one listed its jobs is read back, not rerun."""
    done = finished(Path(job["out"]), job["name"], job)
    if done is not None:
        return dict(done, resumed=True)
    row, tried, current = _run_once(job, timeout), [], job
    for retry in fallbacks(job):
        if not _non_finite(row):
            break
        tried.append(f"{_numerics(current)}: {row['error']['message']}")
        current, row = retry, _run_once(retry, timeout)
    if tried:
        row["fallbacks"] = tried
        _write_row(Path(job["out"]), row)
    return row


def _run_once(job: dict, timeout: float) -> dict:
    out = Path(job["out"])
    why = unsupported(job)
    if why:  # known before any process starts
        row = _failed_row(job, "export", why)
        row["seconds"] = 0.0
        _write_row(out, row)
        return row
    jobfile = out / "jobs" / f"{job['name']}.json"
    jobfile.parent.mkdir(parents=True, exist_ok=True)
    jobfile.write_text(json.dumps(job))
    env = neuron_env()
    env.setdefault("JAX_PLATFORMS", "cpu")
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, "-m", "bnnsim.ephys.run_cell", str(jobfile)],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=str(jobfile.parent))  # not DIR: DIR/graphs would shadow ours
    except subprocess.TimeoutExpired:
        row = _failed_row(job, "simulation", f"did not finish within {timeout:.0f} s")
    else:
        row = _read_row(out, job["name"])
        if row is None:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            row = _failed_row(job, "simulation",
                              f"the cell's process died (exit {proc.returncode}): {tail}")
    if "seconds" not in row:
        row["seconds"] = round(time.time() - t0, 2)
    _write_row(out, row)
    return row


def _write_row(out: Path, row: dict) -> None:
    text = json.dumps(row).encode()
    atomic_write(out / "rows" / f"{row['name']}.json", lambda f: f.write(text))


def run_jobs(jobs: Sequence[dict], workers: int, desc: str, progress: bool = True,
             timeout: float = CELL_TIMEOUT_S, finished_only: bool = False,
             scheduler: Optional[str] = None) -> List[dict]:
    """Every job's row, in job order; finished ones are read back, the rest run (or,
    with ``finished_only``, reported as ``pending``, not characterised): ``workers``
    at a time here, or one task each on the Dask cluster at ``scheduler``
    (``cluster``)."""
    rows: Dict[str, dict] = {}
    todo = []
    for job in jobs:
        row = finished(Path(job["out"]), job["name"], job)
        written = (row or {}).get("granularity", "section")
        asked = job.get("granularity", "section")
        if row is not None and row.get("characterised") and written != asked:  # its CG
            raise ValueError(f"{job['out']}: {job['name']} was written at {written} "
                             f"granularity, not {asked}: build into a new folder")
        if row is not None:
            rows[job["name"]] = dict(row, resumed=True)  # done by an earlier invocation
        elif finished_only:
            rows[job["name"]] = _failed_row(job, "pending", "not simulated yet (the "
                                            "report was written with --finished-only)")
        else:
            todo.append(job)
    bar = tqdm(total=len(jobs), initial=len(rows), desc=desc, unit="cell", disable=not progress)

    def done(row: dict) -> None:
        rows[row["name"]] = row
        bar.set_postfix_str(f"{row['name'][:30]}: {row['status']}")
        bar.update(1)

    if scheduler:
        from bnnsim.ephys.cluster import run_on_cluster

        run_on_cluster(todo, scheduler, timeout, done, run_job, _write_row, _failed_row)
    else:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for fut in as_completed([pool.submit(run_job, job, timeout) for job in todo]):
                done(fut.result())
    bar.close()
    return [rows[j["name"]] for j in jobs]


def variant_jobs(sources: Sequence[CellSource], rows: Sequence[dict], k: int, out: Path,
                 cache: Path, repair: bool = False, granularity: str = "section",
                 allow: Sequence = ()) -> tuple:
    """(jobs, failed rows) for ``k`` variants of every characterised multi-compartment
    cell; a variant is in its source's family."""
    jobs, failed = [], []
    for src, row in zip(sources, rows):
        if not row.get("characterised") or src.kind not in VARIANT_KINDS:
            continue
        for i in range(k):
            name = f"{src.name}__v{i}"
            path = out / "variants" / f"{name}.cell.nml"
            base = job_of(src, out, cache, variant_of=src.name, repair=repair,
                          granularity=granularity, family=row.get("family") or src.name,
                          allow=variants.variant_allow(src.file, allow))
            base.update(name=name, file=str(path), temperature_from=src.temperature_from,
                        source_file=src.file)
            try:
                done = finished(out, name, base)
                factors = done.get("factors") if done else \
                    variants.write_variant(src.file, src.cell_id, path, name, allow)
                base["factors"] = factors
                jobs.append(base)
            except Exception as e:  # noqa: BLE001 - this variant's outcome, batch goes on
                failed.append(_failed_row(base, "conversion", f"variant not written: {e}"))
    return jobs, failed


def assign(rows: Sequence[dict], ood_repository: Optional[str]) -> Dict[str, str]:
    """{source cell name: split}, one split per family (a row without one is its own);
    variants are looked up by their ``variant_of``."""
    ok = [r for r in rows if r.get("characterised")]
    family = {r["name"]: r.get("family") or r["name"] for r in ok}
    ood = {family[r["name"]] for r in ok if ood_repository
           and (r.get("labels") or {}).get("repository") == ood_repository}
    etypes: Dict[str, Counter] = {}
    for r in ok:
        etypes.setdefault(family[r["name"]], Counter())[r["etype"]] += 1
    members = [(f, min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0],
                hashlib.sha256(f.encode()).hexdigest())
               for f, c in etypes.items() if f not in ood]
    split_of = {**stratified_split(members), **{f: "ood" for f in ood}}
    return {name: split_of[f] for name, f in family.items()}


def class_balance(rows: Sequence[dict]) -> dict:
    """{split: {etype: count}} over characterised cells (variants included)."""
    out = {}
    for split in ("train", "val", "test", "ood"):
        c = Counter(r["etype"] for r in rows if r.get("split") == split)
        out[split] = {e: c.get(e, 0) for e in etype.ETYPES}
    return out


def dt_check(sources, rows, out: Path, cache: Path, n: int, workers: int, progress: bool,
             timeout: float, repair: bool = False, scheduler: Optional[str] = None) -> List[dict]:
    """Re-run ``n`` characterised cells at half dt: how much do the results move?"""
    # cells at the default step only: halving a fallback step is another comparison
    ok = [s for s, r in zip(sources, rows) if r.get("status") == "ok" and not r.get("fallbacks")]
    ok.sort(key=lambda s: hashlib.sha256(s.name.encode()).hexdigest())
    sample = ok[:n]
    if not sample:
        return []
    half = out / "dt_check"
    jobs = [job_of(s, half, cache, dt_ms=protocol.DT_MS / 2, repair=repair) for s in sample]
    fine = run_jobs(jobs, workers, "half-dt check", progress, timeout, scheduler=scheduler)
    by_name = {r["name"]: r for r in rows}
    result = []
    for s, f in zip(sample, fine):
        base = by_name[s.name]
        entry = {"name": s.name, "dt_ms": protocol.DT_MS, "half_dt_ms": protocol.DT_MS / 2,
                 "status_half": f["status"]}
        for key in ("rheobase_nA", "x1.5/mean_frequency", "x1.5/AP_width"):
            a = (base.get("efeatures") or {}).get(key)
            b = (f.get("efeatures") or {}).get(key)
            entry[key] = [a, b]
            entry[f"{key} rel_change"] = (None if a in (None, 0) or b is None
                                          else round(abs(b - a) / abs(a), 4))
        entry["etype"] = [base.get("etype"), f.get("etype")]
        result.append(entry)
    return result


def build_cells(paths: Sequence, out_dir, n_variants: int = 0, workers: int = 2,
                cache_dir=None, ood_repository: Optional[str] = DEFAULT_OOD_REPOSITORY,
                dt_check_cells: int = 0, progress: bool = True,
                timeout: float = CELL_TIMEOUT_S, repair: bool = False,
                finished_only: bool = False, granularity: str = "section",
                scheduler: Optional[str] = None, allow: Sequence = ()) -> dict:
    """Characterise every cell under ``paths`` (and ``n_variants`` variants of each);
    write the dataset to ``out_dir`` and return its report. ``finished_only``: simulate
    nothing, write the dataset of what earlier (interrupted) builds finished.
    ``granularity``: of the CGs written (``graphs.schema.GRANULARITIES``); the
    simulation does not depend on it, so a second build of the same cells at another
    granularity reads every measurement from the cache and only converts. ``allow``:
    folders outside each cell's tree its includes may read (``graphs.policy``)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, not {granularity!r}")
    t0 = time.time()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir).resolve() if cache_dir else default_cache_dir() / "ephys"
    allow = [str(Path(a).resolve()) for a in allow]
    sources, unreadable = discover(paths, allow)
    family = corpus_families(sources)
    jobs = [job_of(s, out, cache, repair=repair, granularity=granularity,
                   family=family[s.name], allow=allow) for s in sources]
    rows = run_jobs(jobs, workers, "cells", progress, timeout, finished_only, scheduler)
    t_cells = time.time() - t0
    vjobs, vfailed = variant_jobs(sources, rows, n_variants, out, cache, repair, granularity,
                                  allow)
    vrows = run_jobs(vjobs, workers, "variants", progress, timeout, finished_only,
                     scheduler) + vfailed
    t_variants = time.time() - t0 - t_cells
    checks = dt_check(sources, rows, out, cache, 0 if finished_only else dt_check_cells,
                      workers, progress, timeout, repair, scheduler)
    splits = assign(rows, ood_repository)
    for r in rows + vrows:
        r["split"] = splits.get(r.get("variant_of") or r["name"], "none") \
            if r.get("characterised") else "none"
    every = rows + vrows
    n_char = sum(r["characterised"] for r in rows)

    def per_hour(rs, seconds):  # cells this invocation simulated, per hour of its wall time
        fresh = [r for r in rs if not r.get("cached") and not r.get("resumed")]
        return round(3600 * len(fresh) / seconds, 1) if fresh and seconds > 0 else None

    report = {
        "protocol_version": protocol.PROTOCOL_VERSION, "rules_version": etype.RULES_VERSION,
        "paths": [str(Path(p).resolve()) for p in paths], "n_cells": len(rows),
        "n_variants": len(vrows), "variants_per_cell": n_variants,
        "ood_repository": ood_repository, "fill_missing_ca_dynamics": repair,
        "granularity": granularity,
        "finished_only": finished_only,
        "repaired": [r["name"] for r in rows if r.get("repairs")],
        "characterised": {"cells": n_char, "of": len(rows),
                          "share": round(n_char / len(rows), 4) if rows else None},
        "families": {"cells": len(set(family.values())),
                     "characterised": len({r["family"] for r in rows if r["characterised"]}),
                     "rule": {"same_rtol": families.SAME_RTOL,
                              "jitter_factor": families.JITTER_FACTOR}},
        "outcomes": dict(Counter(r["status"] for r in rows)),
        "variant_outcomes": dict(Counter(r["status"] for r in vrows)),
        "failures": [{"name": r["name"], "file": r["file"], "family": r.get("family"),
                      **r["error"]}
                     for r in every if not r["characterised"]],
        "unreadable": [{"file": u.file, "type": type(u.error).__name__, "message": str(u.error)}
                       for u in unreadable],
        "etypes": dict(Counter(r["etype"] for r in rows if r["characterised"])),
        "splits": dict(Counter(r["split"] for r in every if r["characterised"])),
        "class_balance": class_balance(every),
        "timing": {"wall_s": round(time.time() - t0, 1), "cells_s": round(t_cells, 1),
                   "variants_s": round(t_variants, 1), "workers": workers,
                   "scheduler": scheduler,
                   "cached": sum(bool(r.get("cached")) for r in every),
                   "resumed": sum(bool(r.get("resumed")) for r in every),
                   "cell_seconds": round(sum(r.get("seconds") or 0 for r in rows), 1),
                   "variant_seconds": round(sum(r.get("seconds") or 0 for r in vrows), 1),
                   "cells_per_hour": per_hour(rows, t_cells),
                   "variants_per_hour": per_hour(vrows, t_variants)},
        "dt_check": checks,
        "cells": rows, "variants": vrows,
    }
    write_manifest(out, [{"file": r["file"], "npz": r.get("npz"), "status": r["status"],
                          "error": r.get("error"), "sha256": r.get("sha256")} for r in every],
                   extra={"protocol_version": protocol.PROTOCOL_VERSION,
                          "rules_version": etype.RULES_VERSION,
                          "protocol": protocol_constants()})
    text = json.dumps(report, indent=1).encode()
    atomic_write(out / "report.json", lambda f: f.write(text))
    return report


def protocol_constants() -> dict:
    """Every number of the protocol (what a version stands for), for the manifest."""
    return {k: getattr(protocol, k) for k in dir(protocol)
            if k.isupper() and isinstance(getattr(protocol, k), (int, float, str, tuple))}

