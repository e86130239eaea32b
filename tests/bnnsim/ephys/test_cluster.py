"""Cells on a real Dask cluster: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1, started and stopped here (needs NEURON, like the other
cell builds)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bnnsim.ephys import dataset
from tests.bnnsim.ephys.cells import write_cells

distributed = pytest.importorskip("distributed")
KEYS = ("name", "status", "characterised", "etype", "efeatures", "family", "split",
        "variant_of", "factors")


def _dask(*args, env=None, log=None):
    return subprocess.Popen([sys.executable, "-m", "distributed.cli." + args[0], *args[1:]],
                            stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


@pytest.fixture
def cluster(tmp_path):
    """(scheduler address, {worker name: process}); everything stopped afterwards."""
    sched_file = tmp_path / "scheduler.json"
    env = dict(os.environ, BGAN_JAX_CACHE=str(tmp_path / "worker-cache"))
    log = open(tmp_path / "dask.log", "wb")
    procs = {"scheduler": _dask("dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                "--no-dashboard", "--scheduler-file", str(sched_file),
                                env=env, log=log)}
    for name in ("w1", "w2"):
        procs[name] = _dask("dask_worker", "--scheduler-file", str(sched_file), "--name", name,
                            "--nthreads", "1", "--no-dashboard", "--no-nanny",
                            "--host", "127.0.0.1", env=env, log=log)
    try:
        deadline = time.time() + 120
        while not sched_file.is_file() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, procs
    finally:
        # workers first: a worker whose scheduler is gone waits out its close (30 s and more)
        for name in ("w1", "w2", "scheduler"):
            p = procs[name]
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        log.close()


def _rows(report):
    return {r["name"]: {k: r.get(k) for k in KEYS} for r in report["cells"] + report["variants"]}


def test_cluster_build_equals_local_build(tmp_path, cluster):
    address, _ = cluster
    cells = write_cells(tmp_path / "cells")
    paths = [cells["passive"], cells["unexportable"]]
    local = dataset.build_cells(paths, tmp_path / "local", n_variants=1, workers=2,
                                cache_dir=tmp_path / "cache-local", progress=False)
    remote = dataset.build_cells(paths, tmp_path / "remote", n_variants=1,
                                 cache_dir=tmp_path / "cache-client", progress=False,
                                 scheduler=address)
    assert _rows(remote) == _rows(local)
    assert remote["outcomes"] == local["outcomes"] == {"no_spikes": 1, "export": 1}
    assert remote["variant_outcomes"] == {"no_spikes": 1}
    # written where a local build writes them: graphs, traces, and the client's cache
    for r in remote["cells"] + remote["variants"]:
        if r["characterised"]:
            assert Path(r["npz"]).parent == tmp_path / "remote" / "graphs"
            assert Path(r["npz"]).is_file() and Path(r["traces"]).is_file()
            assert (tmp_path / "cache-client" / "results" / f"{r['cache_key']}.npz").is_file()


def test_a_worker_killed_mid_cell_loses_nothing(tmp_path, cluster, monkeypatch):
    address, procs = cluster
    cells = write_cells(tmp_path / "cells")
    paths = [cells["passive"], cells["pacemaker"]]
    written = Counter()
    write_row = dataset._write_row

    def counted(out, row):
        written[row["name"]] += 1
        write_row(out, row)

    monkeypatch.setattr(dataset, "_write_row", counted)
    result = {}
    build = threading.Thread(target=lambda: result.update(dataset.build_cells(
        paths, tmp_path / "ds", cache_dir=tmp_path / "cache", progress=False,
        scheduler=address)))
    build.start()
    killed = None
    with distributed.Client(address) as watcher:
        deadline = time.time() + 300
        while killed is None and time.time() < deadline and build.is_alive():
            busy = {w: tasks for w, tasks in watcher.processing().items() if tasks}
            info = watcher.scheduler_info()["workers"]
            for addr in busy:
                name = info.get(addr, {}).get("name")
                if name in ("w1", "w2"):
                    time.sleep(1.0)  # the cell's own process has started
                    os.killpg(procs[name].pid, signal.SIGKILL)
                    killed = name
                    break
            time.sleep(0.05)
    build.join(timeout=600)
    assert killed is not None, "no worker was busy to kill"
    assert not build.is_alive()
    assert result["characterised"] == {"cells": 2, "of": 2, "share": 1.0}
    assert {r["status"] for r in result["cells"]} == {"no_spikes", "spontaneous"}
    assert set(written) == {r["name"] for r in result["cells"]}
    assert all(n == 1 for n in written.values())  # each row written once
