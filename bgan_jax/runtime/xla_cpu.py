"""The XLA CPU compiler flag that train.py, analyze.py and the benchmarks set.

Why (measured: docs/performance.md): jaxlib
0.10's CPU compiler hands dots *and* large reductions and elementwise ops to YNNPACK
fusions by default. A reduction taken by YNNPACK cannot fuse with the gathers and adds
that feed it, so every mechanism's per-pair logits first write a [P, H, D] tensor
(k[s] + ek) and read it back, and each LayerNorm's reductions run apart from their
inputs. With computations on the calling thread (``allocator.keep_heap``), XLA's own
fusions with its Eigen dots are faster than YNNPACK even for the dots, so the flag
turns YNNPACK fusions off (``--xla_cpu_experimental_ynn_fusion_type=``, empty).

The flag is experimental, and XLA aborts at start on a flag it does not know, so it
is set only for the jaxlib versions it was measured on (``MEASURED_ON``), only when
``XLA_FLAGS`` does not choose a YNNPACK fusion type itself, and never under
``BGAN_JAX_XLA_FLAGS=system``. XLA reads ``XLA_FLAGS`` when jax starts its first
backend, so set it before any jax computation (importing jax first is fine).
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Mapping, Optional

OPT_OUT = "BGAN_JAX_XLA_FLAGS"  # "system": leave XLA_FLAGS as it is
FLAG = "--xla_cpu_experimental_ynn_fusion_type="  # empty: no YNNPACK fusions
MEASURED_ON = ("0.10.2",)  # jaxlib versions that know FLAG and were measured with it


def jaxlib_version() -> Optional[str]:
    """The installed jaxlib's version, read without importing it (None if absent)."""
    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return None


def flags_env(env: Mapping[str, str] = os.environ,
              jaxlib: Optional[str] = None) -> Optional[dict]:
    """A copy of ``env`` with ``FLAG`` added to its XLA_FLAGS, or None when it is not
    to be added: opted out, an unmeasured jaxlib, or a fusion type already chosen."""
    jaxlib = jaxlib_version() if jaxlib is None else jaxlib
    flags = env.get("XLA_FLAGS", "")
    if (env.get(OPT_OUT, "") == "system" or jaxlib not in MEASURED_ON
            or FLAG.split("=")[0] in flags):
        return None
    return {**env, "XLA_FLAGS": " ".join(f for f in (flags, FLAG) if f)}


def set_flags() -> bool:
    """Add ``FLAG`` to this process's XLA_FLAGS (see ``flags_env``); returns whether it
    did. For entry points and benchmark children, before jax starts a backend."""
    env = flags_env()
    if env is None:
        return False
    os.environ["XLA_FLAGS"] = env["XLA_FLAGS"]
    return True
