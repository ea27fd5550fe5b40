"""Behaviour statistics of the fidelity card: simulated user lives against the MovieLens
raters they were fitted to, each as a Wasserstein distance beside a trivial baseline's.

Owns the arithmetic only (pure numpy + ``scipy.stats.wasserstein_distance``); the card
(``recoworld.evaluation.fidelity_card``) feeds it the rating log and the per-life logs of
``recoworld.evaluation.fidelity_ranking``.

- **Activity**: ratings per real user vs clicks per simulated life. The units differ (a
  rating log over months vs one life of at most a few sessions), so each sample is divided
  by its own mean: the distance compares shapes (spread, skew), not levels.
- **Genre mix**: per user (life), the share of each genre in what it rated (clicked), a
  film's genres weighted equally (``topics_normalized``). Distance: the mean over genres of
  the Wasserstein distance between the per-user shares. Baseline: the real users with their
  films shuffled among them (each keeps its number of films): same overall mix, no
  personal taste.
- **Return gaps**: a user's ratings sorted by time start a new session after a gap above
  ``session_gap_hours``; the gaps between sessions (hours) are compared on a log10 scale
  with the simulated gaps before each return. Baseline: an exponential with the real mean
  gap (memoryless returns).

Every sample draws from its own seeded stream. With ``n_boot`` > 0, each policy's distance
also gets a 95 % percentile bootstrap CI (``distance_ci``): the real users and the
simulated lives are resampled independently and the distance recomputed (normalisation
included). A distance is never negative and resampling duplicates rows, so near the noise
floor the interval can sit above the point estimate: read it as the spread of the
distance, not as a test of zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance


def per_user_counts(user: np.ndarray, users: np.ndarray) -> np.ndarray:
    """[len(users)] number of rows of ``user`` per user of ``users``."""
    user = np.asarray(user, dtype=np.int64)
    n = int(max(user.max(initial=-1), np.max(users, initial=-1))) + 1
    return np.bincount(user, minlength=n)[np.asarray(users, dtype=np.int64)].astype(np.float64)


def mean_normalised(x: np.ndarray) -> np.ndarray:
    """``x / mean(x)``: a scale-free sample (NaN-free; an all-zero sample stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    m = float(x.mean()) if len(x) else 0.0
    return x / m if m > 0 else x.copy()


def genre_shares(
    user: np.ndarray, item: np.ndarray, users: np.ndarray, topics: np.ndarray
) -> np.ndarray:
    """[len(users), T] per user, the mean of ``topics`` [N, T] (rows sum to 1) over its
    rows of (``user``, ``item``); NaN rows for users without any."""
    users = np.asarray(users, dtype=np.int64)
    pos = np.full(int(max(np.max(user, initial=-1), users.max(initial=-1))) + 1, -1)
    pos[users] = np.arange(len(users))
    j = pos[np.asarray(user, dtype=np.int64)]
    keep = j >= 0
    mass = np.zeros((len(users), topics.shape[1]))
    np.add.at(mass, j[keep], topics[np.asarray(item)[keep]])
    return shares_of(mass)


def shares_of(mass: np.ndarray) -> np.ndarray:
    """Rows of ``mass`` [U, T] divided by their sums (NaN rows where the sum is 0)."""
    total = mass.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, mass / np.where(total > 0, total, 1.0), np.nan)


