"""The arithmetic of the fidelity report card (``recoworld.evaluation.fidelity_card``): the
"taste discrimination" protocol of Agent4Rec (Zhang et al., SIGIR 2024), as its code runs it,
and the rating-prediction bookkeeping. Pure numpy; no simulator here.

Split (``agent4rec_split``): users with at least ``min_liked`` ratings above 3 are kept (the
others are left out of the data entirely, as the protocol filters the data set); each kept
user's ratings — every star level — are shuffled with a seeded per-user stream and cut
40/30/30 (floor for train and valid, the rest test) into train / valid / test. Valid and test
keep only items that occur in some user's train split (the others are dropped). A seeded
share of the users is set aside for calibration: their lists calibrate thresholds, they are
never scored; the card reports the other (evaluation) users only.

Lists (``discrimination_lists``): per user and ratio 1:m, ``list_size // (m + 1)``
positives drawn uniformly from the user's valid ∪ test items (any rating: positive =
watched) and m times as many negatives from items the user never rated (drawn among the
items of some train split, i.e. the simulated world's catalog), shuffled. Negatives are
uniform, or popularity-matched: for each positive, m negatives from its popularity bin
(train-split rating counts), widened to neighbouring bins only when the bin runs short.
Each (user, ratio, kind) draws from its own stream, so a user's list does not depend on
which other users are in the run.

Metrics (``user_metrics``): a decider says yes/no to every item (no cap on yes). Per user:
accuracy, precision, recall, F1 = 2TP / (2TP + FP + FN); then averaged over users.
Precision of a user who says no "yes" is undefined: ``precision`` counts it as 0 (the
convention of scikit-learn's ``zero_division=0``), ``precision_defined`` leaves such users
out of the mean; F1 needs no convention (it is 0 when TP = 0). CIs: percentile bootstrap
over users (``recoworld.core.stats``), paired for differences.

Thresholds (``calibrate_threshold``): yes iff score >= t, with t maximising the mean over
calibration users of the objective (accuracy, F1, or their mean), on the calibration users'
lists of the same ratio and negative kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from recoworld.core.stats import (
    bootstrap_ci,
    paired_bootstrap_ci,
    percentile_interval,
    resample_weights,
    weighted_means,
)

TRAIN, VALID, TEST, DROPPED, EXCLUDED = 0, 1, 2, -1, -2
PART_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}
Objective = Literal["accuracy", "f1", "mean"]
METRICS = ("accuracy", "precision", "precision_defined", "recall", "f1")


# --------------------------------------------------------------------------- split


@dataclass(frozen=True, eq=False)
class CardSplit:
    """The card's split of a rating log (row r of the log: ``part[r]``)."""

    part: np.ndarray  # [R] int8: TRAIN, VALID, TEST, DROPPED (held-out item in no train split)
    #                   or EXCLUDED (user not eligible, or left out by max_users)
    users: np.ndarray  # [U] eligible user rows, sorted
    calibration: np.ndarray  # user rows whose lists calibrate thresholds (subset of users)
    evaluation: np.ndarray  # user rows the card reports (users minus calibration)
    known_items: np.ndarray  # [N] bool: item occurs in some user's train split
    n_eligible: int  # users meeting min_liked (before max_users)
    n_short: int  # eligible users dropped: fewer held-out items than the largest list needs

    @property
    def train(self) -> np.ndarray:
        return self.part == TRAIN

    def counts(self) -> dict[str, int]:
        return {name: int((self.part == p).sum()) for p, name in PART_NAMES.items()} | {
            "dropped_heldout_unknown_item": int((self.part == DROPPED).sum())
        }


