"""Drivers of the RESULTS.md comparisons, run from a clone (not library code; nothing in
``graphs``, ``bnnsim`` or ``bgan_jax`` imports them): ``python -m
experiments.grid|cells|planted|tavrnn|snn``."""
