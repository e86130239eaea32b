"""NeuroML networks stored as HDF5 (``*.nml.h5``) -> network tables, never one object per
connection.

The layout is libNeuroML's (``NeuroMLHdf5Writer``, also written by pyNeuroML,
NetPyNE and OpenCortex): the root group ``/neuroml`` carries the XML of everything
that is not bulk data in its ``neuroml_top_level`` attribute (includes, cells,
synapses, inputs); ``/neuroml/network`` holds one group per population
(``population_<id>``, an ``[n, 3]`` x/y/z or ``[n, 4]`` id/x/y/z dataset when it lists
instances), projection (``projection_<id>``, one row per connection, the column names
in ``column_<i>`` attributes: ``pre_cell_id``, ``post_cell_id`` and optionally ``id``,
``pre/post_segment_id``, ``pre/post_fraction_along``, ``weight``, ``delay`` in ms) and
input list (``inputList_<id>``: ``id``, ``target_cell_id``, ``segment_id``, ...).

We read it with h5py rather than libNeuroML's ``NeuroMLHdf5Parser``: that parser builds
the top-level XML with libNeuroML's own XML loader (entities resolved, includes by its
own rules) and, unless ``optimized``, one object per connection. Here the XML goes
through the same hardened parser as every ``.nml`` file (``graphs.document.parse_xml``),
includes resolve against the HDF5 file's folder as for XML, and connection datasets are
read lazily in row ranges (``ConnectionTable.read``), so a projection of 10^8 rows is
never in memory at once. HDF5 keeps no creation order: populations, projections and
input lists are read in name order (the converter's node order follows it).

Every problem is a typed error naming the file and the dataset: ``DamagedHDF5``
(truncated or corrupt, not HDF5 at all), ``NotNeuroML`` (HDF5 without ``/neuroml``),
``InvalidDataset`` (missing group attribute, missing column, wrong shape, ids that are
not integers).
"""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from graphs.document import parse_xml
from graphs.errors import DamagedHDF5, InvalidDataset, NotNeuroML
from graphs.policy import ReadPolicy
from graphs.network import (CONTINUOUS, ELECTRICAL, PROJECTION, ConnectionTable, InputTable,
                            Network, Population, Rows, check_weights)
from graphs.units import unit_table

_KINDS = {"projection": PROJECTION, "electricalProjection": ELECTRICAL,
          "continuousProjection": CONTINUOUS}
_EMPTY_DOC = (b'<neuroml xmlns="http://www.neuroml.org/schema/neuroml2" id="%s"/>')


MAX_LINK_HOPS = 16  # a chain of soft/external links longer than this is a loop


class _Links:
    """Members of HDF5 groups with every link checked before it is followed: a soft link
    must name an object of its file; an external link must name a file inside the
    folders ``policy`` allows, and it is opened here (h5py never follows one itself, so
    no search path of the HDF5 library decides which file is read)."""

    def __init__(self, policy: ReadPolicy):
        self.policy = policy
        self.opened: List = []  # files opened through external links

    def close(self) -> None:
        for f in self.opened:
            f.close()

    def members(self, group) -> List[Tuple[str, object]]:
        """(name, object) of every member, in name order."""
        return [(name, self.get(group, name)) for name in sorted(group)]

    def get(self, group, name: str, hops: int = 0):
        """``group[name]`` with its link checked (None if there is no such member)."""
        import h5py

        link = group.get(name, getlink=True)
        if link is None:
            return None
        if isinstance(link, h5py.HardLink):
            return group[name]
        file = Path(group.file.filename)
        where = posixpath.join(group.name, name)
        if hops >= MAX_LINK_HOPS:
            raise InvalidDataset(file, f"more than {MAX_LINK_HOPS} links in a chain "
                                 "(a loop of links)", where)
        if isinstance(link, h5py.SoftLink):
            obj = self._walk(group.file, posixpath.join(group.name, link.path), hops + 1)
            what, target_file = f"soft link to {link.path!r}", file
        elif isinstance(link, h5py.ExternalLink):
            target = Path(link.filename)
            target = self.policy.check(target if target.is_absolute() else file.parent / target,
                                       file, f"HDF5 external link to {link.filename!r}",
                                       where)
            other = _open(target)
            self.opened.append(other)
            obj = self._walk(other, link.path, hops + 1)
            what, target_file = f"external link to {link.path!r} in {link.filename!r}", target
        else:
            raise InvalidDataset(file, f"link of an unknown kind ({type(link).__name__})", where)
        if obj is None:
            raise InvalidDataset(file, f"{what}, which names no object in {target_file}", where)
        return obj

    def _walk(self, f, path: str, hops: int):
        """The object at absolute ``path`` of file ``f``, every link on the way checked."""
        import h5py

        obj = f["/"]
        for part in [p for p in posixpath.normpath(path).split("/") if p]:
            if not isinstance(obj, h5py.Group):
                return None
            obj = self.get(obj, part, hops)
            if obj is None:
                return None
        return obj


