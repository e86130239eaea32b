"""The XLA CPU flag: added only where it is known and wanted, and taken by the compiler."""

import os
import subprocess
import sys

import pytest

from bgan_jax.runtime import xla_cpu

KNOWN = xla_cpu.MEASURED_ON[0]


def test_flags_env_adds_the_flag_once_and_keeps_other_flags():
    assert xla_cpu.flags_env({}, jaxlib=KNOWN) == {"XLA_FLAGS": xla_cpu.FLAG}
    env = xla_cpu.flags_env({"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "A": "1"},
                            jaxlib=KNOWN)
    assert env == {"XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {xla_cpu.FLAG}",
                   "A": "1"}
    assert xla_cpu.flags_env(env, jaxlib=KNOWN) is None


@pytest.mark.parametrize("env, jaxlib", [
    ({}, "0.0.1"),  # a jaxlib it was not measured on may not know the flag: XLA would abort
    ({}, None),
    # the user's own fusion-type choice
    ({"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=individual_dot"}, KNOWN),
    ({xla_cpu.OPT_OUT: "system"}, KNOWN),
])
def test_flags_env_leaves_the_environment_alone(env, jaxlib, monkeypatch):
    monkeypatch.setattr(xla_cpu, "jaxlib_version", lambda: None)
    assert xla_cpu.flags_env(env, jaxlib=jaxlib) is None


# A gather feeding a product and a sum over the last axis, as each mechanism's logits, and
# a dot: prints how many of the compiled program's YNNPACK fusions hold a reduction, and
# how many hold a dot.
REDUCTIONS_IN_YNN = """
import os, re, sys
from bgan_jax.runtime.allocator import tune
tune()
print(os.environ.get("XLA_FLAGS", "-"))
import jax, jax.numpy as jnp
f = jax.jit(lambda x, i, w: jnp.sum(x[i] * x[i[::-1]], axis=-1) @ w)
args = jnp.ones((4096, 4, 32)), jnp.arange(8192) % 4096, jnp.ones((4, 64))
hlo = f.lower(*args).compile().as_text()
calls = re.findall(r"kind=kCustom, calls=(%[\\w.\\-]+).*__ynn_fusion", hlo)
bodies = {m.group(1): m.group(2) for m in re.finditer(r"\\n(%[\\w.\\-]+) [^\\n]*\\{\\n(.*?)\\n\\}", hlo, re.S)}
print(sum(" reduce(" in bodies.get(c, "") for c in calls))
print(sum(" dot(" in bodies.get(c, "") for c in calls))
"""


def _run(code, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_cpu.OPT_OUT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**base, **env}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split("\n")


@pytest.mark.skipif(xla_cpu.jaxlib_version() not in xla_cpu.MEASURED_ON,
                    reason="the flag is only set on the jaxlib versions it was measured on")
def test_entry_point_tuning_sets_the_flag_and_keeps_ynnpack_out():
    flags, sums, dots = _run(REDUCTIONS_IN_YNN)[:3]
    assert flags == xla_cpu.FLAG and (sums, dots) == ("0", "0")
    flags, sums, dots = _run(REDUCTIONS_IN_YNN, **{xla_cpu.OPT_OUT: "system"})[:3]
    assert flags == "-" and int(sums) > 0 and int(dots) > 0  # jaxlib's default: YNNPACK
