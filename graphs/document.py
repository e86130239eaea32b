"""Safe parsing of one NeuroML2 XML document into libNeuroML objects.

We parse the XML ourselves with a hardened lxml parser (no DTD, no entity
expansion, no network, comments dropped) and hand the root element to
libNeuroML's generated ``build`` so the object model is libNeuroML's own. Used for
``.nml`` files (``graphs.reader``) and for the XML that NeuroML HDF5 files carry
(``graphs.hdf5``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Tuple

from lxml import etree
from neuroml.nml import nml

from graphs.errors import EmptyFile, MalformedXML, MissingFile, NotNeuroML, UnsafeXML


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


def line_of(obj) -> Optional[int]:
    """Source line of a libNeuroML object (libNeuroML keeps its element node)."""
    node = getattr(obj, "gds_elementtree_node_", None)
    return getattr(node, "sourceline", None)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, remove_comments=True,
                           remove_pis=True, huge_tree=False)


_KNOWN_TAGS = {m.get_child_attrs()["name"] for m in nml.NeuroMLDocument.member_data_items_}


def parse_document(path: Path, morphology: bool = True
                   ) -> Tuple[nml.NeuroMLDocument, str, Dict[str, Component]]:
    """One NeuroML file -> (libNeuroML document, sha256 of its bytes, custom elements).
    ``morphology=False``: see ``parse_xml``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingFile(path, "file not found") from None
    except (IsADirectoryError, PermissionError, OSError) as e:
        raise MissingFile(path, f"cannot read file ({e.strerror or e})") from None
    doc, custom = parse_xml(data, path, morphology)
    return doc, hashlib.sha256(data).hexdigest(), custom


_MORPHOLOGY_BULK = ("segment", "member", "path", "subTree")  # under <morphology>


def _drop_morphology(root) -> None:
    """Remove segments and segment-group contents, keeping the groups' ids."""
    for morph in root.iter("{*}morphology"):
        bulk = list(morph.iter(*(f"{{*}}{tag}" for tag in _MORPHOLOGY_BULK)))
        for el in bulk:
            el.getparent().remove(el)


def parse_xml(data: bytes, path: Path, morphology: bool = True
              ) -> Tuple[nml.NeuroMLDocument, Dict[str, Component]]:
    """NeuroML XML bytes (of ``path``, named in errors) -> (document, custom elements).

    ``morphology=False`` leaves every morphology's segments and its segment groups'
    members out (the groups stay, empty): what reads ids, biophysics and networks
    only (``bnnsim.ephys.corpus.discover``) skips building hundreds of thousands of
    segment objects, nine tenths of parsing a reconstructed cell."""
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
    if not morphology:
        _drop_morphology(root)
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