def is_hdf5(path) -> bool:
    """An HDF5 file by name (``*.h5``, ``*.hdf5``): NeuroML's large-network format."""
    return Path(path).suffix.lower() in (".h5", ".hdf5")


def _open(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        from graphs.errors import MissingFile
        raise MissingFile(path, "file not found") from None
    except OSError as e:  # truncated, corrupt, or not HDF5 at all
        raise DamagedHDF5(path, f"cannot open as HDF5 ({e})") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def _text(attrs, name: str) -> Optional[str]:
    v = attrs.get(name)
    if v is None:
        return None
    if isinstance(v, np.ndarray):  # PyTables may store a string as a 1-element array
        v = v.reshape(-1)[0] if v.size else ""
    return v.decode() if isinstance(v, bytes) else str(v)


def _required(path: Path, group, name: str) -> str:
    v = _text(group.attrs, name)
    if not v:
        raise InvalidDataset(path, f"group has no {name!r} attribute", group.name)
    return v


def _columns(path: Path, ds) -> Dict[str, int]:
    """Column name -> index, from the ``column_<i>`` attributes; the shape checked."""
    if ds.ndim != 2:
        raise InvalidDataset(path, f"expected a 2-D array, found shape {ds.shape}", ds.name)
    if ds.dtype.kind not in "fiu":
        raise InvalidDataset(path, f"expected numbers, found dtype {ds.dtype}", ds.name)
    cols = {}
    for key in ds.attrs:
        if key.startswith("column_"):
            try:
                j = int(key[len("column_"):])
            except ValueError:
                continue
            if not 0 <= j < ds.shape[1]:
                raise InvalidDataset(path, f"attribute {key} names a column outside the "
                                     f"array's {ds.shape[1]} columns", ds.name)
            cols[_text(ds.attrs, key)] = j
    return cols


def _dataset(path: Path, links: "_Links", group, name: str):
    """The group's array named like the group's id (None if the group has none)."""
    import h5py

    ds = links.get(group, name)
    if ds is None:
        arrays = [v for _, v in links.members(group) if isinstance(v, h5py.Dataset)]
        if len(arrays) > 1:
            raise InvalidDataset(path, f"no dataset {name!r} and several others", group.name)
        ds = arrays[0] if arrays else None
    if ds is not None and not isinstance(ds, h5py.Dataset):
        raise InvalidDataset(path, f"{name!r} is a group, not a dataset", group.name)
    return ds


def _read(path: Path, ds, start: int, stop: int) -> np.ndarray:
    try:
        return np.asarray(ds[start:stop], np.float64)
    except (OSError, ValueError, RuntimeError) as e:
        raise DamagedHDF5(path, f"cannot read rows {start}..{stop} ({e})", ds.name) from None


def _ints(path: Path, ds, values: np.ndarray, column: str, start: int) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (values < 0))
    if bad.size:
        raise InvalidDataset(path, f"{column} in row {start + int(bad[0])} is "
                             f"{values[bad[0]]}, not a non-negative integer", ds.name)
    return values.astype(np.int64)


