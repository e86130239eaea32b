"""Find the cells in NeuroML files and folders, with what their authors declared.

A *cell* is a ``<cell>`` (or a NeuroML point-cell type) defined in a file.
For each we look for the network files beside it that include it: their
``networkWithTemperature`` gives the simulation temperature (else the
protocol's default, recorded as such) and their ``<property>`` tags the
authors' metadata (Allen: ``AIBS:aibs_dendrite_type``, ``AIBS:aibs_cre_line``,
layer in ``...:location``). The source repository comes from a
``MANIFEST.tsv`` above the file (path -> source_repo) when there is one,
else from the top folder under the path the user gave.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from graphs.errors import ConversionError
from graphs.policy import ReadPolicy
from graphs.reader import parse_document, resolve_include
from graphs.units import to_si

from bnnsim.ephys.families import Biophysics, biophysics
from bnnsim.ephys.variants import properties
from bnnsim.ephys.protocol import DEFAULT_TEMPERATURE_C

# libNeuroML document members holding cell types the NEURON export takes
CELL_MEMBERS = ("cells", "cell2_ca_poolses", "izhikevich2007_cells", "ad_ex_ia_f_cells", "iaf_cells",
                "iaf_ref_cells", "iaf_tau_cells", "iaf_tau_ref_cells",
                "fitz_hugh_nagumo_cells", "pinsky_rinzel_ca3_cells")


class CellSource(NamedTuple):
    """One cell to characterise."""

    name: str  # unique, file-name safe
    file: str  # the file defining it (absolute)
    cell_id: str
    kind: str  # libNeuroML member, e.g. "cells" (multi-compartment) or "izhikevich2007_cells"
    temperature_c: float
    temperature_from: str  # the network file that declared it, or "default"
    repository: str
    declared: Dict[str, str]  # the authors' <property> tags of its network(s)
    biophysics: Optional[Biophysics] = None  # what it places where (families.biophysics)


class Unreadable(NamedTuple):
    """A file that could not be read while looking for cells."""

    file: str
    error: ConversionError


def _nml_files(paths: Iterable) -> List[Path]:
    out: List[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*.nml") if q.is_file()))
        else:
            out.append(p)
    seen, unique = set(), []
    for p in out:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(r)
    return unique


def _manifest_repo(file: Path) -> Optional[str]:
    for parent in file.parents:
        m = parent / "MANIFEST.tsv"
        if m.is_file():
            rel = file.relative_to(parent).as_posix()
            with open(m, newline="") as fh:
                for row in csv.DictReader(fh, delimiter="\t"):
                    if row.get("path") == rel and row.get("source_repo"):
                        return row["source_repo"]
            return None
    return None


def _repository(file: Path, roots: List[Path]) -> str:
    repo = _manifest_repo(file)
    if repo:
        return repo
    for root in roots:
        if root.is_dir() and root in file.parents:
            parts = file.relative_to(root).parts
            return parts[0] if len(parts) > 1 else root.name
    return file.parent.name


def _include_targets(doc, file: Path, allow: Sequence = ()) -> List[Path]:
    out = []
    policy = ReadPolicy.for_model(file, allow)
    for inc in doc.includes or []:
        try:
            out.append(resolve_include(inc.href, file, policy=policy))
        except ConversionError:
            pass  # reported when the cell itself is converted
    return out


def _network_facts(doc) -> Tuple[Optional[float], Dict[str, str]]:
    temp = None
    for net in doc.networks or []:
        if getattr(net, "temperature", None):
            temp = to_si(net.temperature, "temperature") - 273.15
    props = {p.tag: p.value for p in doc.properties or []}
    return temp, props


SOURCE_GROUPS = ("bbp", "allen", "allen-fit", "other")
"""The parts of ../shared/neuroml-cells that results and benchmarks report apart: the
Blue Brain cells NeuroML-DB exported, the Allen perisomatic models, the Allen
single-compartment fits, and every other repository."""


def source_group(file: str, repository: Optional[str]) -> str:
    """Which of ``SOURCE_GROUPS`` a cell (its file and source repository) belongs to."""
    if "/NeuroML-DB/bbp/" in file:
        return "bbp"
    if "/tuned_cells/" in file:
        return "allen-fit"
    return "allen" if "AllenInstituteNeuroML" in (repository or "") else "other"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "cell"


def discover(paths: Iterable, allow: Sequence = ()
             ) -> Tuple[List[CellSource], List[Unreadable]]:
    """Every cell defined in ``paths`` (files, or folders searched for ``*.nml``);
    includes are followed inside each file's tree and ``allow`` (``graphs.policy``)."""
    roots = [Path(p).resolve() for p in paths]
    files = _nml_files(paths)
    docs: Dict[Path, object] = {}
    bad: List[Unreadable] = []
    for f in files:
        try:
            docs[f] = parse_document(f, morphology=False)[0]  # ids, biophysics
        except ConversionError as e:
            bad.append(Unreadable(str(f), e))
    # cell file -> (temperature, network file, properties) from networks including it
    facts: Dict[Path, Tuple[Optional[float], str, Dict[str, str]]] = {}
    for f, doc in docs.items():
        if not doc.networks:
            continue
        temp, props = _network_facts(doc)
        for target in _include_targets(doc, f, allow) + [f]:
            if target not in facts or facts[target][0] is None:
                facts[target] = (temp, str(f), props)
    # a cell file no network includes takes the temperature of the networks in its
    # folder when they all agree (the pyloric cells and their 10 degC networks)
    by_folder: Dict[Path, set] = {}
    for temp, net_file, _ in facts.values():
        if temp is not None:
            by_folder.setdefault(Path(net_file).parent, set()).add(temp)
    found = []
    for f, doc in docs.items():
        for member in CELL_MEMBERS:
            for cell in getattr(doc, member, None) or []:
                temp, net_file, props = facts.get(f, (None, "default", {}))
                if temp is None and len(by_folder.get(f.parent, ())) == 1:
                    temp = next(iter(by_folder[f.parent]))
                    net_file = f"networks in {f.parent.name}/"
                found.append((f, member, cell.id, temp, net_file, props,
                              _repository(f, roots), _biophysics(cell)))
    first = [_safe(f"{repo.split('/')[-1]}__{cid}") for f, _, cid, _, _, _, repo, _ in found]
    cells: List[CellSource] = []
    for (f, member, cid, temp, net_file, props, repo, bio), base in zip(found, first):
        if first.count(base) > 1:  # same cell id in several files: name it by its file too
            stem = f.name.removesuffix(".nml").removesuffix(".cell")
            base = _safe(f"{repo.split('/')[-1]}__{stem}__{cid}")
            if stem == cid:
                base += "_" + hashlib.sha256(str(f).encode()).hexdigest()[:6]
        cells.append(CellSource(
            base, str(f), cid, member,
            DEFAULT_TEMPERATURE_C if temp is None else round(temp, 3),
            net_file if temp is not None else "default", repo,
            {**props, **_labels_tsv(f)}, bio))
    return cells, bad


