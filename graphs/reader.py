"""Reading NeuroML2 files and their <include>s into libNeuroML objects.

Each XML file goes through ``graphs.document``'s hardened parser; an HDF5 root
(``*.nml.h5``) through ``graphs.hdf5``, whose includes resolve the same way.
``neuroml.loaders.read_neuroml2_file`` is not used because its lxml parser
resolves entities, it keeps include state in a shared default argument
(libNeuroML #137) and it calls ``sys.exit`` on a missing file. Include
resolution here is a pure function of the root path and the folders the user allowed:
an include never leads outside them (``graphs.policy``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from neuroml.nml import nml

from graphs.document import Component, line_of, parse_document  # noqa: F401 (re-exported)
from graphs.errors import MissingInclude, RemoteInclude
from graphs.hdf5 import is_hdf5, read_hdf5
from graphs.policy import ReadPolicy

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:(//|[^\\])")  # scheme:..., not C:\
_NOT_COMPONENTS = {"includes", "networks", "ComponentType"}


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


def resolve_include(href: str, including: Path, line=None,
                    policy: Optional[ReadPolicy] = None) -> Path:
    """The file an <include href> names (relative to the including file), inside the
    folders ``policy`` allows (default: the including file's tree, ``graphs.policy``).

    An absolute href outside those folders is read against the including file's folder
    when such a file exists there: models written as ``/channels/x.nml`` mean that
    (jNeuroML reads a missing absolute path so, Java's ``File(parent, child)``). The
    absolute path itself is never looked at then."""
    if _URL.match(href):
        raise RemoteInclude(including, f"include href {href!r} is remote; remote files "
                            "are never fetched (download it and include it by path)",
                            "include", line)
    policy = policy or ReadPolicy.for_model(including)
    target = Path(href)
    local = including.parent / href.lstrip("/")
    if not target.is_absolute():
        target = local
    elif policy.allows(target):
        target = target if target.is_file() else local
    elif policy.allows(local) and local.is_file():
        target = local
    target = policy.check(target, including, f"include href {href!r}", "include", line)
    if not target.is_file():
        raise MissingInclude(including, f"included file {href!r} not found "
                             f"(looked at {target})", "include", line)
    return target


def read_model(path, allow: Sequence = ()) -> Model:
    """Read ``path`` and, recursively, every file it includes (each once). An HDF5
    root (``*.nml.h5``) is read by ``graphs.hdf5``; its includes resolve the same way.
    Includes and HDF5 links must stay inside the model's tree or a folder in ``allow``
    (``graphs.policy``)."""
    root = Path(path).resolve() if Path(path).exists() else Path(path)
    policy = ReadPolicy.for_model(root, allow)
    documents: List[Tuple[str, nml.NeuroMLDocument]] = []
    sha: Dict[str, str] = {}
    pending = [root]
    seen = {root}
    custom: List[Dict[str, Component]] = []
    h5_networks: Tuple = ()
    while pending:
        current = pending.pop(0)
        if current == root and is_hdf5(root):
            doc, digest, extra, h5_networks = read_hdf5(root, policy)
        else:
            doc, digest, extra = parse_document(current)
        documents.append((str(current), doc))
        custom.append(extra)
        sha[str(current)] = digest
        for inc in doc.includes or []:
            target = resolve_include(inc.href, current, line_of(inc), policy)
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
