"""Several processes (hosts) training one model through ``jax.distributed``.

Start the same ``train.py`` command in every process with JAX's variables
(JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID); ``initialize``
joins them. Then ``jax.device_count()`` counts every process's devices, the
epoch plan is made for all of them, and each process builds only its own
``local_slots()`` of every global step (the same global batch as one process
with that many devices); gradients are summed across all of them by ``pmap``.
"""

from __future__ import annotations

import os

import jax

ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


class DistributedSetupError(RuntimeError):
    """The JAX_* variables do not describe a job the processes can join."""


def initialize() -> None:
    """Join the job the JAX_* variables describe (nothing when they are unset; once).
    Without JAX_NUM_PROCESSES / JAX_PROCESS_ID, JAX detects them from the cluster (SLURM,
    Open MPI, TPU pods)."""
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not address or jax.distributed.is_initialized():
        return
    try:
        given = {name: int(os.environ[var]) for name, var in
                 (("num_processes", "JAX_NUM_PROCESSES"), ("process_id", "JAX_PROCESS_ID"))
                 if os.environ.get(var)}
        jax.distributed.initialize(address, **given)
    except (ValueError, RuntimeError) as err:
        raise DistributedSetupError(f"cannot join the job at JAX_COORDINATOR_ADDRESS={address} "
                                    f"(JAX_NUM_PROCESSES, JAX_PROCESS_ID: integers): {err}"
                                    ) from None


def is_primary() -> bool:
    """Process 0 writes metrics, tables and run files; every process saves checkpoints."""
    return jax.process_index() == 0


def local_slots() -> range:
    """This process's positions in a step's list of ``jax.device_count()`` device batches."""
    n = jax.local_device_count()
    return range(jax.process_index() * n, (jax.process_index() + 1) * n)


class SingleProcessOnly(RuntimeError):
    """A kind of run that cannot be split over processes was started in several."""


def require_single_process(what: str) -> None:
    """For runs that cannot be split over processes: one clear line instead of wrong
    results (every process would train the same thing and write the same files)."""
    if jax.process_count() > 1:
        raise SingleProcessOnly(f"{what} trains in one process; got {jax.process_count()} processes "
                         "(unset JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES)")