def _population(path: Path, links: "_Links", group) -> Population:
    pid = _required(path, group, "id")
    comp = _required(path, group, "component")
    ds = _dataset(path, links, group, pid)
    if ds is None:
        size = group.attrs.get("size")
        if size is None:
            raise InvalidDataset(path, "population has neither a size nor instances",
                                 group.name)
        return Population(pid, comp, np.arange(int(np.asarray(size).reshape(-1)[0]),
                                               dtype=np.int64), None, str(path))
    cols = _columns(path, ds)
    a = _read(path, ds, 0, ds.shape[0])
    if not cols:  # libNeuroML's defaults: x, y, z or id, x, y, z
        cols = {"x": 0, "y": 1, "z": 2} if ds.shape[1] == 3 else \
            {"id": 0, "x": 1, "y": 2, "z": 3} if ds.shape[1] == 4 else {}
    missing = [c for c in "xyz" if c not in cols]
    if missing:
        raise InvalidDataset(path, f"expected columns x, y, z, found {sorted(cols)} in "
                             f"shape {ds.shape}", ds.name)
    ids = (_ints(path, ds, a[:, cols["id"]], "id", 0) if "id" in cols
           else np.arange(a.shape[0], dtype=np.int64))
    loc = a[:, [cols["x"], cols["y"], cols["z"]]]
    if not np.all(np.isfinite(loc)):
        raise InvalidDataset(path, "non-finite instance location", ds.name)
    return Population(pid, comp, ids, loc, str(path))


class _Reader:
    """``read(start, stop)`` of a connection or input dataset: columns -> Rows."""

    def __init__(self, path: Path, ds, cols: Dict[str, int], pre: str, post: Optional[str],
                 seg_pre: str, seg_post: Optional[str]):
        self.path, self.ds, self.cols = path, ds, cols
        self.names = (pre, post, seg_pre, seg_post)
        self.ms = unit_table()["ms"].factor

    def __call__(self, start: int, stop: int) -> Rows:
        a = _read(self.path, self.ds, start, stop) if self.ds is not None else np.zeros((0, 0))
        k = stop - start
        col = lambda name, default: (a[:, self.cols[name]] if name in self.cols  # noqa: E731
                                     else np.full(k, default, np.float64))
        ints = lambda name: (_ints(self.path, self.ds, col(name, 0.0), name, start)  # noqa
                             if name is not None else np.zeros(k, np.int64))
        pre, post, seg_pre, seg_post = self.names
        ids = (ints("id") if "id" in self.cols else np.arange(start, stop, dtype=np.int64))
        delay = col("delay", np.nan) * self.ms if "delay" in self.cols else None
        if delay is not None and not np.all(np.isfinite(delay)):
            bad = int(np.flatnonzero(~np.isfinite(delay))[0])
            raise InvalidDataset(self.path, f"delay in row {start + bad} is not finite",
                                 self.ds.name)
        return Rows(start, ids, ints(pre), ints(seg_pre), ints(post), ints(seg_post),
                    col("weight", 1.0), delay, None)


def _needs(path: Path, ds, cols: Dict[str, int], names) -> None:
    missing = [c for c in names if c not in cols]
    if missing:
        raise InvalidDataset(path, f"no column {missing[0]!r} (columns: "
                             f"{', '.join(sorted(cols)) or 'none named'})", ds.name)


def _projection(path: Path, links: "_Links", group) -> ConnectionTable:
    pid = _required(path, group, "id")
    kind = _KINDS.get(_text(group.attrs, "type") or "projection")
    if kind is None:
        raise InvalidDataset(path, f"unknown projection type {_text(group.attrs, 'type')!r}",
                             group.name)
    pre = _required(path, group, "presynapticPopulation")
    post = _required(path, group, "postsynapticPopulation")
    if kind == CONTINUOUS:
        synapse, pre_components = _required(path, group, "postComponent"), (
            _required(path, group, "preComponent"),)
    else:
        synapse, pre_components = _required(path, group, "synapse"), ()
    ds = _dataset(path, links, group, pid)
    cols, n = {}, 0
    if ds is not None:
        cols = _columns(path, ds)
        _needs(path, ds, cols, ("pre_cell_id", "post_cell_id"))
        n = ds.shape[0]
    reader = _Reader(path, ds, cols, "pre_cell_id", "post_cell_id",
                     "pre_segment_id" if "pre_segment_id" in cols else None,
                     "post_segment_id" if "post_segment_id" in cols else None)
    table = ConnectionTable(pid, kind, pre, post, (synapse,), n, reader, str(path),
                            ds.name if ds is not None else group.name,
                            pre_components=pre_components)
    return _checked(table)


