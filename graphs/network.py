"""A network as arrays: populations, connections and inputs, whatever file they came from.

The converter never walks one Python object per connection: a ``<network>`` of an
XML file (libNeuroML objects) and a network of an HDF5 file (``graphs.hdf5``, read
straight into numpy) are both described here as tables of rows, and one code path
turns tables into graph nodes and edges. Connection tables can be read in chunks
(``ConnectionTable.chunks``), so a projection of hundreds of millions of rows is
summarised without holding it in memory (``--synapses type``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from graphs.errors import InvalidValue, UnknownComponent
from graphs.document import line_of
from graphs.units import to_si

PROJECTION, ELECTRICAL, CONTINUOUS = "projection", "electricalProjection", "continuousProjection"


class Rows(NamedTuple):
    """A run of connections (or inputs) of one table; all [K]."""

    start: int  # row number of the first one in its table
    ids: np.ndarray  # int64, connection/input ids
    pre_cell: np.ndarray  # int64 (the target cell for inputs)
    pre_seg: np.ndarray  # int64, segment ids (0 where the file gives none)
    post_cell: np.ndarray  # int64 (unused for inputs)
    post_seg: np.ndarray  # int64
    weight: np.ndarray  # float64, 1 where the file gives none (NeuroML's default)
    delay: Optional[np.ndarray]  # float64 seconds, NaN where absent; None if no row has one
    synapse: Optional[np.ndarray]  # int32 index into the table's ``synapses``; None: all 0


@dataclasses.dataclass(frozen=True)
class Population:
    id: str
    component: str
    ids: np.ndarray  # [n] int64 instance ids
    locations: Optional[np.ndarray]  # [n, 3] float64 um; None: the file gives none
    file: str
    line: Optional[int] = None


def _where(table, row: int) -> Tuple[str, Optional[int]]:
    """(element, line) of one row of a table, for an error message: the XML element
    and its line, or the HDF5 dataset and the row."""
    if table.lines is not None:
        return table.element, int(table.lines[row])
    return f"{table.element} row {row}", None


@dataclasses.dataclass(frozen=True)
class ConnectionTable:
    """The connections of one projection (chemical, electrical or continuous).

    ``synapses``: the synapse component of a projection, the gap junction(s) of an
    electrical one (one per row where they differ), the post component of a continuous
    one; ``pre_components`` (continuous projections only) must exist too.
    """

    id: str
    kind: str  # PROJECTION | ELECTRICAL | CONTINUOUS
    pre: str
    post: str
    synapses: Tuple[str, ...]
    n: int
    read: Callable[[int, int], Rows]  # (start, stop) -> rows [start, stop)
    file: str
    element: str  # where errors point: the XML element name or the HDF5 dataset path
    line: Optional[int] = None
    lines: Optional[np.ndarray] = None  # [n] source line per row (XML), for errors
    pre_components: Tuple[str, ...] = ()

    def chunks(self, size: int = 1 << 22) -> Iterator[Rows]:
        for start in range(0, self.n, size):
            yield self.read(start, min(start + size, self.n))

    def where(self, row: int) -> Tuple[str, Optional[int]]:
        return _where(self, row)


@dataclasses.dataclass(frozen=True)
class InputTable:
    """Inputs of one component onto cells: an input list, or one explicit input."""

    id: str
    component: str
    population: Optional[str]  # None: each row names its own (explicit inputs)
    n: int
    read: Callable[[int, int], Rows]  # pre_cell = target cell, pre_seg = its segment
    file: str
    element: str
    names: Optional[Sequence[str]] = None  # node names; default "<id>/<input id>"
    populations: Optional[Sequence[str]] = None  # per row, when ``population`` is None
    line: Optional[int] = None
    lines: Optional[np.ndarray] = None
    group_element: str = "inputList"  # what ``line`` points at

    def where(self, row: int) -> Tuple[str, Optional[int]]:
        return _where(self, row)


@dataclasses.dataclass(frozen=True)
class Network:
    id: str
    file: str
    populations: Tuple[Population, ...]
    connections: Tuple[ConnectionTable, ...]  # projections, then electrical, continuous
    inputs: Tuple[InputTable, ...]  # explicit inputs, then input lists


def in_memory(rows: Rows) -> Callable[[int, int], Rows]:
    """A ``read`` over rows already in memory."""
    def read(start: int, stop: int) -> Rows:
        cut = lambda a: None if a is None else a[start:stop]  # noqa: E731
        return Rows(start, *(cut(a) for a in rows[1:]))
    return read


def check_weights(weight: np.ndarray, start: int, table) -> None:
    bad = np.flatnonzero(~np.isfinite(weight))
    if bad.size:
        element, line = table.where(start + int(bad[0]))
        raise InvalidValue(table.file, f"weight {weight[bad[0]]} is not finite", element, line)


# -- XML (libNeuroML objects) -> tables ------------------------------------------------
def _weight(conn) -> float:
    w = getattr(conn, "weight", None)
    return 1.0 if w is None else float(w)


def _ints(values) -> np.ndarray:
    return np.asarray([int(v or 0) for v in values], np.int64)


def _xml_rows(conns, file, element, synapse_of=None) -> Tuple[Rows, Tuple[str, ...]]:
    delays = [getattr(c, "delay", None) for c in conns]
    delay = None
    if any(d is not None for d in delays):
        delay = np.asarray([np.nan if d is None else
                            to_si(d, "time", file, element, line_of(c))
                            for c, d in zip(conns, delays)], np.float64)
    syn_index, synapses = None, ()
    if synapse_of is not None:
        names = [synapse_of(c) for c in conns]
        synapses = tuple(dict.fromkeys(names))
        if len(synapses) > 1:
            code = {s: i for i, s in enumerate(synapses)}
            syn_index = np.asarray([code[s] for s in names], np.int32)
    rows = Rows(0, _ints(c.id for c in conns),
                _ints(c.get_pre_cell_id() for c in conns),
                _ints(c.get_pre_segment_id() for c in conns),
                _ints(c.get_post_cell_id() for c in conns),
                _ints(c.get_post_segment_id() for c in conns),
                np.asarray([_weight(c) for c in conns], np.float64), delay, syn_index)
    return rows, synapses


def _connections(proj, *attrs) -> list:
    """All connections of a projection, over the element forms it may use."""
    return [c for a in attrs for c in getattr(proj, a, None) or []]


def _table(proj, kind, conns, file, element, synapses=None, synapse_of=None,
           pre_components=()) -> ConnectionTable:
    rows, found = _xml_rows(conns, file, element, synapse_of)
    table = ConnectionTable(
        proj.id, kind, proj.presynaptic_population, proj.postsynaptic_population,
        synapses or found, len(conns), in_memory(rows), file, element, line_of(proj),
        np.asarray([line_of(c) or -1 for c in conns], np.int64), tuple(pre_components))
    check_weights(rows.weight, 0, table)
    return table


def _locations(pop, file) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    if not pop.instances:
        return np.arange(int(pop.size or 0), dtype=np.int64), None
    ids = _ints(i.id for i in pop.instances)
    if any(i.location is None for i in pop.instances):
        return ids, None
    loc = np.asarray([(float(i.location.x), float(i.location.y), float(i.location.z))
                      for i in pop.instances], np.float64)
    if not np.all(np.isfinite(loc)):
        raise InvalidValue(file, f"population {pop.id!r} has a non-finite instance location",
                           "instance", line_of(pop))
    return ids, loc


def _target(path: str, file, obj) -> Tuple[str, int]:
    """``pop[3]``, ``pop/3`` or ``../pop/3/cell`` -> (population, cell index)."""
    import re
    m = re.match(r"^(?:\.\./)?([^/\[\]]+)(?:\[(\d+)\]|/(\d+)(?:/[^/]+)?)?$",
                 str(path or "").strip())
    if m is None:
        raise UnknownComponent(file, f"target {path!r} is not a population[index] or "
                               "../population/index/cell path", type(obj).__name__,
                               line_of(obj))
    return m.group(1), int(m.group(2) or m.group(3) or "0")


def _explicit_inputs(net, file) -> List[InputTable]:
    out = []
    for k, ei in enumerate(net.explicit_inputs or []):
        pop, cell = _target(ei.target, file, ei)
        rows = Rows(0, np.zeros(1, np.int64), np.asarray([cell], np.int64),
                    np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64),
                    np.ones(1), None, None)
        out.append(InputTable(f"explicitInput{k}", ei.input, pop, 1, in_memory(rows), file,
                              "explicitInput", names=[f"explicitInput{k}:{ei.input}->"
                                                      f"{ei.target}"],
                              line=line_of(ei), lines=np.asarray([line_of(ei) or -1]),
                              group_element="explicitInput"))
    return out


def _input_list(il, file) -> InputTable:
    inputs = list(il.input or []) + list(il.input_ws or [])
    targets = [_target(i.target, file, i) for i in inputs]
    pops = [p for p, _ in targets]
    rows = Rows(0, _ints(i.id for i in inputs), np.asarray([c for _, c in targets], np.int64),
                _ints(i.segment_id for i in inputs), np.zeros(len(inputs), np.int64),
                np.zeros(len(inputs), np.int64),
                np.asarray([_weight(i) for i in inputs], np.float64), None, None)
    table = InputTable(il.id, il.component, None, len(inputs), in_memory(rows), file,
                       "input", populations=pops, line=line_of(il),
                       lines=np.asarray([line_of(i) or -1 for i in inputs], np.int64))
    check_weights(rows.weight, 0, table)
    return table


def from_xml(net, file: str) -> Network:
    """One libNeuroML ``<network>`` -> tables."""
    pops = tuple(Population(p.id, p.component, *_locations(p, file), file, line_of(p))
                 for p in net.populations or [])
    conns = [_table(p, PROJECTION, _connections(p, "connections", "connection_wds"), file,
                    "connection", synapses=(p.synapse,))
             for p in net.projections or []]
    conns += [_table(p, ELECTRICAL, _connections(p, "electrical_connections",
                                                 "electrical_connection_instances",
                                                 "electrical_connection_instance_ws"),
                     file, "electricalConnection", synapse_of=lambda c: c.synapse)
              for p in net.electrical_projections or []]
    for p in net.continuous_projections or []:
        cc = _connections(p, "continuous_connections", "continuous_connection_instances",
                          "continuous_connection_instance_ws")
        conns.append(_table(p, CONTINUOUS, cc, file, "continuousConnection",
                            synapse_of=lambda c: c.post_component,
                            pre_components=dict.fromkeys(c.pre_component for c in cc)))
    inputs = _explicit_inputs(net, file) + [_input_list(il, file)
                                             for il in net.input_lists or []]
    return Network(net.id, file, pops, tuple(conns), tuple(inputs))
