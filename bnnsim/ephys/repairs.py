"""Checks a cell passes before export, and the one documented repair (opt-in).

62 of the Allen Cell Types cells in the corpus name a calcium concentration
model (``CaDynamics_<id>``) that no file defines: the per-cell fits were
lost in the NeuroML export upstream. Such a cell fails with a message saying
so. With ``--fill-missing-ca-dynamics`` the missing model is defined, beside
the cell (the cell's files are never edited), as a
``concentrationModelHayEtAl`` with that type's published defaults (Hay et al.
2011, the CaDynamics_E2 mechanism the Allen models use: gamma 0.05, decay
80 ms, depth 0.1 um, minCai 1e-4 mM), and the cell's row records the repair.
The repair applies only where the cell's own files define that ComponentType.
"""

from __future__ import annotations

from typing import List, NamedTuple, Sequence

from graphs.reader import read_model

HAY_TYPE = "concentrationModelHayEtAl"
HAY_DEFAULTS = {"minCai": "1e-4 mM", "decay": "80 ms", "depth": "0.1 um", "gamma": "0.05"}


class Missing(NamedTuple):
    species: str
    model: str  # the concentration model id no file defines
    ion: str


def missing_concentration_models(cell_file, cell_id: str, allow: Sequence = ()
                                 ) -> List[Missing]:
    """Species of ``cell_id`` whose concentration model is defined nowhere in its files."""
    model = read_model(cell_file, allow)
    comp = model.components.get(cell_id)
    if comp is None or comp.obj is None:
        return []
    bp = getattr(comp.obj, "biophysical_properties", None)
    ip = getattr(bp, "intracellular_properties", None)
    out = []
    for sp in getattr(ip, "species", None) or []:
        if sp.concentration_model not in model.components:
            out.append(Missing(sp.id, sp.concentration_model, sp.ion or sp.id))
    return out


def defines_hay_type(cell_file, allow: Sequence = ()) -> bool:
    model = read_model(cell_file, allow)
    return any(ct.name == HAY_TYPE for _, doc in model.documents
               for ct in getattr(doc, "ComponentType", None) or [])


def hay_defaults(missing: List[Missing]) -> str:
    """NeuroML for the missing models, Hay et al.'s defaults (see module docstring)."""
    attrs = " ".join(f'{k}="{v}"' for k, v in HAY_DEFAULTS.items())
    return "\n".join(f'  <concentrationModel id="{m.model}" type="{HAY_TYPE}" {attrs} '
                     f'ion="{m.ion}"/>' for m in missing)