def _biophysics(cell) -> Optional[Biophysics]:
    if properties(cell)[0] is None:
        return None  # a point cell (its parameters are its type's), or none written
    try:
        return biophysics(cell)
    except ConversionError:  # a unit no one defined: reported when the cell is converted
        return None


def author_labels(src: CellSource) -> Dict[str, Optional[str]]:
    """Labels the authors wrote: Allen dendrite type, Cre line and layer; the declared
    Blue Brain e-type, m-type and e-model (``labels.tsv`` beside NeuroML-DB's cells);
    None where a source does not say."""
    p = src.declared
    dendrite = p.get("AIBS:aibs_dendrite_type")
    layer = p.get("bbp:layer")
    for tag, value in p.items():
        if tag.endswith(":location"):
            m = re.search(r"layer\s*([0-9]+[ab/0-9]*)", value)
            layer = m.group(1) if m else None
    return {"dendrite_type": dendrite, "cre_line": p.get("AIBS:aibs_cre_line"),
            "layer": layer, "repository": src.repository,
            "declared_etype": p.get("bbp:etype"), "mtype": p.get("bbp:mtype"),
            "emodel": p.get("bbp:emodel")}


def _labels_tsv(file: Path) -> Dict[str, str]:
    """NeuroML-DB's declared labels of a cell file (``labels.tsv`` in a parent folder:
    nmlcl_id, family, cell_id, title, then key=value columns) as ``bbp:<key>`` tags."""
    stem = file.name.split(".")[0]
    for parent in file.parents:
        table = parent / "labels.tsv"
        if table.is_file():
            with open(table, newline="") as fh:
                for row in csv.reader(fh, delimiter="\t"):
                    if row and row[0] == stem:
                        return {f"bbp:{k}": v for k, v in
                                (kv.split("=", 1) for kv in row[4:] if "=" in kv)}
            return {}
    return {}
