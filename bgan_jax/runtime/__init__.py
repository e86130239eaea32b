"""Process tuning for the entry points (``train.py``, ``analyze.py``, the experiment
drivers, the benchmarks): the allocator and XLA's CPU flags, set before JAX starts.
Not library code: no model, data or training module imports it."""
