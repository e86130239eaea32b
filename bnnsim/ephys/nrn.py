"""NeuroML cell -> NEURON, the way the NeuroML community does it, then driven from Python.

1. ``export``: a one-cell network (at the model's temperature) is written
   beside a LEMS file and handed to jNeuroML's ``-neuron`` exporter (the jar
   pyNeuroML ships): a hoc template for the cell and one .mod per channel.
2. ``compile_mechanisms``: the .mod files are compiled once per distinct set
   (content hash) with the ``nrnivmodl`` of the NEURON wheel, and cached;
   variants of a cell share their original's mechanisms.
   A cell whose voltage goes non-finite is run again with its gates written in
   the form NEURON's ``cnexp`` integrates exactly (``exponential_gates``).
3. ``NeuronCell``: loads the mechanisms and template into this process,
   settles the cell once, saves the state (``Snapshot``) and restores it
   exactly for every sweep of the protocol, so no sweep pays the settling again
   and none depends on the sweep before it.

NEURON registers mechanisms by name per process, and two models may define
different channels of the same name: each cell is simulated in a process of
its own (``bnnsim.ephys.dataset`` does so).
"""

from __future__ import annotations

import fcntl
import importlib.util
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from bnnsim.ephys import features, protocol
from bnnsim.ephys.errors import CompileFailed, ExportFailed, NonFiniteVoltage, SimulationFailed

JNML_TIMEOUT_S = 900
COMPILE_TIMEOUT_S = 900
CHUNK_MS = 50.0  # a sweep that may stop at its first spike looks for one this often
GATES_AS_EXPORTED = "as exported"
GATES_EXPONENTIAL = "exponential"


class Exported(NamedTuple):
    """What jNeuroML wrote for one cell."""

    directory: Path
    hoc: Path  # the cell's template file
    template: str  # hoc template name (the cell id)
    mods: tuple  # [M] Path of every .mod file
    soma: str  # section to clamp and record (first of the soma group)
    sections: tuple  # every section name


def neuron_env() -> Dict[str, str]:
    """Environment for NEURON's tools: no GUI, the wheel's data as NEURONHOME, its
    scripts first on PATH and as NEURON_HOME (for jNeuroML's own -neuron -compile)."""
    env = dict(os.environ)
    env.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    spec = importlib.util.find_spec("neuron")  # not imported: it would start NEURON here
    if spec is not None and spec.origin:
        home = Path(spec.origin).parent / ".data" / "share" / "nrn"
        if home.is_dir():
            env.setdefault("NEURONHOME", str(home))
    bindir = Path(sysconfig.get_path("scripts"))
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    if (bindir / "nrniv").exists():  # where jNeuroML looks for bin/nrniv
        env.setdefault("NEURON_HOME", str(bindir.parent))
    return env


def _wrapper(cell_file: Path, cell_id: str, temperature_c: float, extra: str = "") -> str:
    return f"""<neuroml xmlns="http://www.neuroml.org/schema/neuroml2" id="ephys_net">
  <include href="{cell_file}"/>
{extra}
  <network id="ephys_net" type="networkWithTemperature" temperature="{temperature_c} degC">
    <population id="pop" component="{cell_id}" type="populationList" size="1">
      <instance id="0"><location x="0" y="0" z="0"/></instance>
    </population>
  </network>
</neuroml>
"""


_LEMS = """<Lems>
  <Target component="sim"/>
  <Include file="Cells.xml"/><Include file="Networks.xml"/><Include file="Simulation.xml"/>
  <Include file="ephys_net.nml"/>
  <Simulation id="sim" length="1ms" step="0.025ms" target="ephys_net"/>
</Lems>
"""


def _hoc_header(hoc: Path) -> dict:
    """The JSON description jNeuroML writes at the top of a cell template."""
    text = hoc.read_text()
    m = re.search(r"/\*\s*(\{.*?\})\s*\*/", text, re.S)
    return json.loads(m.group(1)) if m else {}


def _soma_section(header: dict) -> str:
    sections = [s["name"] for s in header.get("sections", [])]
    if not sections:
        raise ValueError("the exported template has no sections")
    for group in header.get("groups", []):
        if group.get("name") == "soma_group" and group.get("sections"):
            return group["sections"][0]
    for name in sections:
        if "soma" in name.lower():
            return name
    return sections[0]


