"""Bootstrap statistics shared by the benchmarks, experiments and reports: a mean with its
percentile bootstrap confidence interval, and the paired version for differences between
two policies (or scorers) measured on the same units (users, seeds)."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of ``values`` (one per user) with a percentile bootstrap CI over users. The same
    seed and length give the same resamples, so CIs of different scorers are coherent."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError("bootstrap_ci: expected a non-empty 1-d array")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, 2_000_000 // len(v))  # resample in chunks (bounded memory)
    for start in range(0, n_boot, step):
        n = min(step, n_boot - start)
        means[start : start + n] = v[rng.integers(0, len(v), size=(n, len(v)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(v.mean()), "lo": float(lo), "hi": float(hi), "n": len(v)}


def paired_bootstrap_ci(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of a - b (paired per user) with its bootstrap CI (users resampled jointly)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError("paired_bootstrap_ci: a and b must have the same shape")
    return bootstrap_ci(a - b, n_boot, level, seed)
