"""The NeuroML2 example models that pyNeuroML ships inside its jNeuroML jar.

They are the embedded default input of ``python -m graphs convert`` and part
of the test corpus on machines without ``../shared``.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path


def jnml_jar() -> Path:
    from pyneuroml.utils.misc import get_path_to_jnml_jar

    return Path(get_path_to_jnml_jar())


def bundled_examples_dir(dest=None) -> Path:
    """Extract ``examples/*.nml`` from the jNeuroML jar (once) and return the folder."""
    jar = jnml_jar()
    base = Path(dest) if dest else Path(tempfile.gettempdir()) / f"bgan-jax-{jar.stem}"
    target = base / "examples"
    with zipfile.ZipFile(jar) as zf:
        names = [n for n in zf.namelist() if n.startswith("examples/") and n.endswith(".nml")]
        if not all((base / n).is_file() for n in names):
            for n in names:
                zf.extract(n, base)
    return target
