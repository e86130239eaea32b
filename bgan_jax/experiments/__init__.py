"""Drivers of the RESULTS.md comparisons (not library code): ``python -m
bgan_jax.experiments.grid|planted|tavrnn|snn``."""