def export(cell_file, cell_id: str, temperature_c: float, workdir,
           extra_components: str = "") -> Exported:
    """Run jNeuroML's NEURON export on a one-cell network into ``workdir``
    (``extra_components``: NeuroML defined beside the cell, see ``repairs``)."""
    from graphs.examples import jnml_jar

    cell_file = Path(cell_file).resolve()
    work = Path(workdir)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "ephys_net.nml").write_text(_wrapper(cell_file, cell_id, temperature_c,
                                                 extra_components))
    (work / "LEMS_ephys.xml").write_text(_LEMS)
    java = shutil.which("java")
    if java is None:
        raise ExportFailed(cell_id, "java is not installed; jNeuroML needs a Java runtime")
    try:
        out = subprocess.run([java, "-Xmx2G", "-Djava.awt.headless=true", "-jar",
                              str(jnml_jar()), "LEMS_ephys.xml", "-neuron", "-nogui"],
                             cwd=work, capture_output=True, text=True, timeout=JNML_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ExportFailed(cell_id, f"jNeuroML export of {cell_file} took over "
                           f"{JNML_TIMEOUT_S} s") from None
    hoc = work / f"{cell_id}.hoc"
    if out.returncode == 0 and not hoc.is_file():
        raise ExportFailed(cell_id, f"jNeuroML wrote no cell template ({hoc.name}) for "
                           f"{cell_file}")
    if out.returncode != 0:
        lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
        errs = [ln for ln in lines if "rror" in ln or "xception" in ln] or lines
        tail = " | ".join(ln.strip()[:300] for ln in errs[-3:])
        raise ExportFailed(cell_id, f"jNeuroML could not export {cell_file} to NEURON "
                           f"(exit {out.returncode}): {tail}")
    try:
        header = _hoc_header(hoc)
        soma = _soma_section(header)
    except (ValueError, json.JSONDecodeError) as e:
        raise ExportFailed(cell_id, f"exported template {hoc} is unusable: {e}") from None
    sections = tuple(s["name"] for s in header.get("sections", []))
    return Exported(work, hoc, cell_id, tuple(sorted(work.glob("*.mod"))), soma, sections)


_GATE_ODE = re.compile(r"^(?P<indent>[ \t]*)(?P<q>\w+)' = rate_(?P=q)[ \t]*$", re.M)


def exponential_gates(mod_text: str) -> Tuple[str, int]:
    """A jNeuroML .mod with every gate in the form ``cnexp`` solves -> (text, gates changed).

    jNeuroML writes a gate as ``q' = rate_q``, with ``rate_q = (inf - q) / tau``
    computed in a PROCEDURE. ``cnexp`` sees no equation linear in ``q`` there
    and takes a forward Euler step, which diverges where ``dt > 2 tau`` (the
    Golgi cell's sodium inactivation below -75 mV: tau about 1 us). Written
    ``q' = (inf - q) / tau``, NEURON's Hodgkin-Huxley form, ``cnexp``
    integrates the gate exactly at the step's voltage. Other equations are left.
    """
    changed = 0

    def rewrite(m: "re.Match") -> str:
        nonlocal changed
        q = m.group("q")
        rate = re.search(rf"^[ \t]*rate_{q} = \(\s*(\w+)_inf\s+-\s+{q}\s*\)\s*/\s*\1_tau\b",
                         mod_text, re.M)
        if rate is None:
            return m.group(0)
        changed += 1
        gate = rate.group(1)
        return f"{m.group('indent')}{q}' = ({gate}_inf - {q}) / {gate}_tau"

    return _GATE_ODE.sub(rewrite, mod_text), changed


def with_exponential_gates(exported: Exported) -> Exported:
    """A copy of an export (beside it) whose .mod files have ``exponential_gates``."""
    target = exported.directory.with_name(exported.directory.name + "-exponential-gates")
    tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(exported.directory, tmp)
    for mod in tmp.glob("*.mod"):
        mod.write_text(exponential_gates(mod.read_text())[0])
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return exported._replace(directory=target, hoc=target / exported.hoc.name,
                             mods=tuple(sorted(target.glob("*.mod"))))


def mechanisms_key(mods: Sequence[Path]) -> str:
    """Content hash of a set of .mod files (names and bytes), plus the NEURON version."""
    import neuron

    h = hashlib.sha256(neuron.__version__.encode())
    for p in sorted(mods, key=lambda p: p.name):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def _library(directory: Path) -> Optional[Path]:
    found = sorted(directory.glob("*/libnrnmech.so")) + sorted(directory.glob("*/.libs/libnrnmech.so"))
    return found[0] if found else None


def _object_key(mod: Path) -> str:
    """Content hash of one .mod file (name and bytes) and the NEURON version."""
    import neuron

    h = hashlib.sha256(neuron.__version__.encode() + b"\0" + mod.name.encode() + b"\0")
    h.update(mod.read_bytes())
    return h.hexdigest()[:20]


def _reuse_objects(mods: Sequence[Path], target: Path, objects: Path) -> int:
    """Put every .mod's translated and compiled form kept from an earlier set where
    nrnivmodl's make looks for them, newer than the .mod, so make builds only the new
    ones and links -> how many were reused. A set differs from another in one calcium
    model or one channel (every Allen cell names its own ``CaDynamics``)."""
    sub = target / platform.machine()  # nrnivmodl's MODSUBDIR
    sub.mkdir(exist_ok=True)
    n = 0
    for mod in mods:
        kept = objects / _object_key(mod)
        if (kept / "ok").exists():
            for ext in (".cpp", ".o"):
                shutil.copy(kept / f"{mod.stem}{ext}", sub / f"{mod.stem}{ext}")  # mtime: now
            n += 1
    return n


def _keep_objects(mods: Sequence[Path], target: Path, objects: Path) -> None:
    """Keep each .mod's .cpp and .o of a successful build for later sets."""
    sub = target / platform.machine()
    for mod in mods:
        dest = objects / _object_key(mod)
        files = [sub / f"{mod.stem}{ext}" for ext in (".cpp", ".o")]
        if (dest / "ok").exists() or not all(f.is_file() for f in files):
            continue
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.partial")
        tmp.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, tmp / f.name)
        (tmp / "ok").write_text("")
        try:
            tmp.rename(dest)  # atomic; another process may have kept it first
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)


