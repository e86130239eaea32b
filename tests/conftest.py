"""Shared fixtures: the third-party corpus in ../shared/neuroml and NeuroML writers.

The suite shares one persistent XLA compilation cache (a fresh temporary folder
per session, inherited by the train.py subprocesses), so the many runs that
compile the same small models (resume, two processes) compile them once. glibc malloc
and the XLA CPU flag are set as train.py sets them (``bgan_jax.runtime.allocator.keep_heap``,
``bgan_jax.runtime.xla_cpu.set_flags``; the train.py subprocesses inherit the flag).
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="bgan-jax-xla-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)

import pytest

from bgan_jax.runtime.allocator import keep_heap
from bgan_jax.runtime.xla_cpu import set_flags

keep_heap()  # the suite's jitted steps keep their scratch memory mapped, as train.py's do
set_flags()  # and are compiled as train.py's are (before any jax computation)

REPO = Path(__file__).resolve().parents[1]
SHARED_NEUROML = REPO.parent / "shared" / "neuroml"

NML_HEADER = ('<neuroml xmlns="http://www.neuroml.org/schema/neuroml2" '
              'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="{id}">\n')


def nml(body: str, doc_id: str = "test") -> str:
    """A NeuroML2 document around ``body``."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + NML_HEADER.format(id=doc_id) + body + "\n</neuroml>\n"


@pytest.fixture
def write_nml(tmp_path):
    """write_nml(name, body) -> path of a NeuroML2 file in tmp_path."""

    def write(name: str, body: str) -> Path:
        path = tmp_path / name
        path.write_text(nml(body))
        return path

    return write


@pytest.fixture(scope="session")
def shared_neuroml() -> Path:
    if not (SHARED_NEUROML / "MANIFEST.tsv").is_file():
        pytest.skip("../shared/neuroml (third-party NeuroML corpus) is not beside this "
                    "clone; CI has it")
    return SHARED_NEUROML
