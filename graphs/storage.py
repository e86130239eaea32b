"""CG storage: one ``.npz`` per model (no pickle) plus a JSON manifest per dataset.

Each ``.npz`` also carries its own metadata (schema version, source file,
sha256 of the source and of every included file) as a JSON string, so a
single file can be checked without its manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import numpy as np

from graphs.cg import CG
from graphs.errors import SchemaMismatch
from graphs.schema import SCHEMA_VERSION, schema_dict

_ARRAYS = ("node_features", "node_feature_mask", "node_kind", "neuron_id", "node_name",
           "senders", "receivers", "edge_kind", "edge_forward", "edge_features",
           "edge_feature_mask")


def save_cg(cg: CG, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: getattr(cg, name) for name in _ARRAYS}
    meta = dict(cg.meta, schema_version=SCHEMA_VERSION)
    with open(path, "wb") as f:  # a file object keeps the exact name (no .npz added)
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_cg(path) -> CG:
    """Load a CG; raises ``SchemaMismatch`` if another schema version wrote it."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        version = meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SchemaMismatch(f"{path}: written with graph schema {version!r}, this "
                                 f"library reads {SCHEMA_VERSION!r}; convert the source "
                                 "again with `python -m graphs convert`")
        return CG(**{name: data[name] for name in _ARRAYS}, meta=meta)


def write_manifest(out_dir, report: List[Dict]) -> Path:
    """DIR/manifest.json: the schema, and per source file its outcome, checksum and npz."""
    out_dir = Path(out_dir)
    manifest = {"schema_version": SCHEMA_VERSION, "schema": schema_dict(),
                "models": [{"npz": None, **row} for row in report]}
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1))
    return path
