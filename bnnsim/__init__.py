"""bnnsim: a vectorized JAX simulator of NeuroML point-neuron and HH compartment models.

It labels the canonical dataset by really simulating the generated networks
(docs/DESIGN.md section 6), and is checked against jNeuroML on the same NeuroML
files. Equations are those of the NeuroML2 core types (izhikevich2007Cell,
adExIaFCell, iafCell, iafRefCell; HH channels on the segments of a <cell>,
``bnnsim.morphology``), forward Euler with a fixed step as in
jNeuroML. Units inside: mV, ms, pA, pF, nS (consistent: nS * mV = pA,
pA / pF = mV / ms).

It reads parameter arrays, never XML: ``bnnsim.canonical`` writes the NeuroML
file and hands the same numbers to the simulator.
"""

from bnnsim.cells import CELL_FAMILIES, CellParams, cell_params
from bnnsim.inputs import PulseInputs, SpikeSources, pulse_inputs, spike_sources
from bnnsim.simulate import Model, Network, SimResult, simulate, simulate_many
from bnnsim.synapses import (SYNAPSE_KINDS, GapParams, SynapseParams, gap_params,
                             synapse_params, waveform_factor)

__all__ = ["CELL_FAMILIES", "CellParams", "GapParams", "Network", "PulseInputs", "SYNAPSE_KINDS",
           "Model", "SimResult", "SpikeSources", "SynapseParams", "cell_params", "gap_params",
           "pulse_inputs", "simulate", "simulate_many", "spike_sources", "synapse_params",
           "waveform_factor"]
