"""glibc malloc tuning: the heap keeps its pages between steps, huge pages by one restart."""

import os
import subprocess
import sys

import pytest

from bgan_jax.runtime import allocator

glibc = pytest.mark.skipif(not allocator.enabled({}), reason="needs glibc on Linux")

# malloc + touch + free a 64 MiB block (over glibc's default mmap threshold) 3 times after
# a first round; prints the page faults those 3 rounds took
FAULTS = """
import ctypes, resource, sys
from bgan_jax.runtime.allocator import keep_heap
print(keep_heap())
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20
def step():
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)
    libc.free(p)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

# the same for a jitted call whose scratch (a [8192, 4096] float32 scatter output, 128
# MiB, read by two reductions) is over the 64 MiB a worker thread's malloc arena can hold
XLA_FAULTS = """
import resource
from bgan_jax.runtime.allocator import keep_heap
print(keep_heap())
import jax, jax.numpy as jnp
x, i = jnp.ones((64, 4096)), jnp.arange(64) * 128
f = jax.jit(lambda x, i: (lambda y: jnp.sum(jnp.tanh(y)) + jnp.max(y))(
    jnp.zeros((8192, 4096)).at[i].add(x)))
for _ in range(2):  # warm-up (with a persistent compilation cache, the 2nd call too)
    f(x, i).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    f(x, i).block_until_ready()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _run(code, **env):
    """stdout words of ``python -c code`` in this environment without malloc settings."""
    base = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", allocator.OPT_OUT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**base, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@glibc
def test_keep_heap_stops_the_page_faults_of_large_scratch_buffers():
    applied, tuned = _run(FAULTS)
    skipped, system = _run(FAULTS, BGAN_JAX_MALLOC="system")
    assert (applied, skipped) == ("True", "False")
    assert int(system) > 0
    assert int(tuned) * 10 < int(system), (tuned, system)


@glibc
def test_start_tunables_keep_the_heap_without_mallopt():
    """Started with the thresholds as tunables (no 2 GiB cap), keep_heap leaves them be."""
    applied, tuned = _run(FAULTS, GLIBC_TUNABLES=allocator.START_TUNABLES)
    assert applied == "True" and int(tuned) < 100, tuned
    assert allocator.START_TUNABLES.count(str(1 << 40)) == 2  # mmap and trim thresholds


@glibc
def test_keep_heap_keeps_xla_scratch_above_a_thread_arena_mapped():
    """Computations run on the calling thread, so XLA's scratch comes from the main arena."""
    applied, tuned = _run(XLA_FAULTS)
    skipped, system = _run(XLA_FAULTS, BGAN_JAX_MALLOC="system")
    assert (applied, skipped) == ("True", "False")
    assert int(system) > 1000, system  # 3 x 128 MiB mapped afresh: ~98k 4 KiB pages
    # at least two of the three calls reuse their scratch: on a loaded 2-core machine
    # one call in three was once seen mapping it afresh (65571 against 196717 faults)
    assert int(tuned) * 2 < int(system), (tuned, system)


@glibc
def test_hugepage_env_adds_the_tunable_once():
    assert allocator.hugepage_env({})["GLIBC_TUNABLES"] == allocator.START_TUNABLES
    env = allocator.hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "X": "1"})
    assert env == {"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{allocator.START_TUNABLES}",
                   "X": "1"}
    assert allocator.hugepage_env(env) is None
    assert allocator.hugepage_env({allocator.OPT_OUT: "system"}) is None


def test_child_env_modes():
    system = allocator.child_env("system", {"A": "1"})
    assert system == {"A": "1", allocator.OPT_OUT: "system"}
    assert "GLIBC_TUNABLES" not in system
    if allocator.enabled({}):
        assert allocator.child_env("tuned", {})["GLIBC_TUNABLES"] == allocator.START_TUNABLES
    with pytest.raises(ValueError, match="malloc must be"):
        allocator.child_env("fast")


@glibc
def test_tune_restarts_once_with_hugepages_unless_opted_out():
    code = ("from bgan_jax.runtime.allocator import tune; tune(); import os; "
            "print(os.environ.get('GLIBC_TUNABLES', '-'))")
    assert _run(code) == [allocator.START_TUNABLES]  # printed once: by the restarted process
    assert _run(code, GLIBC_TUNABLES="glibc.malloc.arena_max=2") == [
        f"glibc.malloc.arena_max=2:{allocator.START_TUNABLES}"]
    assert _run(code, **{allocator.OPT_OUT: "system"}) == ["-"]
