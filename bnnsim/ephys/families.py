"""Families of cells: cells that are one model in all but morphology or density jitter.

A test score should measure cells whose biophysics the model never saw, so
splits keep each family on one side (``dataset.assign``). The rule, computed
from each cell's NeuroML:

1. A cell's *biophysics* is what it places where: for every channel density,
   ``(segment group, ion channel) -> (density, reversal)``, plus the specific
   capacitance and axial resistivity per segment group. The morphology is not
   part of it.
2. Cells with the same biophysics, every number equal to ``SAME_RTOL``
   (export rounding), are one family, whatever their morphology or source:
   the cells of one Blue Brain e-model.
3. Cells of one source repository with the same channel set (the same
   ``(segment group, ion channel)`` keys, the same passive numbers) whose
   densities all lie within a factor ``JITTER_FACTOR`` of each other are one
   family, joined transitively: a population whose densities were jittered per
   cell (the Golgi cells of GoC_Network_Sim_BehInputs; the inferior-olive cells
   of one biophysics set). Independently fitted models differ by more than
   that in some density (two Allen perisomatic fits) and stay apart.
4. A variant sits in its source cell's family (``dataset.variant_jobs``).

A family's name is its first member's name (sorted), so it is stable as the
corpus grows and readable in a report.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from bnnsim.ephys.variants import densities, properties
from graphs.units import to_si

SAME_RTOL = 1e-4  # "the same density": equal to export rounding
JITTER_FACTOR = 1.5  # densities within this factor of each other: one population's jitter


class Biophysics(NamedTuple):
    """What a cell places where (morphology aside)."""

    channels: Tuple[Tuple[str, str], ...]  # [K] sorted (segment group, ion channel)
    densities: np.ndarray  # [K] S/m^2 (or m/s for a permeability); NaN: non-uniform
    passive: Tuple[Tuple[str, float], ...]  # sorted (what/where, SI value), reversal included

    @property
    def shape(self) -> tuple:
        """What must match for densities to be compared at all."""
        return self.channels, tuple(k for k, _ in self.passive)


def _quantity(obj, attr: str, dim: Optional[str]) -> float:
    value = getattr(obj, attr, None)
    return float("nan") if value is None else to_si(value, dim)


def biophysics(cell) -> Biophysics:
    """The ``Biophysics`` of a libNeuroML ``<cell>`` (or ``<cell2CaPools>``)."""
    mp, ip = properties(cell)
    rows, passive = [], []
    for d in densities(cell):
        where = getattr(d, "segment_groups", None) or "all"
        if getattr(d, "cond_density", None) is not None:
            g = _quantity(d, "cond_density", "conductanceDensity")
        elif getattr(d, "perm_density", None) is not None:
            g = _quantity(d, "perm_density", None)
        else:
            g = float("nan")  # non-uniform: a formula, compared by its channel only
        rows.append(((where, str(d.ion_channel)), g))
        if getattr(d, "erev", None) is not None:
            passive.append((f"erev:{where}/{d.ion_channel}", _quantity(d, "erev", "voltage")))
    for what, member, attr, dim in (
            ("cm", "specific_capacitances", "value", "specificCapacitance"),
            ("ra", "resistivities", "value", "resistivity")):
        holder = mp if what == "cm" else ip
        for x in getattr(holder, member, None) or []:
            passive.append((f"{what}:{getattr(x, 'segment_groups', None) or 'all'}",
                            _quantity(x, attr, dim)))
    rows.sort(key=lambda r: r[0])
    # a (group, channel) written twice (two ions of one channel) keeps both, in order
    return Biophysics(tuple(k for k, _ in rows),
                      np.asarray([g for _, g in rows], dtype=np.float64),
                      tuple(sorted(passive)))


def _passive(b: Biophysics) -> np.ndarray:
    return np.asarray([v for _, v in b.passive], dtype=np.float64)


def _equal(x: np.ndarray, y: np.ndarray) -> bool:
    return bool(np.allclose(x, y, rtol=SAME_RTOL, atol=0.0, equal_nan=True))


def same(a: Biophysics, b: Biophysics) -> bool:
    """Rule 2: equal biophysics (every number to SAME_RTOL)."""
    return (a.shape == b.shape and _equal(a.densities, b.densities)
            and _equal(_passive(a), _passive(b)))


def jittered(a: Biophysics, b: Biophysics) -> bool:
    """Rule 3: the same channel set and passive numbers, every density within a factor
    JITTER_FACTOR (a density zero in one is zero in the other)."""
    if a.shape != b.shape or not _equal(_passive(a), _passive(b)):
        return False
    ga, gb = np.abs(a.densities), np.abs(b.densities)
    ok = np.isnan(ga) & np.isnan(gb) | (ga == 0) & (gb == 0)
    both = (ga > 0) & (gb > 0)
    ratio = np.ones_like(ga)
    ratio[both] = np.maximum(ga[both], gb[both]) / np.minimum(ga[both], gb[both])
    return bool(np.all(ok | both & (ratio <= JITTER_FACTOR)))


def families(cells: Sequence[Tuple[str, str, Optional[Biophysics]]]) -> Dict[str, str]:
    """[(name, repository, biophysics or None)] -> {name: family}. A cell without
    biophysics (a point cell, an unreadable file) is a family of its own."""
    parent = {name: name for name, _, _ in cells}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a: str, b: str) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    groups: Dict[tuple, List[Tuple[str, str, Biophysics]]] = defaultdict(list)
    for name, repo, b in cells:
        if b is not None:
            groups[b.shape].append((name, repo, b))
    for members in groups.values():  # only cells of one shape can be one family
        for i, (na, ra, a) in enumerate(members):
            for nb, rb, b in members[i + 1:]:
                if same(a, b) or (ra == rb and jittered(a, b)):
                    join(na, nb)
    return {name: root(name) for name, _, _ in cells}
