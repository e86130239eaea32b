"""Typed outcomes of characterising one cell: each names the cell and the stage.

A batch build records the stage and message of every failure in report.json
and goes on with the next cell.
"""

from __future__ import annotations


class CellError(Exception):
    """Base class: a cell could not be characterised. ``stage`` is what failed."""

    stage = "error"

    def __init__(self, cell: str, message: str):
        self.cell, self.detail = str(cell), message
        super().__init__(f"{cell}: {self.stage}: {message}")


class ConversionFailed(CellError):
    """The NeuroML could not be read or turned into a CG (graphs' front end)."""

    stage = "conversion"


class ExportFailed(CellError):
    """jNeuroML could not export the cell to NEURON (unsupported or broken component)."""

    stage = "export"


class CompileFailed(CellError):
    """nrnivmodl could not compile the exported channel mechanisms."""

    stage = "compile"


class SimulationFailed(CellError):
    """NEURON could not load or run the exported cell."""

    stage = "simulation"


class NonFiniteVoltage(SimulationFailed):
    """The voltage went NaN/inf: a step too large for the cell's fastest kinetics."""
