"""Helpers for tests that start, kill and resume train.py in subprocesses."""

import signal
import subprocess
import time
from pathlib import Path

import orbax.checkpoint as ocp


def saved_steps(workdir) -> list:
    ckpts = Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) if ckpts.is_dir() else []


def kill_at_first_checkpoint(cmd, workdir, env, timeout: float = 600) -> list:
    """Start ``cmd``, SIGKILL it once a checkpoint is on disk; the steps it left."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not saved_steps(workdir):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    return saved_steps(workdir)


def latest_checkpoint(workdir):
    """(saved tree, step) of the newest checkpoint in ``workdir/checkpoints``."""
    mngr = ocp.CheckpointManager(Path(workdir, "checkpoints").absolute())
    return mngr.restore(mngr.latest_step()), mngr.latest_step()


def damage_checkpoint(step_dir) -> None:
    """Truncate every data file of one saved step, as an interrupted copy would."""
    files = [p for p in Path(step_dir).rglob("*") if p.is_file() and p.stat().st_size > 0]
    assert files, step_dir
    for p in files:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
