"""Typed errors a user can cause with bad input.

Every error names the file and, where known, the element and line, so that a
batch report tells the user what to fix without a traceback.
"""

from __future__ import annotations

from typing import Optional


class ConversionError(Exception):
    """Base class: a NeuroML file could not be turned into a graph."""

    def __init__(self, file, message: str, element: Optional[str] = None,
                 line: Optional[int] = None):
        self.file = str(file)
        self.element = element
        self.line = line
        where = self.file
        if line is not None:
            where += f":{line}"
        if element:
            where += f" <{element}>"
        super().__init__(f"{where}: {message}")
        self.detail = message


class MissingFile(ConversionError):
    """The file does not exist or cannot be read."""


class EmptyFile(ConversionError):
    """The file has no content."""


class MalformedXML(ConversionError):
    """The file is not well-formed XML."""


class UnsafeXML(ConversionError):
    """DTDs / entity declarations (XXE, entity bombs) are refused unexpanded."""


class NotNeuroML(ConversionError):
    """Well-formed XML whose root is not a NeuroML2 <neuroml> element."""


class MissingInclude(ConversionError):
    """An <include href> names a file that does not exist."""


class RemoteInclude(ConversionError):
    """An <include href> names a URL; remote files are never fetched."""


class OutsideModelTree(ConversionError):
    """An include, or an HDF5 link, leads outside the folders the model may read
    (``graphs.policy``): refused before the target is opened."""


class UnknownComponent(ConversionError):
    """A reference (component, synapse, cell, segment group...) names nothing."""


class UnitError(ConversionError):
    """A quantity whose unit does not parse or has the wrong dimension."""


class InvalidValue(ConversionError):
    """A value that is physically absurd (negative diameter, NaN, ...)."""


class DamagedHDF5(ConversionError):
    """An HDF5 file that cannot be opened or read: truncated, corrupt, or not HDF5."""


class InvalidDataset(ConversionError):
    """A NeuroML HDF5 group or dataset that is missing, of the wrong shape or dtype, or
    lacks a column or attribute it needs (the element names the dataset)."""


class NothingToConvert(ConversionError):
    """The document defines nothing the CG schema can represent."""


class GraphFileError(ValueError):
    """A stored graph (``.npz`` CG) that cannot be used: names the file and the problem."""

    def __init__(self, file, problem: str):
        self.file, self.problem = str(file), problem
        super().__init__(f"{file}: {problem}")


class DamagedGraphFile(GraphFileError):
    """Truncated, not a zip, pickled, missing arrays, or arrays of the wrong dtype/shape."""


class SchemaMismatch(GraphFileError):
    """A stored graph was built by a different schema version."""
