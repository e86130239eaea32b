"""Variants of a real cell: its channel densities scaled per (segment group, channel).

Each ``channelDensity`` (and its Nernst / GHK forms) of the cell is one
factor, keyed ``"<segmentGroup>/<ionChannel>"``; a variant multiplies it by
a factor drawn log-uniformly in ``FACTOR_RANGE``, keeps the morphology and
everything else, and records the factors, so an analysis knows which channel
where moved which feature. The variant is written as NeuroML by libNeuroML,
its includes pointing at the original's files (relative paths).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import neuroml.writers
import numpy as np

from graphs.morphology import channel_species
from graphs.policy import ReadPolicy, model_tree
from graphs.reader import parse_document, resolve_include

FACTOR_RANGE = (0.5, 2.0)  # log-uniform
DENSITY_MEMBERS = ("channel_densities", "channel_density_nernsts", "channel_density_ghks",
                   "channel_density_ghk2s", "channel_density_non_uniforms",
                   "channel_density_non_uniform_nernsts", "channel_density_non_uniform_ghks",
                   "channel_density_v_shifts", "channel_density_nernst_ca2s")


def properties(cell) -> tuple:
    """(membrane, intracellular) properties of a ``<cell>`` or ``<cell2CaPools>``
    (None where the cell has none)."""
    bp = (getattr(cell, "biophysical_properties", None)
          or getattr(cell, "biophysical_properties2_ca_pools", None))
    return ((getattr(bp, "membrane_properties", None)
             or getattr(bp, "membrane_properties2_ca_pools", None)),
            (getattr(bp, "intracellular_properties", None)
             or getattr(bp, "intracellular_properties2_ca_pools", None)))


def densities(cell) -> List[object]:
    """Every channel density of a libNeuroML cell, in document order."""
    mp, _ = properties(cell)
    if mp is None:
        return []
    return [d for m in DENSITY_MEMBERS for d in getattr(mp, m, None) or []]


def factor_key(density) -> str:
    return f"{getattr(density, 'segment_groups', None) or 'all'}/{density.ion_channel}"


def draw_factors(keys: List[str], seed_text: str) -> Dict[str, float]:
    """{key: factor}, log-uniform in FACTOR_RANGE, reproducible from ``seed_text``."""
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    lo, hi = np.log(FACTOR_RANGE[0]), np.log(FACTOR_RANGE[1])
    return {k: float(np.exp(rng.uniform(lo, hi))) for k in sorted(set(keys))}


def _scaled(quantity: str, factor: float) -> str:
    """'0.3 mS_per_cm2' * f -> '<0.3 f> mS_per_cm2' (the unit kept as written)."""
    text = str(quantity).strip()
    i = 0
    while i < len(text) and (text[i].isdigit() or text[i] in "+-.eE"):
        i += 1
    value, unit = float(text[:i]), text[i:].strip()
    return f"{value * factor:.6g} {unit}".strip()


def _cell(doc, cell_file, cell_id: str):
    cells = [c for m in ("cells", "cell2_ca_poolses") for c in getattr(doc, m, None) or []]
    cell = next((c for c in cells if c.id == cell_id), None)
    if cell is None:
        raise ValueError(f"{cell_file}: no multi-compartment cell {cell_id!r} to vary")
    return cell


def factor_columns(cell_file, cell_id: str) -> Dict[str, Tuple[str, str]]:
    """{factor key: (segment group, species)}: where in a CG each factor shows, the
    group's compartments and the ``g_<species>`` column (``graphs.morphology``)."""
    cell = _cell(parse_document(Path(cell_file).resolve())[0], cell_file, cell_id)
    return {factor_key(d): (getattr(d, "segment_groups", None) or "all",
                            channel_species(getattr(d, "ion", None), d.ion_channel))
            for d in densities(cell)}


def write_variant(cell_file, cell_id: str, out_file, seed_text: str,
                  allow: Sequence = ()) -> Dict[str, float]:
    """Write a variant of ``cell_id`` (defined in ``cell_file``) to ``out_file`` -> factors.
    Its includes name the source's files; reading it needs ``variant_allow(cell_file)``."""
    cell_file = Path(cell_file).resolve()
    out_file = Path(out_file)
    doc = parse_document(cell_file)[0]
    cell = _cell(doc, cell_file, cell_id)
    dens = densities(cell)
    if not dens:
        raise ValueError(f"{cell_file}: cell {cell_id!r} has no channel densities to vary")
    factors = draw_factors([factor_key(d) for d in dens], seed_text)
    for d in dens:
        if getattr(d, "cond_density", None) is not None:
            d.cond_density = _scaled(d.cond_density, factors[factor_key(d)])
        elif getattr(d, "perm_density", None) is not None:
            d.perm_density = _scaled(d.perm_density, factors[factor_key(d)])
    out_file.parent.mkdir(parents=True, exist_ok=True)
    policy = ReadPolicy.for_model(cell_file, allow)
    for inc in doc.includes or []:
        target = resolve_include(inc.href, cell_file, policy=policy)
        inc.href = os.path.relpath(target, out_file.parent.resolve())
    tmp = out_file.with_name(out_file.name + ".partial")
    neuroml.writers.NeuroMLWriter.write(doc, str(tmp))
    tmp.replace(out_file)
    return factors


def variant_allow(cell_file, allow: Sequence = ()) -> List[str]:
    """The folders a variant written from ``cell_file`` reads: its source's tree (its
    includes point there) and what the user allowed the source."""
    return [str(model_tree(cell_file)), *map(str, allow)]


def factor_table(factors: Dict[str, float]) -> Tuple[List[str], np.ndarray]:
    """(keys, [K] log2 factors): the form an analysis regresses features on."""
    keys = sorted(factors)
    return keys, np.log2(np.asarray([factors[k] for k in keys], dtype=np.float64))