class _CheckedRead:
    """Row reads that also check weights are finite (as the XML path does per element)."""

    def __init__(self, table):
        self.table, self.read = table, table.read

    def __call__(self, start: int, stop: int) -> Rows:
        rows = self.read(start, stop)
        check_weights(rows.weight, start, self.table)
        return rows


def _checked(table):
    import dataclasses
    return dataclasses.replace(table, read=_CheckedRead(table))


def _input_list(path: Path, links: "_Links", group) -> InputTable:
    iid = _required(path, group, "id")
    comp = _required(path, group, "component")
    pop = _required(path, group, "population")
    ds = _dataset(path, links, group, iid)
    cols, n = {}, 0
    if ds is not None:
        cols = _columns(path, ds)
        _needs(path, ds, cols, ("target_cell_id",))
        n = ds.shape[0]
    reader = _Reader(path, ds, cols, "target_cell_id", None,
                     "segment_id" if "segment_id" in cols else None, None)
    return _checked(InputTable(iid, comp, pop, n, reader, str(path),
                               ds.name if ds is not None else group.name))


def _network(path: Path, links: "_Links", group) -> Network:
    import h5py

    pops: List[Population] = []
    conns: List[ConnectionTable] = []
    inputs: List[InputTable] = []
    for name, child in links.members(group):  # HDF5 keeps no creation order: name order
        if not isinstance(child, h5py.Group):
            continue
        if name.startswith("population_"):
            pops.append(_population(path, links, child))
        elif name.startswith("projection_"):
            conns.append(_projection(path, links, child))
        elif name.startswith("inputList_"):
            inputs.append(_input_list(path, links, child))
    order = {PROJECTION: 0, ELECTRICAL: 1, CONTINUOUS: 2}  # as in an XML network
    conns.sort(key=lambda t: order[t.kind])
    return Network(_text(group.attrs, "id") or group.name, str(path), tuple(pops),
                   tuple(conns), tuple(inputs))


def read_hdf5(path, policy: Optional[ReadPolicy] = None
              ) -> Tuple[object, str, Dict, Tuple[Network, ...]]:
    """An ``.nml.h5`` file -> (libNeuroML document of its top-level XML, sha256 of the
    file, custom elements, network tables). The file stays open while tables are read.
    Links that leave the file must land where ``policy`` allows (default: the file's
    tree, ``graphs.policy``)."""
    import h5py

    path = Path(path)
    links = _Links(policy or ReadPolicy.for_model(path))
    f = _open(path)
    try:
        root = links.get(f, "neuroml")
        if not isinstance(root, h5py.Group):
            raise NotNeuroML(path, "HDF5 file without a /neuroml group (not a NeuroML "
                             f"HDF5 network; top level holds {sorted(f)[:5]})", "/")
        xml = root.attrs.get("neuroml_top_level")
        if xml is None:
            xml = _EMPTY_DOC % (_text(root.attrs, "id") or "network").encode()
        elif isinstance(xml, str):
            xml = xml.encode()
        doc, custom = parse_xml(bytes(xml), path)
        nets = tuple(_network(path, links, g) for name, g in links.members(root)
                     if name.startswith("network") and isinstance(g, h5py.Group))
    except (KeyError, OSError, RuntimeError) as e:  # h5py on damaged metadata
        f.close()
        links.close()
        raise DamagedHDF5(path, f"cannot read the HDF5 structure ({e})") from None
    except Exception:
        f.close()
        links.close()
        raise
    return doc, _sha256(path), custom, nets