def shuffled_users(
    user: np.ndarray, item: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The same log with its items permuted across rows: each user keeps its number of
    rows, the overall item mix is unchanged, per-user taste is gone."""
    perm = np.random.default_rng([seed, 31]).permutation(len(item))
    return np.asarray(user), np.asarray(item)[perm]


def mean_wasserstein(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Per column (genre), the Wasserstein distance between the non-NaN rows of ``a`` and
    ``b``; their mean over the columns present in both."""
    a = a[~np.isnan(a).any(1)]
    b = b[~np.isnan(b).any(1)]
    per = np.array([wasserstein_distance(a[:, g], b[:, g]) for g in range(a.shape[1])])
    return {"mean": float(per.mean()), "per_genre": per.tolist(), "n": [len(a), len(b)]}


def session_gaps(
    user: np.ndarray, timestamp: np.ndarray, users: np.ndarray, gap_hours: float = 1.0
) -> dict[str, np.ndarray]:
    """Sessionise each user of ``users``: its timestamps (seconds) sorted, a new session
    after a gap > ``gap_hours``. Returns ``gaps`` (hours between sessions, pooled) and
    ``sessions`` (sessions per user)."""
    user = np.asarray(user, dtype=np.int64)
    ts = np.asarray(timestamp, dtype=np.float64)
    keep = np.isin(user, users)
    u, t = user[keep], ts[keep]
    order = np.lexsort((t, u))
    u, t = u[order], t[order]
    same = u[1:] == u[:-1]
    dt = (t[1:] - t[:-1]) / 3600.0
    new = same & (dt > gap_hours)
    gaps = dt[new]
    starts = np.concatenate([[True], ~same]) if len(u) else np.zeros(0, bool)
    first = np.flatnonzero(starts)
    sessions = np.add.reduceat(np.concatenate([[0], new]).astype(np.int64), first) + 1
    return {"gaps": gaps, "sessions": sessions.astype(np.float64)}


def split_half(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of the rows of ``x`` into two halves (a noise floor: two
    samples of the same population)."""
    perm = np.random.default_rng([seed, 37]).permutation(len(x))
    h = len(x) // 2
    return x[perm[:h]], x[perm[h : 2 * h]]


def boot_distance(
    a: np.ndarray, b: np.ndarray, distance: Callable[[np.ndarray, np.ndarray], float],
    n_boot: int, seed: int = 0,
) -> dict[str, float]:  # fmt: skip
    """95 % percentile bootstrap interval of ``distance(a, b)``: the rows of ``a`` and of
    ``b`` resampled independently, ``n_boot`` times (a seeded stream of its own)."""
    rng = np.random.default_rng([seed, 47])
    vals = np.array([
        distance(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))])
        for _ in range(n_boot)
    ])  # fmt: skip
    lo, hi = np.quantile(vals, [0.025, 0.975])
    return {"lo": float(lo), "hi": float(hi), "n_boot": n_boot}


def _cis(
    real: np.ndarray, sims: dict[str, np.ndarray],
    distance: Callable[[np.ndarray, np.ndarray], float], n_boot: int, seed: int,
) -> dict[str, dict[str, float]]:  # fmt: skip
    if n_boot <= 0:
        return {}
    return {
        name: boot_distance(real, x, distance, n_boot, seed) for name, x in sims.items() if len(x)
    }


def activity_stats(
    real_counts: np.ndarray, sim_counts: dict[str, np.ndarray], seed: int = 0, n_boot: int = 0
) -> dict[str, Any]:
    """Distances between mean-normalised activity samples: each simulated policy's lives vs
    the real users, the real users' split halves (noise floor) and users who all rate at
    one rate (a Poisson with the real mean: no heterogeneity)."""
    real = mean_normalised(real_counts)
    a, b = split_half(real, seed)
    rng = np.random.default_rng([seed, 41])
    homogeneous = mean_normalised(rng.poisson(real_counts.mean(), size=len(real)))
    return {
        "real": describe(real_counts),
        "sim": {name: describe(c) for name, c in sim_counts.items()},
        "distance": {
            name: float(wasserstein_distance(real, mean_normalised(c)))
            for name, c in sim_counts.items()
        },
        "baselines": {
            "real split halves (noise floor)": float(wasserstein_distance(a, b)),
            "homogeneous users (Poisson, real mean)": float(
                wasserstein_distance(real, homogeneous)
            ),
        },
        "distance_ci": _cis(
            np.asarray(real_counts, dtype=np.float64),
            sim_counts,
            lambda x, y: float(wasserstein_distance(mean_normalised(x), mean_normalised(y))),
            n_boot,
            seed,
        ),
    }


def genre_stats(
    real: np.ndarray, shuffled: np.ndarray, sim: dict[str, np.ndarray], seed: int = 0,
    n_boot: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Mean-over-genres Wasserstein distances of per-user genre shares: each policy's
    simulated lives vs the real users, the shuffled-user log vs the real users (no taste),
    and the real split halves (noise floor). Also the overall genre mix (pooled shares)
    compared by total variation."""
    a, b = split_half(real[~np.isnan(real).any(1)], seed)
    pooled_real = np.nanmean(real, axis=0)
    return {
        "distance": {name: mean_wasserstein(real, s)["mean"] for name, s in sim.items()},
        "baselines": {
            "shuffled users (no taste)": mean_wasserstein(real, shuffled)["mean"],
            "real split halves (noise floor)": mean_wasserstein(a, b)["mean"],
        },
        "dispersion": {
            "real": float(np.nanstd(real, axis=0).mean()),
            "shuffled users (no taste)": float(np.nanstd(shuffled, axis=0).mean()),
            **{name: float(np.nanstd(s, axis=0).mean()) for name, s in sim.items()},
        },
        "overall_mix_tv": {
            name: float(0.5 * np.abs(np.nanmean(s, axis=0) - pooled_real).sum())
            for name, s in sim.items()
        },
        "lives_without_clicks": {name: int(np.isnan(s).any(1).sum()) for name, s in sim.items()},
        "distance_ci": _cis(
            real[~np.isnan(real).any(1)],
            {name: s[~np.isnan(s).any(1)] for name, s in sim.items()},
            lambda x, y: mean_wasserstein(x, y)["mean"],
            n_boot,
            seed,
        ),
    }


def gap_stats(
    real_gaps: np.ndarray, sim_gaps: dict[str, np.ndarray], seed: int = 0, n_boot: int = 0
) -> dict[str, Any]:
    """Wasserstein distances between log10(gap hours): each policy's simulated gaps before a
    return vs the real between-session gaps, an exponential with the real mean gap
    (memoryless returns) and the real split halves (noise floor)."""
    log_real = np.log10(real_gaps)
    a, b = split_half(log_real, seed)
    expo = np.random.default_rng([seed, 43]).exponential(real_gaps.mean(), size=len(real_gaps))
    return {
        "real": describe(real_gaps),
        "sim": {name: describe(g) for name, g in sim_gaps.items()},
        "distance": {
            name: float(wasserstein_distance(log_real, np.log10(np.maximum(g, 1e-6))))
            if len(g)
            else float("nan")
            for name, g in sim_gaps.items()
        },
        "baselines": {
            "exponential, real mean (memoryless)": float(
                wasserstein_distance(log_real, np.log10(np.maximum(expo, 1e-6)))
            ),
            "real split halves (noise floor)": float(wasserstein_distance(a, b)),
        },
        "distance_ci": _cis(
            log_real,
            {name: np.log10(np.maximum(g, 1e-6)) for name, g in sim_gaps.items()},
            lambda x, y: float(wasserstein_distance(x, y)),
            n_boot,
            seed,
        ),
    }


def describe(x: np.ndarray) -> dict[str, float]:
    """n, mean, median, 10th / 90th percentile and coefficient of variation of ``x``."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return {"n": 0}
    m = float(x.mean())
    return {
        "n": len(x),
        "mean": m,
        "median": float(np.median(x)),
        "p10": float(np.quantile(x, 0.1)),
        "p90": float(np.quantile(x, 0.9)),
        "cv": float(x.std() / m) if m > 0 else float("nan"),
    }
