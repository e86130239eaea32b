"""What a kind of run is: the registry entry ``train.py`` and ``analyze.py`` dispatch on.

Each model package has an ``entry.py`` with one ``Kind``; ``bgan_jax.registry``
lists them. A new model is one new entry, not a branch in each script. The
callables import their model lazily, so listing the kinds stays cheap.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable, FrozenSet, List, Optional, Tuple, Type


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    """Written as ``"kind"`` in every config.json of this kind."""
    models: Tuple[str, ...]
    """The ``train.py --model`` names this kind trains."""
    description: str
    config_class: Callable[[], Type]
    """The run config dataclass (extends ``runs.LoopConfig``)."""
    make_config: Callable[[str, Optional[str]], Any]
    """(--model, --task or None) -> the default config."""
    train: Callable[[Any, Optional[str], Path, bool, bool], List[str]]
    """(config, --data or None, workdir, resume, progress) -> lines for the terminal."""
    analyze: Callable[[Path, argparse.Namespace], List[str]]
    """(workdir, analyze.py's arguments) -> lines for the terminal."""
    errors: Callable[[], Tuple[Type[BaseException], ...]]
    """User errors (bad data, bad files): one line on stderr and exit 1."""
    accepts: FrozenSet[str] = frozenset()
    """Which of the optional command-line inputs apply: task, data, nml, split."""
    data_help: str = ""
