"""Safe reading of NeuroML2 files and their <include>s into libNeuroML objects.

We parse the XML ourselves with a hardened lxml parser (no DTD, no entity
expansion, no network, comments dropped) and hand the root element to
libNeuroML's generated ``build`` so the object model is libNeuroML's own.
``neuroml.loaders.read_neuroml2_file`` is not used because its lxml parser
resolves entities, it keeps include state in a shared default argument
(libNeuroML #137) and it calls ``sys.exit`` on a missing file. Include
resolution here is a pure function of the root path.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

from lxml import etree
from neuroml.nml import nml

from graphs.errors import (EmptyFile, MalformedXML, MissingFile, MissingInclude,
                           NotNeuroML, RemoteInclude, UnsafeXML)

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:(//|[^\\])")  # scheme:..., not C:\
_NOT_COMPONENTS = {"includes", "networks", "ComponentType"}


class Component(NamedTuple):
    """A NeuroML component with an id: its element name, libNeuroML object, file.

    ``obj`` is None for elements outside the NeuroML2 schema (custom LEMS
    component types such as ``generalizedIzhikevichCell``): libNeuroML skips
    them, we keep their id, tag and line so references to them still resolve.
    """

    tag: str
    obj: object
    file: str
    line: Optional[int] = None


class Model(NamedTuple):
    """A root NeuroML file with all files it includes, indexed by component id."""

    root: str
    documents: Tuple[Tuple[str, nml.NeuroMLDocument], ...]  # root first
    components: Dict[str, Component]
    sha256: Dict[str, str]  # file -> sha256 of its bytes
    h5_networks: Tuple = ()  # graphs.network.Network tables of an HDF5 root (graphs.hdf5)

    @property
    def root_document(self) -> nml.NeuroMLDocument:
        return self.documents[0][1]


def line_of(obj) -> Optional[int]:
    """Source line of a libNeuroML object (libNeuroML keeps its element node)."""
    node = getattr(obj, "gds_elementtree_node_", None)
    return getattr(node, "sourceline", None)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, remove_comments=True,
                           remove_pis=True, huge_tree=False)


_KNOWN_TAGS = {m.get_child_attrs()["name"] for m in nml.NeuroMLDocument.member_data_items_}


def parse_document(path: Path) -> Tuple[nml.NeuroMLDocument, str, Dict[str, Component]]:
    """One NeuroML file -> (libNeuroML document, sha256 of its bytes, custom elements)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingFile(path, "file not found") from None
    except (IsADirectoryError, PermissionError, OSError) as e:
        raise MissingFile(path, f"cannot read file ({e.strerror or e})") from None
    doc, custom = parse_xml(data, path)
    return doc, hashlib.sha256(data).hexdigest(), custom


def parse_xml(data: bytes, path: Path) -> Tuple[nml.NeuroMLDocument, Dict[str, Component]]:
    """NeuroML XML bytes (of ``path``, named in errors) -> (document, custom elements)."""
    if not data.strip():
        raise EmptyFile(path, "file is empty")
    for marker in (b"<!DOCTYPE", b"<!ENTITY"):
        pos = data.find(marker)
        if pos >= 0:
            line = data.count(b"\n", 0, pos) + 1
            raise UnsafeXML(path, "DTD/entity declarations are refused (XXE and "
                            "entity expansion are never processed)", "!DOCTYPE", line)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as e:
        raise MalformedXML(path, f"not well-formed XML: {e.msg}", line=e.lineno) from None
    qname = etree.QName(root)
    if qname.localname != "neuroml" or "neuroml2" not in (qname.namespace or ""):
        raise NotNeuroML(path, "root element is not a NeuroML2 <neuroml> "
                         f"(found <{qname.localname}> in namespace "
                         f"{qname.namespace or 'none'})", qname.localname, root.sourceline)
    doc = nml.NeuroMLDocument.factory()
    try:
        doc.build(root, gds_collector_=nml.GdsCollector_())
    except Exception as e:  # generateDS raises bare exceptions on bad attribute values
        raise MalformedXML(path, f"libNeuroML could not read the document: {e}") from None
    custom = {el.get("id"): Component(etree.QName(el).localname, None, str(path),
                                      el.sourceline)
              for el in root
              if etree.QName(el).localname not in _KNOWN_TAGS and el.get("id")}
    return doc, custom


def resolve_include(href: str, including: Path, line=None) -> Path:
    """The file an <include href> names (relative to the including file)."""
    if _URL.match(href):
        raise RemoteInclude(including, f"include href {href!r} is remote; remote files "
                            "are never fetched (download it and include it by path)",
                            "include", line)
    target = Path(href)
    if not target.is_absolute():
        target = including.parent / target
    elif not target.is_file():
        # "/channels/x.nml" where no such absolute file exists: jNeuroML reads it against
        # the including file's folder (Java's File(parent, child)), and so do we
        target = including.parent / href.lstrip("/")
    target = target.resolve()
    if not target.is_file():
        raise MissingInclude(including, f"included file {href!r} not found "
                             f"(looked at {target})", "include", line)
    return target


def is_hdf5(path) -> bool:
    """An HDF5 file by name (``*.h5``, ``*.hdf5``): NeuroML's large-network format."""
    return Path(path).suffix.lower() in (".h5", ".hdf5")


def read_model(path) -> Model:
    """Read ``path`` and, recursively, every file it includes (each once). An HDF5
    root (``*.nml.h5``) is read by ``graphs.hdf5``; its includes resolve the same way."""
    root = Path(path).resolve() if Path(path).exists() else Path(path)
    documents: List[Tuple[str, nml.NeuroMLDocument]] = []
    sha: Dict[str, str] = {}
    pending = [root]
    seen = {root}
    custom: List[Dict[str, Component]] = []
    h5_networks: Tuple = ()
    while pending:
        current = pending.pop(0)
        if current == root and is_hdf5(root):
            from graphs.hdf5 import read_hdf5  # a reader of the same layer

            doc, digest, extra, h5_networks = read_hdf5(root)
        else:
            doc, digest, extra = parse_document(current)
        documents.append((str(current), doc))
        custom.append(extra)
        sha[str(current)] = digest
        for inc in doc.includes or []:
            target = resolve_include(inc.href, current, line_of(inc))
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return Model(str(root), tuple(documents), _index_components(documents, custom), sha,
                 h5_networks)


def _index_components(documents, custom) -> Dict[str, Component]:
    """id -> Component over all documents; the first definition of an id wins."""
    out: Dict[str, Component] = {}
    for (file, doc), extra in zip(documents, custom):
        for cid, comp in extra.items():
            out.setdefault(cid, comp)
        for member in nml.NeuroMLDocument.member_data_items_:
            name = member.get_name()
            if name in _NOT_COMPONENTS:
                continue
            tag = member.get_child_attrs()["name"]
            for obj in getattr(doc, name, None) or []:
                cid = getattr(obj, "id", None)
                if cid is not None and cid not in out:
                    out[cid] = Component(tag, obj, file, line_of(obj))
    return out


def networks(model: Model):
    """All <network> elements of the model as (network, file), root file first."""
    return [(net, file) for file, doc in model.documents for net in doc.networks or []]