def compile_mechanisms(mods: Sequence[Path], cache_dir, cell: str = "cell") -> Optional[Path]:
    """Compiled mechanisms for ``mods`` -> path of libnrnmech.so, from the cache when
    the same set was compiled before (a file lock keeps parallel workers from
    compiling the same set twice); a .mod file compiled in any earlier set is not
    compiled again (``_reuse_objects``)."""
    if not mods:
        return None
    root = Path(cache_dir) / "mechanisms"
    root.mkdir(parents=True, exist_ok=True)
    target = root / mechanisms_key(mods)
    with open(root / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lib = _library(target) if (target / "ok").exists() else None
        if lib is not None:
            return lib
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        for p in mods:
            shutil.copy2(p, target / p.name)
        for p in mods:  # older than anything kept, so make trusts what is reused
            os.utime(target / p.name, (0, 0))
        _reuse_objects(mods, target, root / "objects")
        nrnivmodl = Path(sysconfig.get_path("scripts")) / "nrnivmodl"
        exe = str(nrnivmodl) if nrnivmodl.exists() else (shutil.which("nrnivmodl") or "nrnivmodl")
        try:
            out = subprocess.run([exe], cwd=target, capture_output=True, text=True,
                                 timeout=COMPILE_TIMEOUT_S, env=neuron_env())
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CompileFailed(cell, f"nrnivmodl could not run: {e}") from None
        lib = _library(target)
        if out.returncode != 0 or lib is None:
            lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
            errs = [ln for ln in lines if "rror" in ln] or lines
            raise CompileFailed(cell, f"nrnivmodl failed on {[p.name for p in mods]} "
                                f"(exit {out.returncode}): {' | '.join(errs[-3:])}")
        _keep_objects(mods, target, root / "objects")
        (target / "ok").write_text("")
        return lib


def _range_pointers(h):
    """A PtrVector on every RANGE variable of every mechanism on every segment."""
    refs = []
    for sec in h.allsec():
        for seg in sec:
            for mech in seg:
                for var in mech:
                    try:
                        refs.append(getattr(seg, f"_ref_{var.name()}"))
                    except (AttributeError, LookupError, RuntimeError, TypeError):
                        continue  # not a plain double (a POINTER): holds no state
    pointers = h.PtrVector(max(len(refs), 1))
    for i, ref in enumerate(refs):
        pointers.pset(i, ref)
    return pointers


class Snapshot:
    """The cell's state now, restored exactly: NEURON's SaveState and every RANGE variable.

    SaveState holds STATE variables, voltages, ion concentrations and time, not
    ASSIGNED variables, and the mechanisms jNeuroML exports compute a gate's
    conductance factor (``m_fcond = m_q^3``, ASSIGNED) in the state update. After a
    bare restore the first step uses the factors the previous sweep left, so each
    sweep would depend on the one before it (docs/real-cells.md). Written back from
    a gathered copy (``PtrVector``, about 0.1 ms), they make a restored run continue
    as the saved one did, to the bit.
    """

    def __init__(self, h, pointers):
        self._pointers = pointers
        self._state = h.SaveState()
        self._state.save()
        self._values = h.Vector(int(pointers.size()))
        pointers.gather(self._values)

    def restore(self) -> None:
        self._state.restore()
        self._pointers.scatter(self._values)


class NeuronCell:
    """One exported cell loaded into this process's NEURON, settled at rest.

    Implements ``protocol.Simulator``: every sweep starts from a ``Snapshot`` of the
    settled cell, so its numbers depend on its amplitude alone, not on the sweeps
    before it. Every step opens with the same BASE_MS of the settled cell and no
    input: that is simulated once, and steps start from its end.
    """

    def __init__(self, exported: Exported, mechanisms: Optional[Path], temperature_c: float,
                 dt_ms: float = protocol.DT_MS):
        os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
        from neuron import h

        self.name = exported.template
        self.h = h
        try:
            if mechanisms is not None:
                h.nrn_load_dll(str(mechanisms))
            h.load_file("stdrun.hoc")
            h.load_file(str(exported.hoc))
            self.cell = getattr(h, exported.template)()
        except (RuntimeError, AttributeError) as e:
            raise SimulationFailed(self.name, f"NEURON could not load {exported.hoc}: {e}") \
                from None
        self._keep = [h.FInitializeHandler(0, self.cell.set_initial_v),
                      h.FInitializeHandler(1, self.cell.set_initial_ion_properties)]
        self.soma = getattr(self.cell, exported.soma)
        self.stim = h.IClamp(self.soma(0.5))
        self.stim.amp = 0.0
        self._v = h.Vector().record(self.soma(0.5)._ref_v)
        self._t = h.Vector().record(h._ref_t)
        h.CVode().cache_efficient(1)  # memory layout only: the same voltages, to the bit
        h.celsius = float(temperature_c)
        h.dt = float(dt_ms)
        h.steps_per_ms = 1.0 / h.dt
        self.dt = float(dt_ms)
        h.finitialize()
        self._run(protocol.SETTLE_MS)
        self.t0 = float(h.t)
        pointers = _range_pointers(h)
        self.settled = Snapshot(h, pointers)
        h.frecord_init()
        self._run(self.t0 + protocol.BASE_MS)
        self.baseline = self._trace(0.0, 0.0, 0.0)  # [BASE_MS / dt + 1] samples
        self.at_step_onset = Snapshot(h, pointers)

    def _run(self, until_ms: float) -> None:
        try:
            self.h.continuerun(until_ms)
        except RuntimeError as e:
            raise SimulationFailed(self.name, f"NEURON stopped: {e}") from None

    def _trace(self, amp: float, delay: float, duration: float,
               head: Optional[protocol.Trace] = None) -> protocol.Trace:
        """What was recorded since the last restore, after ``head`` (a trace that ends
        where this recording starts)."""
        t = np.array(self._t) - self.t0  # copies: NEURON reuses the vectors
        v = np.array(self._v)
        if not np.all(np.isfinite(v)):
            raise NonFiniteVoltage(self.name, f"voltage is not finite in the {amp} nA sweep")
        if head is not None:
            t = np.concatenate([head.t[:-1], t])
            v = np.concatenate([head.v[:-1], v])
        return protocol.Trace(t, v, float(amp), delay, delay + duration)

    def _sweep(self, amp: float, delay: float, duration: float, total: float,
               first_spike: bool = False, step: bool = False) -> protocol.Trace:
        """``step``: start at the end of the shared baseline (``delay`` is BASE_MS)."""
        h = self.h
        head = self.baseline if step else None
        (self.at_step_onset if step else self.settled).restore()
        h.frecord_init()
        self.stim.delay = self.t0 + delay
        self.stim.dur = duration
        self.stim.amp = amp

        def trace() -> protocol.Trace:
            return self._trace(amp, delay, duration, head)

        if not first_spike:
            self._run(self.t0 + total)
            return trace()
        # a spike in the window is known once it has repolarised: by the window's end
        # plus the longest spike; chunked runs take the same steps as one run
        horizon = min(total, delay + duration + features.SPIKE_MAX_WIDTH_MS)
        until = 0.0 if head is None else delay  # chunk ends on the same grid either way
        while until < horizon:
            until = min(until + CHUNK_MS, horizon)
            self._run(self.t0 + until)
            if float(self._v.max()) > features.SPIKE_THRESHOLD_MV:
                tr = trace()
                if features.spike_count(tr) > 0:
                    return tr
        return trace()

    def rest(self, duration_ms: float) -> protocol.Trace:
        return self._sweep(0.0, 0.0, duration_ms, duration_ms)

    def step(self, amp_nA: float, duration_ms: float,
             first_spike: bool = False) -> protocol.Trace:
        return self._sweep(amp_nA, protocol.BASE_MS, duration_ms,
                           protocol.BASE_MS + duration_ms + protocol.TAIL_MS, first_spike,
                           step=True)

