"""Optional re-encoding of channel densities for the model (``BGANConfig.log_densities``).

The schema encodes every physical quantity as ``sign(v) * log1p(|v|)`` of its value in
a reference unit (mS/cm^2 for channel densities). That is log-like for large values
and linear for small ones: doubling a sodium density of 50 mS/cm^2 moves its encoded
value by 0.69, doubling a leak of 0.01 mS/cm^2 by 0.01. Real cells' leak and
calcium densities sit in that linear regime, so a model sees their changes ~70x
smaller than the same relative change of Na or K. With ``log_densities`` the density
columns are given to the model as log10 of the density (floored at
``DENSITY_FLOOR``, so an absent channel is a finite value), and a doubling is the
same step, log10(2), for every channel. One function, used by the feature
statistics and by the model, so both see the same inputs.
"""

from __future__ import annotations

import numpy as np

from graphs.schema import NODE_COLUMNS

DENSITY_FLOOR = 1e-4  # mS/cm^2: below any density in the corpus; an absent channel sits here
DENSITY_COLUMNS = np.array([c.unit == "mS_per_cm2" and c.name.startswith("g_")
                            for c in NODE_COLUMNS])  # [F] bool


def log_densities(x, xp=np):
    """[N, F] encoded node features -> the same with density columns as log10(density).

    ``xp``: numpy or jax.numpy (the model calls it inside jit)."""
    # graphs.schema.decode for these non-negative columns, written with xp so it jits
    density = xp.expm1(xp.maximum(x, 0.0))  # mS/cm^2
    logged = xp.log10(density + DENSITY_FLOOR)
    return xp.where(xp.asarray(DENSITY_COLUMNS), logged, x)