def agent4rec_split(
    user_index: np.ndarray,
    item_index: np.ndarray,
    rating: np.ndarray,
    n_items: int,
    min_liked: int = 20,
    like_above: float = 3.0,
    fractions: tuple[float, float] = (0.4, 0.3),
    calibration_share: float = 0.25,
    min_heldout: int = 10,
    max_users: int | None = None,
    seed: int = 0,
) -> CardSplit:
    """Random 40/30/30 split of every eligible user's ratings (see the module docstring).
    ``fractions``: (train, valid); test is the rest. ``min_heldout``: users with fewer
    valid ∪ test items after the train-item filter are dropped (the 1:1 list needs 10).
    ``max_users``: a seeded subset of the eligible users (quick runs); the rest are
    excluded like non-eligible users."""
    user_index = np.asarray(user_index, dtype=np.int64)
    item_index = np.asarray(item_index, dtype=np.int64)
    rating = np.asarray(rating, dtype=np.float64)
    n_users = int(user_index.max()) + 1 if len(user_index) else 0
    liked = np.bincount(user_index[rating > like_above], minlength=n_users)
    eligible = np.flatnonzero(liked >= min_liked)
    n_eligible = len(eligible)
    if max_users is not None and max_users < n_eligible:
        pick = np.random.default_rng([seed, 7]).choice(n_eligible, max_users, replace=False)
        eligible = np.sort(eligible[pick])
    part = np.full(len(user_index), EXCLUDED, dtype=np.int8)
    order = np.argsort(user_index, kind="stable")
    starts = np.searchsorted(user_index[order], eligible, side="left")
    stops = np.searchsorted(user_index[order], eligible, side="right")
    for u, a, b in zip(eligible, starts, stops, strict=True):
        rows = order[a:b][np.random.default_rng([seed, int(u)]).permutation(b - a)]
        n_train, n_valid = int(len(rows) * fractions[0]), int(len(rows) * fractions[1])
        part[rows[:n_train]] = TRAIN
        part[rows[n_train : n_train + n_valid]] = VALID
        part[rows[n_train + n_valid :]] = TEST
    known = np.zeros(n_items, dtype=bool)
    known[item_index[part == TRAIN]] = True
    held = (part == VALID) | (part == TEST)
    part[held & ~known[item_index]] = DROPPED
    n_held = np.bincount(user_index[(part == VALID) | (part == TEST)], minlength=n_users)
    short = eligible[n_held[eligible] < min_heldout]
    if len(short):
        part[np.isin(user_index, short)] = EXCLUDED
        eligible = np.setdiff1d(eligible, short)
        # train items of dropped users may have been the only train occurrence of an item
        known[:] = False
        known[item_index[part == TRAIN]] = True
        held = (part == VALID) | (part == TEST)
        part[held & ~known[item_index]] = DROPPED
    n_cal = round(calibration_share * len(eligible))
    cal = np.sort(np.random.default_rng([seed, 11]).choice(eligible, n_cal, replace=False))
    return CardSplit(
        part=part,
        users=eligible,
        calibration=cal,
        evaluation=np.setdiff1d(eligible, cal),
        known_items=known,
        n_eligible=n_eligible,
        n_short=len(short),
    )


# --------------------------------------------------------------------------- lists


@dataclass(frozen=True, eq=False)
class Lists:
    """One list per user: ``items`` [U, L], ``label`` [U, L] (True = positive, i.e. the user
    rated the item in valid or test), ``users`` [U] user rows."""

    items: np.ndarray
    label: np.ndarray
    users: np.ndarray
    ratio: int
    kind: str

    def take(self, users: np.ndarray) -> Lists:
        """The lists of user rows ``users`` (each must be present)."""
        pos = {int(u): j for j, u in enumerate(self.users)}
        idx = np.array([pos[int(u)] for u in users], dtype=np.int64)
        return Lists(self.items[idx], self.label[idx], self.users[idx], self.ratio, self.kind)


def list_sizes(ratio: int, list_size: int = 20) -> tuple[int, int]:
    """(positives, negatives) per list at 1:``ratio``: 20 // (m + 1) and m times that."""
    if ratio < 1:
        raise ValueError(f"ratio must be >= 1, got {ratio}")
    n_pos = list_size // (ratio + 1)
    if n_pos < 1:
        raise ValueError(f"list_size {list_size} leaves no positive at 1:{ratio}")
    return n_pos, ratio * n_pos


