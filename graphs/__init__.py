"""NeuroML2 -> computational graph (CG) front end of bgan-jax.

Pure Python/numpy: reads NeuroML2 with libNeuroML (XML) and h5py (HDF5 networks,
``graphs.hdf5``), builds CGs (``convert_file``), batches them into padded ``jraph.GraphsTuple``s
(``batch_and_pad``) and stores them as ``.npz`` (``save_cg`` / ``load_cg``). A model
reads only inside its tree and the folders the user allows (``ReadPolicy``).
The array schema shared with ``bgan_jax`` lives in ``graphs.schema``.
"""

from graphs.batching import (batch_and_pad, batch_graphs, bucket_size, pad_to_bucket,
                             padding_efficiency, stack_device_batches)
from graphs.cg import CG
from graphs.convert import convert_file, model_to_cg
from graphs.errors import ConversionError, OutsideModelTree, SchemaMismatch
from graphs.policy import ReadPolicy, model_tree
from graphs.reader import read_model
from graphs.schema import SCHEMA_VERSION, EdgeKind, NodeKind
from graphs.storage import load_cg, save_cg

__all__ = [
    "CG", "SCHEMA_VERSION", "EdgeKind", "NodeKind", "ConversionError", "OutsideModelTree",
    "ReadPolicy", "SchemaMismatch", "model_tree",
    "batch_and_pad", "batch_graphs", "bucket_size", "convert_file", "load_cg",
    "model_to_cg", "pad_to_bucket", "padding_efficiency", "read_model", "save_cg",
    "stack_device_batches",
]
