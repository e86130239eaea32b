"""Compiled mechanisms: a .mod file compiled in one set is not compiled again in
another (``nrn._reuse_objects``), and the set built from kept objects loads and runs."""

import subprocess
import sys

import pytest

from bnnsim.ephys import nrn

pytest.importorskip("neuron")

_MOD = """NEURON {{ SUFFIX {name} NONSPECIFIC_CURRENT i RANGE g, e }}
UNITS {{ (mA) = (milliamp) (mV) = (millivolt) }}
PARAMETER {{ g = {g} (S/cm2) e = -70 (mV) }}
ASSIGNED {{ v (mV) i (mA/cm2) }}
BREAKPOINT {{ i = g * (v - e) }}
"""


def _mods(folder, **g):
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, value in g.items():
        path = folder / f"{name}.mod"
        path.write_text(_MOD.format(name=name, g=value))
        out.append(path)
    return out


def test_a_mod_compiled_before_is_reused_and_the_set_runs(tmp_path, monkeypatch):
    reused = []
    real = nrn._reuse_objects
    monkeypatch.setattr(nrn, "_reuse_objects", lambda *a: reused.append(real(*a)) or reused[-1])
    first = nrn.compile_mechanisms(_mods(tmp_path / "a", leaka=0.001, leakb=0.002), tmp_path)
    second = nrn.compile_mechanisms(_mods(tmp_path / "b", leaka=0.001, leakc=0.003), tmp_path)
    assert reused == [0, 1]  # leaka's objects came from the first set
    assert first != second and second.is_file()
    # the second library registers both mechanisms and they compute what they say
    code = (f"from neuron import h; h.nrn_load_dll({str(second)!r}); s = h.Section(); "
            "s.insert('leaka'); s.insert('leakc'); print(s(0.5).leaka.g, s(0.5).leakc.g)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=nrn.neuron_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["0.001", "0.003"]


_JNML_GATES = """DERIVATIVE states {
    rates()
    m_q' = rate_m_q 
    h_q' = rate_h_q 
    concentration' = rate_concentration
}

PROCEDURE rates() {
    h_tau = 1/(( h_alpha + h_beta ) *  h_rateScale ) ? evaluable
    rate_m_q = ( m_inf  -  m_q ) /  m_tau ? Note units of all quantities used here need to be consistent!
    rate_h_q = ( h_inf  -  h_q ) /  h_tau ? Note units of all quantities used here need to be consistent!
    rate_concentration = iCa / (2 * Faraday * shellVolume) - ((concentration - restingConc) / decayConstant)
}
"""


def test_exponential_gates_rewrites_each_gate_and_nothing_else():
    text, n = nrn.exponential_gates(_JNML_GATES)
    assert n == 2
    assert "    m_q' = (m_inf - m_q) / m_tau\n" in text
    assert "    h_q' = (h_inf - h_q) / h_tau\n" in text
    assert "    concentration' = rate_concentration\n" in text  # not a gate: left alone
    assert text.count("rate_h_q = ( h_inf  -  h_q ) /  h_tau") == 1  # the PROCEDURE stays
    assert nrn.exponential_gates(text) == (text, 0)  # idempotent
