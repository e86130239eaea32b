"""Spiking networks trained with STBP and optional spike-timing gradient scaling.

model (LIF layers, surrogate spikes, the optax scaling transform) -> train
(the bundled 8x8 digits, the run).
"""
