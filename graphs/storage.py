"""CG storage: one ``.npz`` per model (no pickle) plus a JSON manifest per dataset.

Each ``.npz`` also carries its own metadata (schema version, source file,
sha256 of the source and of every included file) as a JSON string, so a
single file can be checked without its manifest. Files are written to a
temporary name and renamed, so a killed writer never leaves a half-written
graph under the real name; ``load_cg`` checks every array's dtype and shape and
names the file and the problem of a damaged one (``DamagedGraphFile``).
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from graphs.cg import CG
from graphs.errors import DamagedGraphFile, SchemaMismatch
from graphs.schema import EDGE_COLUMNS, NODE_COLUMNS, SCHEMA_VERSION, schema_dict

_ARRAYS = ("node_features", "node_feature_mask", "node_kind", "neuron_id", "node_name",
           "senders", "receivers", "edge_kind", "edge_forward", "edge_features",
           "edge_feature_mask")


def atomic_write(path: Path, write) -> Path:
    """``write(file)`` into ``path.partial``, then rename: all or nothing under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def save_cg(cg: CG, path) -> Path:
    arrays = {name: getattr(cg, name) for name in _ARRAYS}
    meta = dict(cg.meta, schema_version=SCHEMA_VERSION)
    # a file object keeps the exact name (no .npz added)
    return atomic_write(path, lambda f: np.savez_compressed(
        f, meta=np.array(json.dumps(meta)), **arrays))


# name -> (dtype kind(s), shape rule): N nodes, E edges, F / FE feature widths
_SPEC = {"node_features": ("f", ("N", len(NODE_COLUMNS))),
         "node_feature_mask": ("fiub", ("N", len(NODE_COLUMNS))),
         "node_kind": ("iu", ("N",)), "neuron_id": ("iu", ("N",)), "node_name": ("U", ("N",)),
         "senders": ("iu", ("E",)), "receivers": ("iu", ("E",)), "edge_kind": ("iu", ("E",)),
         "edge_forward": ("fiub", ("E",)),
         "edge_features": ("f", ("E", len(EDGE_COLUMNS))),
         "edge_feature_mask": ("fiub", ("E", len(EDGE_COLUMNS)))}


def _check_arrays(path, arrays: Dict[str, np.ndarray]) -> None:
    sizes = {"N": arrays["node_kind"].shape[0] if arrays["node_kind"].ndim else -1,
             "E": arrays["senders"].shape[0] if arrays["senders"].ndim else -1}
    for name, (kinds, rule) in _SPEC.items():
        a = arrays[name]
        want = tuple(sizes[d] if isinstance(d, str) else d for d in rule)
        if a.dtype.kind not in kinds:
            raise DamagedGraphFile(path, f"array {name!r} has dtype {a.dtype}, expected "
                                   f"{'a float' if kinds == 'f' else 'an integer'} array")
        if a.shape != want:
            raise DamagedGraphFile(path, f"array {name!r} has shape {a.shape}, expected {want}")
    n = sizes["N"]
    for name in ("senders", "receivers"):
        if arrays[name].size and (arrays[name].min() < 0 or arrays[name].max() >= n):
            raise DamagedGraphFile(path, f"array {name!r} points outside the {n} nodes")


def load_cg(path) -> CG:
    """Load a CG. A damaged file raises ``DamagedGraphFile`` naming the problem; a file
    of another schema version raises ``SchemaMismatch``."""
    if not Path(path).is_file():
        raise DamagedGraphFile(path, "no such file")
    try:
        if not zipfile.is_zipfile(path):  # np.load would take any other file for a pickle
            raise zipfile.BadZipFile("no zip central directory")
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("meta", *_ARRAYS) if k not in data.files]
            if missing:
                raise DamagedGraphFile(path, f"missing arrays {missing}; not a CG written by "
                                       "graphs.save_cg")
            arrays = {name: data[name] for name in ("meta", *_ARRAYS)}
    except DamagedGraphFile:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DamagedGraphFile(path, f"truncated or not a .npz (zip) file ({err})") from None
    except ValueError:  # numpy refuses object arrays without pickle
        raise DamagedGraphFile(path, "holds pickled (object) arrays, which are never "
                               "loaded") from None
    except OSError as err:
        raise DamagedGraphFile(path, f"cannot be read ({err})") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as err:
        raise DamagedGraphFile(path, f"its metadata is not JSON ({err.msg})") from None
    if not isinstance(meta, dict):
        raise DamagedGraphFile(path, "its metadata is not a JSON object")
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaMismatch(path, f"written with graph schema {version!r}, this library "
                             f"reads {SCHEMA_VERSION!r}; convert the source again with "
                             "`python -m graphs convert`")
    _check_arrays(path, arrays)
    return CG(**arrays, meta=meta)


def write_manifest(out_dir, report: List[Dict], extra: Optional[Dict] = None) -> Path:
    """DIR/manifest.json: the schema, and per source file its outcome, checksum and npz
    (plus ``extra`` fields a dataset builder records, e.g. its protocol version)."""
    out_dir = Path(out_dir)
    manifest = {"schema_version": SCHEMA_VERSION, "schema": schema_dict(), **(extra or {}),
                "models": [{"npz": None, **row} for row in report]}
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1))
    return path