def popularity_bin_of(counts: np.ndarray, known: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """[N] popularity bin (0 = least popular) of each item by its train-split rating count,
    percentiles over the known items (ties share a bin); -1 for unknown items."""
    counts = np.asarray(counts, dtype=np.float64)
    out = np.full(len(counts), -1, dtype=np.int64)
    k = np.flatnonzero(known)
    s = np.sort(counts[k])
    lo = np.searchsorted(s, counts[k], side="left")
    hi = np.searchsorted(s, counts[k], side="right") - 1
    pct = (lo + hi) / 2.0 / max(len(k) - 1, 1)
    out[k] = np.minimum((pct * n_bins).astype(np.int64), n_bins - 1)
    return out


def _matched_negatives(
    positives: np.ndarray, pool: np.ndarray, bins: np.ndarray, m: int, rng: np.random.Generator
) -> np.ndarray:
    """m distinct negatives per positive from ``pool`` (items), each from the positive's
    popularity bin, widened to the nearest bins when the bin has too few unused items."""
    free = np.ones(len(pool), dtype=bool)
    out = []
    for p in positives:
        width = 0
        while True:
            near = free & (np.abs(bins[pool] - bins[p]) <= width)
            if near.sum() >= m or width > bins.max():
                break
            width += 1
        cand = np.flatnonzero(near)
        if len(cand) < m:
            raise ValueError("fewer unrated items than negatives needed")
        pick = rng.choice(cand, m, replace=False)
        free[pick] = False
        out.append(pool[pick])
    return np.concatenate(out)


def discrimination_lists(
    user_index: np.ndarray,
    item_index: np.ndarray,
    split: CardSplit,
    ratio: int,
    kind: Literal["uniform", "popularity"] = "uniform",
    list_size: int = 20,
    bins: np.ndarray | None = None,
    seed: int = 0,
) -> Lists:
    """The lists of every user of ``split.users`` at 1:``ratio`` (module docstring).
    ``bins``: popularity bin per item (``popularity_bin_of``), needed for kind='popularity'.
    Negatives: known items (``split.known_items``) the user never rated (any part)."""
    if kind not in ("uniform", "popularity"):
        raise ValueError(f"kind must be 'uniform' or 'popularity', got {kind!r}")
    if kind == "popularity" and bins is None:
        raise ValueError("popularity-matched negatives need bins")
    n_pos, n_neg = list_sizes(ratio, list_size)
    user_index = np.asarray(user_index, dtype=np.int64)
    item_index = np.asarray(item_index, dtype=np.int64)
    held = (split.part == VALID) | (split.part == TEST)
    order = np.argsort(user_index, kind="stable")
    sorted_users = user_index[order]
    n = n_pos + n_neg
    items = np.empty((len(split.users), n), dtype=np.int64)
    label = np.empty((len(split.users), n), dtype=bool)
    kind_id = 0 if kind == "uniform" else 1
    for j, u in enumerate(split.users):
        a, b = np.searchsorted(sorted_users, [u, u + 1])
        rows = order[a:b]
        pos_pool = np.unique(item_index[rows[held[rows]]])
        if len(pos_pool) < n_pos:
            raise ValueError(f"user row {u}: {len(pos_pool)} held-out items, need {n_pos}")
        allowed = split.known_items.copy()
        allowed[item_index[rows]] = False
        neg_pool = np.flatnonzero(allowed)
        rng = np.random.default_rng([seed, int(u), ratio, kind_id])
        pos = rng.choice(pos_pool, n_pos, replace=False)
        if kind == "uniform":
            if len(neg_pool) < n_neg:
                raise ValueError(f"user row {u}: fewer than {n_neg} unrated items")
            neg = rng.choice(neg_pool, n_neg, replace=False)
        else:
            assert bins is not None
            neg = _matched_negatives(pos, neg_pool, bins, ratio, rng)
        perm = rng.permutation(n)
        items[j] = np.concatenate([pos, neg])[perm]
        label[j] = (np.arange(n) < n_pos)[perm]
    return Lists(items, label, split.users.copy(), ratio, kind)


# --------------------------------------------------------------------------- metrics


def user_metrics(yes: np.ndarray, label: np.ndarray) -> dict[str, np.ndarray]:
    """Per-user metrics of yes/no answers ``yes`` [U, L] against ``label`` [U, L] (one list
    per user; a user with several lists: average the rows afterwards). Keys: accuracy,
    precision (0 when the user says no "yes"), precision_defined (NaN then), recall, f1,
    no_yes (1.0 for a user with no "yes")."""
    yes, label = np.asarray(yes, dtype=bool), np.asarray(label, dtype=bool)
    if yes.shape != label.shape or yes.ndim != 2:
        raise ValueError(f"user_metrics: shapes {yes.shape} and {label.shape}")
    tp = (yes & label).sum(1).astype(np.float64)
    fp = (yes & ~label).sum(1).astype(np.float64)
    fn = (~yes & label).sum(1).astype(np.float64)
    n_yes, n_pos = tp + fp, tp + fn
    if (n_pos == 0).any():
        raise ValueError("user_metrics: a list without positives")
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(n_yes > 0, tp / n_yes, np.nan)
    return {
        "accuracy": (yes == label).mean(1),
        "precision": np.nan_to_num(prec, nan=0.0),
        "precision_defined": prec,
        "recall": tp / n_pos,
        "f1": 2 * tp / (2 * tp + fp + fn),
        "no_yes": (n_yes == 0).astype(np.float64),
    }


def objective_value(metrics: dict[str, np.ndarray], objective: Objective) -> float:
    if objective == "accuracy":
        return float(metrics["accuracy"].mean())
    if objective == "f1":
        return float(metrics["f1"].mean())
    return float(0.5 * (metrics["accuracy"].mean() + metrics["f1"].mean()))


def calibrate_threshold(
    scores: np.ndarray, label: np.ndarray, objective: Objective = "mean", max_candidates: int = 512
) -> float:
    """The threshold t (yes iff score >= t) maximising ``objective`` (mean over the users
    of the rows of ``scores`` [U, L]) on these lists; candidates: the distinct scores (or
    ``max_candidates`` quantiles of them) and +inf (all no). Ties: the lowest best t."""
    return calibrated(scores, label, objective, max_candidates)[0]


def calibrated(
    scores: np.ndarray, label: np.ndarray, objective: Objective = "mean", max_candidates: int = 512
) -> tuple[float, float]:
    """(``calibrate_threshold``'s t, the ``objective`` these lists reach at t)."""
    s = np.asarray(scores, dtype=np.float64)
    label = np.asarray(label, dtype=bool)
    cand = np.unique(s)
    if len(cand) > max_candidates:
        cand = np.unique(np.quantile(s, np.linspace(0.0, 1.0, max_candidates)))
    cand = np.append(cand, np.inf)
    best_t, best = float(cand[0]), -np.inf
    for start in range(0, len(cand), 64):
        ts = cand[start : start + 64]
        yes = s[None] >= ts[:, None, None]  # [T, U, L]
        tp = (yes & label).sum(2)
        fp = (yes & ~label).sum(2)
        n_pos = label.sum(1)[None]
        acc = (yes == label).mean(2).mean(1)
        f1 = (2 * tp / (tp + fp + n_pos)).mean(1)
        val = {"accuracy": acc, "f1": f1, "mean": 0.5 * (acc + f1)}[objective]
        k = int(np.argmax(val))
        if val[k] > best + 1e-12:
            best, best_t = float(val[k]), float(ts[k])
    return best_t, best


# --------------------------------------------------------------------------- summaries


def nan_mean_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of ``values`` over units with NaN left out, with a percentile bootstrap CI
    (units resampled as in ``bootstrap_ci``, same seed = same resamples); ``n`` counts the
    non-NaN units."""
    v = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(v)
    if not ok.any():
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    lo, hi = percentile_interval(weighted_means(v, resample_weights(len(v), n_boot, seed)))
    return {"mean": float(v[ok].mean()), "lo": lo, "hi": hi, "n": int(ok.sum())}


def summarize(
    metrics: dict[str, np.ndarray], n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Mean and bootstrap CI over users of every metric of ``user_metrics``."""
    out = {
        m: bootstrap_ci(metrics[m], n_boot, seed=seed) for m in METRICS if m != "precision_defined"
    }
    out["precision_defined"] = nan_mean_ci(metrics["precision_defined"], n_boot, seed)
    out["no_yes_users"] = {"mean": float(metrics["no_yes"].sum()), "n": len(metrics["no_yes"])}
    return out


def paired(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of a - b over users with its paired bootstrap CI."""
    return paired_bootstrap_ci(a, b, n_boot, seed=seed)


# --------------------------------------------------------------------------- ratings


def isotonic_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-decreasing least-squares fit of y on x (pool adjacent violators). Returns the
    knots (each distinct x, its fitted value), for ``isotonic_predict``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    # one weighted point per distinct x, then pool adjacent violators
    ux, start = np.unique(xs, return_index=True)
    w = np.diff(np.append(start, len(xs))).astype(np.float64)
    v = np.add.reduceat(ys, start) / w
    bv: list[float] = []  # block value
    bw: list[float] = []  # block weight
    bn: list[int] = []  # distinct x values in the block
    for vi, wi in zip(v, w, strict=True):
        bv.append(float(vi))
        bw.append(float(wi))
        bn.append(1)
        while len(bv) > 1 and bv[-2] > bv[-1]:
            w2 = bw[-2] + bw[-1]
            bv[-2] = (bv[-2] * bw[-2] + bv[-1] * bw[-1]) / w2
            bw[-2] = w2
            bn[-2] += bn[-1]
            del bv[-1], bw[-1], bn[-1]
    return ux, np.repeat(bv, bn)


def isotonic_predict(knots: tuple[np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The fitted values of ``isotonic_fit``, linearly interpolated between its distinct x
    (as scikit-learn's ``IsotonicRegression``), flat outside their range."""
    kx, kv = knots
    return np.interp(np.asarray(x, dtype=np.float64), kx, kv)


def error_sums(
    pred: np.ndarray, truth: np.ndarray, row_user: np.ndarray, n_users: int
) -> dict[str, np.ndarray]:
    """Per-user sums of squared and absolute errors and rating counts (for pooled RMSE/MAE
    with a bootstrap over users)."""
    err = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return {
        "sq": np.bincount(row_user, weights=err**2, minlength=n_users),
        "abs": np.bincount(row_user, weights=np.abs(err), minlength=n_users),
        "n": np.bincount(row_user, minlength=n_users).astype(np.float64),
    }


def _pooled(sums: dict[str, np.ndarray], w: np.ndarray) -> dict[str, np.ndarray]:
    n = w @ sums["n"]
    return {"rmse": np.sqrt((w @ sums["sq"]) / n), "mae": (w @ sums["abs"]) / n}


def rating_errors(
    sums: dict[str, np.ndarray], n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """RMSE and MAE pooled over every held-out rating, with percentile bootstrap CIs over
    users (``resample_weights``: the same resamples for every model with the same seed)."""
    point = _pooled(sums, np.ones((1, len(sums["n"]))))
    boot = _pooled(sums, resample_weights(len(sums["n"]), n_boot, seed))
    out = {}
    for m in ("rmse", "mae"):
        lo, hi = percentile_interval(boot[m])
        out[m] = {"mean": float(point[m][0]), "lo": lo, "hi": hi, "n": int(sums["n"].sum())}
    return out


def paired_rating_errors(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """RMSE and MAE of a minus those of b, users resampled jointly."""
    w = resample_weights(len(a["n"]), n_boot, seed)
    one = np.ones((1, len(a["n"])))
    pa, pb, ba, bb = _pooled(a, one), _pooled(b, one), _pooled(a, w), _pooled(b, w)
    out = {}
    for m in ("rmse", "mae"):
        lo, hi = percentile_interval(ba[m] - bb[m])
        out[m] = {"mean": float(pa[m][0] - pb[m][0]), "lo": lo, "hi": hi, "n": len(a["n"])}
    return out
