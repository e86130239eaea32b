"""glibc malloc settings that keep XLA's CPU scratch memory mapped between steps.

Why (measured: docs/performance.md): XLA's CPU runtime takes each jitted
call's scratch buffer (tens of MB for a BGAN block at 1k nodes, GBs at 64k) from
malloc and frees it when the call ends. glibc serves any allocation above its mmap
threshold (32 MiB at most unless set) with fresh pages from ``mmap`` and unmaps them
on free, so every step faults in and zeroes its whole scratch again: one block's
forward + backward took 2x as long at 560 nodes (37 MB of scratch) as at 500 (31 MB).
Serving such allocations from the heap and never trimming it keeps the pages between
steps (``keep_heap``); transparent huge pages for the heap (``glibc.malloc.hugetlb=1``,
read only at process start, hence ``hugepage_env`` and ``reexec_with_hugepages``) cut
the TLB misses of the large random gathers.

The heap only helps if XLA allocates from it. jax runs CPU computations on a worker
thread by default (async dispatch), and glibc gives each such thread its own arena,
whose heaps stop at 64 MiB: a larger scratch buffer is mapped afresh and unmapped
every call whatever the thresholds (one BGAN block at 16k nodes: ~870 huge-page faults
and ~150 ms of kernel time per step). ``keep_heap`` therefore also turns jax's CPU
async dispatch off (``jax_cpu_enable_async_dispatch``; XLA issue 18608 reports the
same switch helping elsewhere), so computations run on the calling thread and
allocate from the main arena, which the settings above keep. jax reads that switch
when it starts its CPU backend, so call ``keep_heap`` before any jax computation.

The cost: memory freed by a process is not handed back to the OS until it exits (its
resident size stays at its peak), which is what a training or benchmark process wants.
Setting ``BGAN_JAX_MALLOC=system`` turns all of this off. Only glibc on Linux is
touched; elsewhere every function here does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Mapping, Optional, Sequence

from bgan_jax.runtime.xla_cpu import set_flags

OPT_OUT = "BGAN_JAX_MALLOC"  # "system": leave malloc as it is
HUGEPAGES = "glibc.malloc.hugetlb=1"  # madvise(MADV_HUGEPAGE) on what malloc maps
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
INT_MAX = 2 ** 31 - 1  # mallopt takes an int: allocations above 2 GiB still use mmap
# ... so the restart also sets both thresholds as start-up tunables (size_t), for the
# scratch of large graphs (one block at 64k nodes: ~4 GB mapped afresh every step)
THRESHOLDS = ":".join(f"glibc.malloc.{t}_threshold={1 << 40}" for t in ("mmap", "trim"))
START_TUNABLES = f"{HUGEPAGES}:{THRESHOLDS}"  # what the restart adds to GLIBC_TUNABLES


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether this module may change malloc: glibc on Linux, and not opted out."""
    return sys.platform == "linux" and env.get(OPT_OUT, "") != "system" and _glibc() is not None


def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # glibc only (musl has no such symbol)
    except (OSError, AttributeError):
        return None
    return libc


def keep_heap() -> bool:
    """Serve large allocations from the heap and never trim it, process-wide, from now on
    (up to 2 GiB by ``mallopt``; any size when the process started with
    ``START_TUNABLES``), and run jax's CPU computations on the calling thread (its main
    arena; see the module docstring). Returns whether glibc took the malloc settings."""
    if not enabled():
        return False
    if "glibc.malloc.mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        kept = True  # glibc took the thresholds at start; mallopt would only lower them
    else:
        libc = _glibc()
        kept = bool(libc.mallopt(M_MMAP_THRESHOLD, INT_MAX)
                    and libc.mallopt(M_TRIM_THRESHOLD, INT_MAX))
    if kept:
        import jax  # here, not at the top: the module is imported before jax is wanted
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    return kept


def hugepage_env(env: Mapping[str, str] = os.environ) -> Optional[dict]:
    """A copy of ``env`` whose GLIBC_TUNABLES asks for huge pages and the thresholds over
    2 GiB (``START_TUNABLES``), or None when ``env`` already asks for huge pages, is opted
    out, or the platform is not glibc on Linux."""
    tunables = env.get("GLIBC_TUNABLES", "")
    if not enabled(env) or "glibc.malloc.hugetlb" in tunables:
        return None
    return {**env, "GLIBC_TUNABLES": ":".join(t for t in (tunables, START_TUNABLES) if t)}


def reexec_with_hugepages(argv: Optional[Sequence[str]] = None) -> None:
    """Restart this process with huge pages asked for (``os.execv``; returns only when no
    restart is needed or possible). For the top of a command-line entry point, before
    jax is imported; never call it from library code or tests."""
    env = hugepage_env()
    if env is None:
        return
    argv = list(argv if argv is not None else getattr(sys, "orig_argv", []))
    if not argv:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *argv[1:]], env)
    except OSError:  # the interpreter cannot be run again: go on without huge pages
        return


def tune(argv: Optional[Sequence[str]] = None) -> None:
    """What a command-line entry point calls first: the XLA CPU flag
    (``xla_cpu.set_flags``), huge pages (restarting the process once, see
    ``reexec_with_hugepages``), then ``keep_heap``."""
    set_flags()
    reexec_with_hugepages(argv)
    keep_heap()


def child_env(malloc: str = "tuned", env: Mapping[str, str] = os.environ) -> dict:
    """The environment for a child process that calls ``keep_heap``: malloc tuned as the
    command line tunes it (huge pages asked for), or left to the system (``"system"``,
    opted out), e.g. to measure what the tuning buys."""
    if malloc not in ("tuned", "system"):
        raise ValueError(f"malloc must be 'tuned' or 'system', got {malloc!r}")
    if malloc == "system":
        return {**env, OPT_OUT: "system"}
    return hugepage_env(env) or dict(env)
