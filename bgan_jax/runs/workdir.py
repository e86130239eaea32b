"""A run directory: ``config.json`` (with its ``kind``), ``data.json``, and the rules
for writing into one.

``config.json`` is ``{"kind": KIND, **config fields}``; ``kind`` names the
registry entry (``bgan_jax.registry``) that trains, loads and analyses it, so no
tool guesses what a directory holds. Bad run files are a ``RunDirError`` naming
the file and the problem, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Type, TypeVar

from bgan_jax.runs.config import ConfigError, from_dict
from bgan_jax.runs.distributed import is_primary

T = TypeVar("T")
CONFIG_FILE, DATA_FILE = "config.json", "data.json"


class RunDirError(ValueError):
    """A run directory that is missing, not a run, or whose run files are damaged."""


def write_run_files(workdir, kind: str, config, data=None) -> None:
    """config.json (+ data.json: where the training data lives), on process 0."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not is_primary():
        return
    (workdir / CONFIG_FILE).write_text(json.dumps({"kind": kind, **config.to_dict()}, indent=1,
                                                  default=str))
    if data is not None:
        (workdir / DATA_FILE).write_text(json.dumps({"data": str(Path(data).absolute())}))


def read_json(path: Path, error: Type[Exception] = None) -> Any:
    """The JSON in ``path``; a file that cannot be read or parsed raises ``error``
    (default ``RunDirError``) naming the file and the problem."""
    error, path = error or RunDirError, Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise error(f"{path}: {path.name} is not JSON ({err.msg} at line {err.lineno}); the "
                    "file is damaged") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot be read ({err})") from None


def read_kind(workdir) -> str:
    """The ``kind`` recorded in the workdir's config.json."""
    workdir = Path(workdir)
    path = workdir / CONFIG_FILE
    if not workdir.is_dir():
        raise RunDirError(f"{workdir}: no such directory")
    if not path.is_file():
        raise RunDirError(f"{workdir}: no {CONFIG_FILE}; is it a train.py --workdir?")
    d = read_json(path)
    if not isinstance(d, dict) or not isinstance(d.get("kind"), str):
        raise RunDirError(f"{path}: no \"kind\" field (not written by this version of "
                          "train.py)")
    return d["kind"]


def read_config(workdir, cls: Type[T]) -> T:
    """The run config saved in the workdir, type-checked field by field (an earlier
    version's fields first renamed by ``cls.upgrade`` where the class has one)."""
    path = Path(workdir) / CONFIG_FILE
    d = read_json(path)
    if not isinstance(d, dict):
        raise RunDirError(f"{path}: expected a JSON object of config fields")
    d = {k: v for k, v in d.items() if k != "kind"}
    d = getattr(cls, "upgrade", lambda saved: saved)(d)
    try:
        return from_dict(cls, d)
    except ConfigError as err:
        raise RunDirError(f"{path}: {err}") from None


def read_data_path(workdir, must_exist: bool = True) -> Optional[Path]:
    """Where the run's training data lives (data.json), or None when it records none."""
    path = Path(workdir) / DATA_FILE
    if not path.is_file():
        return None
    d = read_json(path)
    if not isinstance(d, dict) or not isinstance(d.get("data"), str):
        raise RunDirError(f"{path}: expected {{\"data\": PATH}}")
    data = Path(d["data"])
    if must_exist and not data.exists():
        raise RunDirError(f"{path}: the run's data {data} is not there (moved?); pass --data")
    return data


def refuse_overwrite(workdir, has_checkpoints: bool, resume: bool) -> None:
    if has_checkpoints and not resume:
        raise FileExistsError(f"{workdir} already holds checkpoints; pass --resume to go on "
                              "or choose another --workdir")
