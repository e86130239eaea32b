"""The sparse attention's CPU kernel (``pair_kernel.cc``): build it, load it, call it.

Why (docs/performance.md): on CPU, most of a BGAN block's time is XLA's code for the
per-pair gathers, products and scatters, which rewriting the jax code did not move.
The kernel does one
mechanism's forward and backward pass receiver by receiver in C++, in the factored
form that needs no [P, H, D] edge key or value (``pair_kernel.cc`` says how), with the
same numbers as ``attention._projected`` up to float summation order.

It is compiled on first use with the system's C++ compiler for this CPU
(``-march=native``) against jaxlib's XLA FFI headers, into the cache directory
(``$BGAN_JAX_CACHE`` or ``~/.cache/bgan-jax``, ``kernels/``), keyed by the source,
flags, compiler, jaxlib and CPU, so a build is reused and never shared between
different machines. Where it cannot be built or loaded (no compiler, another OS),
``available()`` says so once in a warning and the model runs XLA's ops instead;
``BGAN_JAX_CPU_KERNEL=0`` (or ``Backend(cpu_kernel=False)``) never builds it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

SOURCE = Path(__file__).with_name("pair_kernel.cc")
OPT_OUT = "BGAN_JAX_CPU_KERNEL"  # "0": never build or use the kernel
COMPILER = "CXX"  # environment variable naming the C++ compiler (default: c++)
# Reassociation lets the compiler vectorise the dot products; no finite-math assumption.
FLAGS = ("-O3", "-march=native", "-std=c++17", "-fPIC", "-shared", "-fno-math-errno",
         "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math", "-w")
TARGETS = {"BganPairAttentionForward": "bgan_pair_attention_forward",
           "BganPairAttentionBackward": "bgan_pair_attention_backward"}


class KernelBuildError(RuntimeError):
    """The kernel could not be compiled or loaded (the message says why)."""


_STATE: dict = {}  # "lib": the loaded library, or "error": why there is none


def _cpu_id() -> str:
    """Model and feature flags of this CPU (a ``-march=native`` build runs only here)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [ln for ln in lines if ln.split(":")[0].strip() in ("model name", "flags")]
    return "\n".join(sorted(set(keep)))


def _jaxlib() -> str:
    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return jax.__version__


def library_path(cache: Optional[Path] = None) -> Path:
    """Where this source, built with this compiler for this CPU and jaxlib, lives."""
    compiler = os.environ.get(COMPILER, "c++")
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        version = "missing"
    key = hashlib.sha256("\0".join([
        SOURCE.read_text(), " ".join(FLAGS), compiler, version, _jaxlib(), _cpu_id(),
    ]).encode()).hexdigest()[:20]
    if cache is None:
        from bnnsim.dataset import default_cache_dir
        cache = default_cache_dir()
    return Path(cache) / "kernels" / f"pair_kernel-{key}.so"


def build(cache: Optional[Path] = None) -> Path:
    """Compile the kernel unless this build exists; returns the library's path.
    Raises ``KernelBuildError`` with the compiler's message when it fails."""
    target = library_path(cache)
    if target.exists():
        return target
    compiler = os.environ.get(COMPILER, "c++")
    if shutil.which(compiler) is None:
        raise KernelBuildError(f"no C++ compiler {compiler!r} on PATH (set ${COMPILER})")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / target.name  # then one rename: concurrent builds never clash
        cmd = [compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", str(out)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as err:
            raise KernelBuildError(f"{SOURCE.name}: {compiler} failed to run: {err}") from err
        if done.returncode != 0:
            tail = "\n".join(ln[:300] for ln in done.stderr.strip().splitlines()[-8:])
            raise KernelBuildError(f"{SOURCE.name}: {compiler} exited {done.returncode}:\n{tail}")
        os.replace(out, target)
    return target


def available() -> bool:
    """Whether the kernel is built and registered with XLA (built on the first call).
    Warns once, with the reason, when it cannot be."""
    if "lib" in _STATE or "error" in _STATE:
        return "lib" in _STATE
    if os.environ.get(OPT_OUT, "1") == "0":
        _STATE["error"] = f"{OPT_OUT}=0"
        return False
    try:
        lib = ctypes.cdll.LoadLibrary(str(build()))
        for symbol, name in TARGETS.items():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)),
                                        platform="cpu")
    except (KernelBuildError, OSError, AttributeError) as err:
        _STATE["error"] = str(err)
        warnings.warn(f"bgan_jax: the CPU attention kernel is not available ({err}); "
                      "running the sparse attention with XLA's ops instead (same numbers, "
                      "slower on CPU)", RuntimeWarning, stacklevel=2)
        return False
    _STATE["lib"] = lib
    return True


