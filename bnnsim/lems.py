"""LEMS runs through jNeuroML and their event files: the one home of that format.

jNeuroML writes ``EventOutputFile`` selections as ``id time_s`` lines (format
ID_TIME). ``bnnsim`` reads them to check itself against jNeuroML; TAVRNN reads
them as spike recordings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np


def read_event_file(path) -> Tuple[np.ndarray, np.ndarray]:
    """(ids [S] int, times [S] ms) of a jNeuroML ``id time_s`` event file; raises
    ``ValueError`` saying what is wrong (no events, not two numeric columns)."""
    try:
        data = np.loadtxt(path, ndmin=2)
    except ValueError as err:
        raise ValueError(f"not an 'id time' event file: {err}") from None
    if data.size == 0:
        raise ValueError("no events")
    if data.shape[1] != 2:
        raise ValueError(f"expected 2 columns (id time_s), got {data.shape[1]}")
    return data[:, 0].astype(np.int64), data[:, 1] * 1e3


def read_spikes(path: Path, n: int) -> list[list[float]]:
    """Per neuron 0..n-1, its spike times in ms (an empty file: no spikes)."""
    times: list[list[float]] = [[] for _ in range(n)]
    if Path(path).stat().st_size == 0:
        return times
    for i, t in zip(*read_event_file(path)):
        times[int(i)].append(float(t))
    return times


class JNeuroMLError(RuntimeError):
    """jNeuroML (Java) is missing or the simulation failed."""


def run_jneuroml(lems: Path, max_memory: str = "1G", timeout: float = 600) -> None:
    """Run a LEMS file with the jNeuroML jar that pyNeuroML ships (needs ``java``)."""
    import shutil
    import subprocess

    from graphs.examples import jnml_jar

    java = shutil.which("java")
    if java is None:
        raise JNeuroMLError("java is not installed; jNeuroML needs a Java runtime")
    lems = Path(lems)
    out = subprocess.run([java, f"-Xmx{max_memory}", "-Djava.awt.headless=true", "-jar",
                          str(jnml_jar()), lems.name, "-nogui"], cwd=lems.parent,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-5:])
        raise JNeuroMLError(f"jNeuroML failed on {lems} (exit {out.returncode}):\n{tail}")
