"""Every kind of run the library trains and analyses: ``kind -> Kind``.

``train.py`` finds the kind of a ``--model``; ``analyze.py`` reads the kind a
workdir's config.json records. Adding a model means adding its ``entry.py``
here, nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

from bgan_jax.bgan.entry import ENTRY as BGAN
from bgan_jax.runs.kind import Kind
from bgan_jax.runs.workdir import RunDirError, read_kind
from bgan_jax.snn.entry import ENTRY as SNN
from bgan_jax.tavrnn.entry import ENTRY as TAVRNN

KINDS: Dict[str, Kind] = {k.name: k for k in (BGAN, TAVRNN, SNN)}
MODELS: Dict[str, Kind] = {m: k for k in KINDS.values() for m in k.models}


def kind_of_model(model: str) -> Kind:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; one of {sorted(MODELS)}")
    return MODELS[model]


def kind_of_run(workdir) -> Kind:
    """The kind recorded in ``workdir/config.json``; ``RunDirError`` if there is none."""
    name = read_kind(workdir)
    if name not in KINDS:
        raise RunDirError(f"{Path(workdir) / 'config.json'}: unknown kind {name!r}; one of "
                          f"{sorted(KINDS)}")
    return KINDS[name]
