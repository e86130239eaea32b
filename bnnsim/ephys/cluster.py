"""Cells on a Dask cluster: one task per cell, every result back to the client.

A worker runs its cell exactly as a local build does (``dataset.run_job``: a
process of its own, the step-size fallback) into a scratch folder, with a
cache of its own (``$BGAN_JAX_CACHE/ephys`` or ``~/.cache/bgan-jax/ephys`` on
that machine: compiled mechanisms and measurements stay there for its next
cells), and returns the row and the files it wrote. The client writes them
where a local build would (``DIR/rows``, ``graphs``, ``traces`` and the
client's cache), one row per cell as it arrives, so:

* a killed client resumes as a local build does (rows already written count);
* a worker that dies mid-cell has written nothing the client reads: the
  scheduler runs the cell again on another worker (Dask reschedules the tasks
  of a lost worker; ``ALLOWED_FAILURES`` deaths per task before it gives up,
  and then that cell's row says so and the build goes on).

Workers need this package installed and the corpus at the same path as the
client (variants are written again on the worker, from the source file and
their name, which seeds their factors).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Dict, Sequence

ALLOWED_FAILURES = 3  # worker deaths one cell may survive (Dask's allowed-failures)


def run_remote(job: dict, timeout: float, run_job: Callable) -> dict:
    """On a worker: one job in a scratch folder, by ``run_job`` (``dataset.run_job``)
    -> {"row", "files": {path: bytes}} (paths relative to the dataset folder,
    ``cache/...`` for the cache)."""
    from bnnsim.dataset import default_cache_dir
    from bnnsim.ephys import variants

    with tempfile.TemporaryDirectory(prefix="bgan-jax-cell-") as scratch:
        out = Path(scratch) / "out"
        cache = default_cache_dir() / "ephys"
        job = dict(job, out=str(out), cache=str(cache))
        if job.get("variant_of"):
            path = out / "variants" / f"{job['name']}.cell.nml"
            variants.write_variant(job["source_file"], job["cell_id"], path, job["name"],
                                   job.get("allow", ()))
            job["file"] = str(path)
        row = run_job(job, timeout)
        files = {}
        for sub in ("graphs", "traces"):
            f = out / sub / f"{job['name']}.npz"
            if f.is_file():
                files[f"{sub}/{f.name}"] = f.read_bytes()
        key = row.get("cache_key")
        for suffix in (".json", ".npz") if key else ():
            f = cache / "results" / f"{key}{suffix}"
            if f.is_file():
                files[f"cache/results/{f.name}"] = f.read_bytes()
        return {"row": row, "files": files}


def receive(result: dict, out: Path, cache: Path, write_row: Callable,
            variant_file=None) -> dict:
    """On the client: write a worker's files where a local build would, the row by
    ``write_row`` -> the row."""
    from graphs.storage import atomic_write

    for rel, data in result["files"].items():
        dest = cache / rel[len("cache/"):] if rel.startswith("cache/") else out / rel
        if rel.startswith("cache/") and dest.is_file():
            continue  # measured here before: same key, same content
        atomic_write(dest, lambda f, data=data: f.write(data))
    row = dict(result["row"])
    for key, sub in (("npz", "graphs"), ("traces", "traces")):
        if row.get(key):
            row[key] = str(out / sub / Path(row[key]).name)
    if variant_file is not None:
        row["file"] = str(variant_file)
    write_row(out, row)
    return row


def run_on_cluster(jobs: Sequence[dict], scheduler: str, timeout: float,
                   on_row: Callable[[dict], None], run_job: Callable, write_row: Callable,
                   failed_row: Callable) -> Dict[str, dict]:
    """Every job as one task on the cluster at ``scheduler`` -> {name: row}; ``on_row``
    is called as each row is written (the progress bar). ``run_job``, ``write_row``
    and ``failed_row`` are the local build's (``dataset``), which calls this."""
    import dask
    from distributed import Client, as_completed

    rows: Dict[str, dict] = {}
    if not jobs:
        return rows
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}), \
            Client(scheduler) as client:
        futures = {client.submit(run_remote, job, timeout, run_job, pure=False,
                                 key=f"cell-{job['name']}"): job for job in jobs}
        for fut in as_completed(futures):
            job = futures[fut]
            out, cache = Path(job["out"]), Path(job["cache"])
            try:
                row = receive(fut.result(), out, cache, write_row,
                              job["file"] if job.get("variant_of") else None)
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker: this cell's outcome
                row = failed_row(job, "simulation",
                                          f"the cluster could not run it: {type(e).__name__}: {e}")
                row["seconds"] = None
                write_row(out, row)
            rows[row["name"]] = row
            on_row(row)
    return rows
