"""NeuroML quantities -> SI, using the unit definitions of the NeuroML stack.

The table of units comes from ``NeuroMLCoreDimensions.xml`` as loaded by
pyNeuroML (``pyneuroml.utils.units.get_lems_model_with_units``), the same
definitions jNeuroML simulates with. We index it once into a dict instead of
calling ``convert_to_units`` per value because that helper scans all units per
call and loops forever on a string with no leading number.
"""

from __future__ import annotations

import functools
import re
from typing import Dict, NamedTuple, Optional

from graphs.errors import UnitError


class Unit(NamedTuple):
    symbol: str
    dimension: str
    factor: float  # SI value of one unit (scale * 10**power)
    offset: float


# NeuroML2 schema pattern of Nml2Quantity: number, optional spaces, unit symbol.
_QUANTITY = re.compile(
    r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf))\s*([_a-zA-Z0-9]*)\s*$",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=None)
def unit_table() -> Dict[str, Unit]:
    """All NeuroML unit symbols, from pyNeuroML's LEMS model of the core dimensions."""
    from pyneuroml.utils.units import get_lems_model_with_units

    model = get_lems_model_with_units()
    return {
        u.symbol: Unit(u.symbol, u.dimension, u.scale * 10.0 ** u.power, u.offset)
        for u in model.units
    }


@functools.lru_cache(maxsize=None)
def dimension_of_type(data_type: str) -> Optional[str]:
    """Dimension named by a libNeuroML data type, e.g. ``Nml2Quantity_pertime -> per_time``.

    Returns "none" for dimensionless quantities and None for non-quantities.
    """
    if not data_type.startswith("Nml2Quantity"):
        return None
    suffix = data_type[len("Nml2Quantity"):].lstrip("_")
    if suffix in ("", "none"):
        return "none"
    key = suffix.replace("_", "").lower()
    for dim in {u.dimension for u in unit_table().values()}:
        if dim.replace("_", "").lower() == key:
            return dim
    return None


def to_si(quantity, dimension: Optional[str] = None, file="?", element=None,
          line=None) -> float:
    """SI value of a NeuroML quantity such as ``"-65mV"`` or ``"0.3 mS_per_cm2"``.

    ``dimension`` (e.g. "voltage"), when given, is checked against the unit.
    A bare number is returned as is (dimensionless or already SI by context).
    Raises ``UnitError`` naming the file and element on anything else.
    """
    text = str(quantity)
    match = _QUANTITY.match(text)
    if match is None:
        raise UnitError(file, f"quantity {text!r} does not parse as number+unit",
                        element, line)
    magnitude, symbol = float(match.group(1)), match.group(2)
    if not symbol:
        return magnitude
    unit = unit_table().get(symbol)
    if unit is None:
        raise UnitError(file, f"unknown unit {symbol!r} in {text!r}", element, line)
    if dimension not in (None, "none") and unit.dimension != dimension:
        raise UnitError(file, f"{text!r} has dimension {unit.dimension}, "
                        f"expected {dimension}", element, line)
    return (magnitude + unit.offset) * unit.factor
