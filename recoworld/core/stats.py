"""Bootstrap statistics shared by the benchmarks, experiments, evaluation and reports: a mean
with its percentile bootstrap confidence interval, the paired version for differences
between two policies (or scorers) measured on the same units (users, user lives, seeds),
and the pieces these are built from, for statistics other than a plain mean.

One resampling scheme serves every caller: ``resample_indices(n_units, n_boot, seed)``. The
same (n_units, n_boot, seed) gives the same resamples, whether they are used as unit
indices (``bootstrap_ci``) or as per-unit counts (``resample_weights``, the vectorised form
for NaN-aware means, for statistics recomputed per resample such as exposure concentration,
and for pairing several policies on the very same resamples).
"""

from __future__ import annotations

from collections.abc import Iterator
from statistics import NormalDist

import numpy as np

CHUNK = 2_000_000
"""Unit draws per chunk of resamples (bounds the memory of a bootstrap)."""


def resample_indices(n_units: int, n_boot: int = 2000, seed: int = 0) -> Iterator[np.ndarray]:
    """The ``n_boot`` bootstrap resamples of ``n_units`` units, in chunks: int arrays
    ``[rows, n_units]`` of unit indices drawn with replacement, row ``b`` of the
    concatenation being resample ``b``. Chunking does not change the draws."""
    if n_units < 1 or n_boot < 1:
        raise ValueError(
            f"resample_indices: need n_units >= 1 and n_boot >= 1: {n_units}, {n_boot}"
        )
    rng = np.random.default_rng(seed)
    step = max(1, CHUNK // n_units)
    for start in range(0, n_boot, step):
        yield rng.integers(0, n_units, size=(min(step, n_boot - start), n_units))


def resample_weights(n_units: int, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``[n_boot, n_units]`` resample counts: row ``b`` says how many times resample ``b`` of
    ``resample_indices`` (same arguments) draws each unit. Rows sum to ``n_units``."""
    out = np.empty((n_boot, n_units))
    row = 0
    for idx in resample_indices(n_units, n_boot, seed):
        rows = len(idx)
        flat = (idx + n_units * np.arange(rows)[:, None]).ravel()
        out[row : row + rows] = np.bincount(flat, minlength=rows * n_units).reshape(rows, -1)
        row += rows
    return out


def weighted_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per resample (row of ``weights``, e.g. ``resample_weights``), the mean of ``values``
    (one per unit) with NaN values left out; NaN for a resample without any value."""
    v = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(v)
    num = weights[:, ok] @ v[ok]
    den = weights[:, ok].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _quantiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def percentile_interval(
    samples: np.ndarray, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile CI from bootstrap ``samples`` of a statistic (NaN samples left out);
    ``(None, None)`` when no sample is left."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[~np.isnan(s)]
    if len(s) == 0:
        return None, None
    return _quantiles(s, level)


def normal_interval(
    point: float | None, samples: np.ndarray, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Normal CI around ``point`` with the bootstrap standard error of ``samples`` (NaN left
    out): for statistics whose resamples are biased, e.g. set metrics such as coverage (a
    resample repeats some units, so it covers fewer items). ``(None, None)`` without a point
    or with fewer than two samples."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[~np.isnan(s)]
    if point is None or len(s) < 2:
        return None, None
    z = NormalDist().inv_cdf((1 + level) / 2)
    se = float(s.std(ddof=1))
    return point - z * se, point + z * se


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of ``values`` (one per user) with a percentile bootstrap CI over users. The same
    seed and length give the same resamples, so CIs of different scorers are coherent."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError("bootstrap_ci: expected a non-empty 1-d array")
    means = np.concatenate([v[idx].mean(1) for idx in resample_indices(len(v), n_boot, seed)])
    lo, hi = _quantiles(means, level)
    return {"mean": float(v.mean()), "lo": lo, "hi": hi, "n": len(v)}


def paired_bootstrap_ci(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of a - b (paired per user) with its bootstrap CI (users resampled jointly)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError("paired_bootstrap_ci: a and b must have the same shape")
    return bootstrap_ci(a - b, n_boot, level, seed)
