"""Electrophysiology of real NeuroML cells: standard current-clamp protocols in NEURON.

The data flow is NeuroML cell -> jNeuroML's NEURON export -> compiled
mechanisms (cached) -> the protocol (``protocol``) driven from Python ->
eFEL features (``features``) -> firing class (``etype``) -> a dataset of CGs
with labels and traces (``dataset``). ``variants`` writes the augmented cells.
See docs/DESIGN.md section 9.
"""
