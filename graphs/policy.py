"""Which files a model may make the front end read: its own tree, and what the user allows.

A NeuroML file names other files (``<include href>``, HDF5 external links). A model
downloaded from anywhere must not make the converter read another file of the user's
machine (a key, another project's data) into a graph, a report or an error message. So
every name a model gives is resolved (symlinks included) and must land inside

- the model's tree: the folder of the file the user named and up to
  ``PARENT_LEVELS`` folders above it (community models include
  ``../channels/x.nml`` and ``../../channels/x.nml``; none in ``../shared`` climbs
  further), never climbing to the filesystem root or to the user's home folder or
  above it; or
- a folder the user allowed on purpose (``--allow-path DIR``, ``allow=`` in Python).

Anything else is refused with ``OutsideModelTree`` naming the file, the line and the
path, before the target is opened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Tuple

from graphs.errors import OutsideModelTree

PARENT_LEVELS = 2  # folders above the named file's own that its includes may reach


def _climb_stops() -> Tuple[Path, ...]:
    """Folders the tree never climbs to: the filesystem root, home and home's parents."""
    home = Path.home().resolve()
    return (Path(home.anchor), home, *home.parents)


def model_tree(path, levels: int = PARENT_LEVELS) -> Path:
    """The folder a model named by ``path`` may read inside, by default."""
    folder = Path(path).resolve().parent
    stops = set(_climb_stops())
    for _ in range(levels):
        parent = folder.parent
        if parent == folder or parent in stops:
            break
        folder = parent
    return folder


@dataclass(frozen=True)
class ReadPolicy:
    """The folders a model's includes and links may resolve into (all resolved paths)."""

    roots: Tuple[Path, ...]

    @classmethod
    def for_model(cls, path, allow: Iterable = ()) -> "ReadPolicy":
        """The tree of the file the user named, widened by the folders in ``allow``."""
        return cls((model_tree(path), *(Path(a).resolve() for a in allow)))

    def _contains(self, path: Path) -> bool:
        return any(path == r or r in path.parents for r in self.roots)

    def allows(self, target: Path) -> bool:
        return self._contains(Path(os.path.realpath(target)))

    def check(self, target: Path, file, what: str, element: Optional[str] = None,
              line: Optional[int] = None) -> Path:
        """``target`` resolved, or ``OutsideModelTree`` naming ``file`` (the file that
        names it) and ``what`` (the name as written there)."""
        real = Path(os.path.realpath(target))
        if self._contains(real):
            return real
        plain = Path(os.path.normpath(target))
        how = (f"is a symlink to {real}, " if plain != real and self._contains(plain)
               else f"is {real}, ")
        raise OutsideModelTree(
            file, f"{what} {how}outside the folders this model may read "
            f"({', '.join(map(str, self.roots))}); pass --allow-path DIR (allow=[DIR] "
            "in Python) to read it on purpose", element, line)