def usable(enabled: bool = True) -> bool:
    """Whether a model traced now should call the kernel: asked for, on a CPU backend,
    and built. (On a GPU or TPU the sparse path stays XLA's.)"""
    return enabled and jax.default_backend() == "cpu" and available()


# -- the attention, as ``attention._projected`` --------------------------------------

def _per_head(w: jnp.ndarray, h: int) -> jnp.ndarray:  # [de, H * D] -> [de, H, D]
    return w.reshape(w.shape[0], h, w.shape[1] // h)


def _f32(*shape) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(shape, jnp.float32)


@jax.custom_vjp
def attention(q, k, v, emb, w_key, w_value, s, r, ok, ok_self
              ) -> Tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """q, k, v [N, H, D]; emb [P, de]; w_key, w_value [de, H * D]; s, r [P] int32; ok [P],
    ok_self [N] bool -> (out [N, H, D], weights [P, H], self weights [N, H])."""
    return _attention_fwd(q, k, v, emb, w_key, w_value, s, r, ok, ok_self)[0]


def _attention_fwd(q, k, v, emb, w_key, w_value, s, r, ok, ok_self):
    n, h, d = q.shape
    qe = jnp.einsum("nhd,ehd->nhe", q, _per_head(w_key, h))  # [N, H, de]
    call = jax.ffi.ffi_call(TARGETS["BganPairAttentionForward"],
                            (_f32(n, h, d), _f32(n, h, emb.shape[1]), _f32(s.shape[0], h),
                             _f32(n, h)), vmap_method="sequential")
    out_v, agg, w_e, w_s = call(q, k, v, qe, emb, s, r, ok, ok_self)
    out = out_v + jnp.einsum("nhe,ehd->nhd", agg, _per_head(w_value, h))
    return (out, w_e, w_s), (q, k, v, qe, emb, w_key, w_value, s, r, ok, ok_self, agg,
                             w_e, w_s)


def _attention_bwd(res, cotangents):
    q, k, v, qe, emb, w_key, w_value, s, r, ok, ok_self, agg, w_e, w_s = res
    g_out, g_we, g_ws = cotangents  # [N, H, D], [P, H], [N, H]
    n, h, d = q.shape
    wk, wv = _per_head(w_key, h), _per_head(w_value, h)
    gv = jnp.einsum("nhd,ehd->nhe", g_out, wv)  # cotangent of agg: [N, H, de]
    call = jax.ffi.ffi_call(TARGETS["BganPairAttentionBackward"],
                            (_f32(n, h, d), _f32(n, h, emb.shape[1]), _f32(*emb.shape),
                             _f32(n, h, d), _f32(n, h, d)), vmap_method="sequential")
    dq, d_a, d_emb, dk, dv = call(q, k, v, qe, emb, s, r, ok, ok_self, w_e, w_s, g_out, gv,
                                  g_we, g_ws)
    dq = dq + jnp.einsum("nhe,ehd->nhd", d_a, wk)  # the edge key term's share
    d_wk = jnp.einsum("nhe,nhd->ehd", d_a, q).reshape(w_key.shape)
    d_wv = jnp.einsum("nhe,nhd->ehd", agg, g_out).reshape(w_value.shape)
    no_grads = tuple(np.zeros(x.shape, jax.dtypes.float0) for x in (s, r, ok, ok_self))
    return (dq, dk, dv, d_emb, d_wk, d_wv) + no_grads


attention.defvjp(_attention_fwd, _attention_bwd)
