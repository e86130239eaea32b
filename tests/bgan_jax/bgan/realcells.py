"""A small generated real-cell dataset with a known answer, in the layout ``python -m
bnnsim cells`` writes: a two-group cell (soma: Na, K, leak; dendrites: K, leak),
variants written by ``bnnsim.ephys.variants``, and e-features from a known
function of the variant factors instead of NEURON, so the true sensitivity of
every (segment group, species) is known."""

import dataclasses
import json
from pathlib import Path

import numpy as np

from bnnsim.ephys.variants import write_variant
from graphs import convert_file, save_cg
from graphs.storage import write_manifest
from tests.conftest import nml

CHANNELS = """
<ionChannelHH id="leakChan" conductance="10pS"/>
<ionChannelHH id="naChan" conductance="10pS" species="na"/>
<ionChannelHH id="kChan" conductance="10pS" species="k"/>
"""

# log10 rheobase (nA) per doubling of each factor: the ground truth
RHEOBASE_SLOPE = {"soma_group/naChan": -0.30, "soma_group/leakChan": 0.20,
                  "dend_group/leakChan": 0.10, "soma_group/kChan": 0.05, "dend_group/kChan": 0.0}
RATE_SLOPE = {"soma_group/naChan": 0.25, "soma_group/kChan": -0.15,
              "soma_group/leakChan": -0.05, "dend_group/leakChan": -0.02, "dend_group/kChan": 0.0}


def _cell(cell_id: str, soma_diameter: float) -> str:
    return f"""
<cell id="{cell_id}">
  <morphology id="m_{cell_id}">
    <segment id="0" name="soma"><proximal x="0" y="0" z="0" diameter="{soma_diameter}"/>
      <distal x="0" y="0" z="{soma_diameter}" diameter="{soma_diameter}"/></segment>
    <segment id="1" name="dend1"><parent segment="0"/>
      <proximal x="0" y="0" z="{soma_diameter}" diameter="2"/>
      <distal x="0" y="0" z="{soma_diameter + 100}" diameter="2"/></segment>
    <segment id="2" name="dend2"><parent segment="1"/>
      <distal x="0" y="50" z="{soma_diameter + 150}" diameter="1"/></segment>
    <segmentGroup id="soma_group"><member segment="0"/></segmentGroup>
    <segmentGroup id="dend_group"><member segment="1"/><member segment="2"/></segmentGroup>
  </morphology>
  <biophysicalProperties id="bp_{cell_id}">
    <membraneProperties>
      <channelDensity id="na" ionChannel="naChan" condDensity="120 mS_per_cm2" erev="50mV" ion="na" segmentGroup="soma_group"/>
      <channelDensity id="k" ionChannel="kChan" condDensity="36 mS_per_cm2" erev="-77mV" ion="k" segmentGroup="soma_group"/>
      <channelDensity id="lk" ionChannel="leakChan" condDensity="0.3 mS_per_cm2" erev="-65mV" ion="non_specific" segmentGroup="soma_group"/>
      <channelDensity id="kd" ionChannel="kChan" condDensity="5 mS_per_cm2" erev="-77mV" ion="k" segmentGroup="dend_group"/>
      <channelDensity id="lkd" ionChannel="leakChan" condDensity="0.1 mS_per_cm2" erev="-65mV" ion="non_specific" segmentGroup="dend_group"/>
      <specificCapacitance value="1.0 uF_per_cm2"/>
      <initMembPotential value="-65mV"/>
    </membraneProperties>
    <intracellularProperties><resistivity value="0.1 kohm_cm"/></intracellularProperties>
  </biophysicalProperties>
</cell>"""


def efeatures(factors: dict, base: float) -> dict:
    x = {k: np.log2(v) for k, v in factors.items()}
    log_rheo = base + sum(RHEOBASE_SLOPE[k] * x.get(k, 0.0) for k in RHEOBASE_SLOPE)
    log_rate = 1.2 - base + sum(RATE_SLOPE[k] * x.get(k, 0.0) for k in RATE_SLOPE)
    return {"rheobase_nA": 10 ** log_rheo, "x1.5/mean_frequency": 10 ** log_rate}


def write_dataset(root: Path, n_cells: int = 4, n_variants: int = 24) -> Path:
    """The dataset directory: cells 0..n-3 train, then one val, one test."""
    root.mkdir(parents=True, exist_ok=True)
    cells, variants = [], []
    for c in range(n_cells):
        name = f"gen__cell{c}"
        split = "train" if c < n_cells - 2 else ("val" if c == n_cells - 2 else "test")
        src = root / "cells" / f"{name}.cell.nml"
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(nml(CHANNELS + _cell(f"cell{c}", 10.0 + 4 * c), name))
        base = -1.0  # the cells differ in size only; the factors move the features
        members = [(name, src, None, {})]
        for v in range(n_variants):
            vname = f"{name}__v{v}"
            vfile = root / "variants" / f"{vname}.cell.nml"
            members.append((vname, vfile, name, write_variant(src, f"cell{c}", vfile, vname)))
        for mname, file, variant_of, factors in members:
            feats = efeatures(factors, base)
            cg = convert_file(file)
            labels = {"etype": 2, "etype_name": "continuous non-adapting", "efeatures": feats,
                      "source_cell": variant_of or mname, "factors": factors or None,
                      "dendrite_type": "spiny" if c % 2 else "aspiny"}
            npz = root / "graphs" / f"{mname}.npz"
            save_cg(dataclasses.replace(cg, meta=dict(cg.meta, labels=labels)), npz)
            row = {"name": mname, "file": str(file), "cell_id": f"cell{c}", "status": "ok",
                   "characterised": True, "npz": str(npz), "split": split,
                   "variant_of": variant_of, "factors": factors or None, "efeatures": feats,
                   "etype": "continuous non-adapting", "labels": {}}
            (variants if variant_of else cells).append(row)
    (root / "report.json").write_text(json.dumps({"cells": cells, "variants": variants}))
    write_manifest(root, [{"file": r["file"], "npz": r["npz"], "status": "ok"}
                          for r in cells + variants])
    return root
