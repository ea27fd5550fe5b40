"""The one bootstrap (``recoworld.core.stats``): deterministic resamples shared by the
index view (``bootstrap_ci``) and the weight view (``resample_weights``, the evaluation
runner's), coverage of a known mean, paired differences, NaN handling, and the runner's
intervals being exactly those of the shared bootstrap."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pyarrow.parquet as pq
import pytest

from recoworld.core import stats
from recoworld.core.stats import (
    bootstrap_ci,
    normal_interval,
    paired_bootstrap_ci,
    percentile_interval,
    resample_indices,
    resample_weights,
    weighted_means,
)


def test_same_seed_same_ci_other_seed_other_ci():
    v = np.random.default_rng(1).normal(size=50)
    assert bootstrap_ci(v, 500, seed=4) == bootstrap_ci(v, 500, seed=4)
    assert bootstrap_ci(v, 500, seed=4) != bootstrap_ci(v, 500, seed=5)
    assert bootstrap_ci(v, 500)["mean"] == pytest.approx(v.mean())


def test_weights_count_the_resampled_indices_and_chunking_changes_nothing(monkeypatch):
    idx = np.concatenate(list(resample_indices(7, 300, seed=3)))
    w = resample_weights(7, 300, seed=3)
    assert idx.shape == w.shape == (300, 7)
    assert (w.sum(1) == 7).all()
    for b in range(300):
        assert (np.bincount(idx[b], minlength=7) == w[b]).all()
    monkeypatch.setattr(stats, "CHUNK", 10)  # one resample (7 draws) per chunk
    assert len(list(resample_indices(7, 300, seed=3))) == 300
    assert (resample_weights(7, 300, seed=3) == w).all()
    assert (np.concatenate(list(resample_indices(7, 300, seed=3))) == idx).all()


def test_index_and_weight_views_give_the_same_interval():
    v = np.random.default_rng(2).exponential(size=40)
    ci = bootstrap_ci(v, 800, level=0.9, seed=6)
    lo, hi = percentile_interval(weighted_means(v, resample_weights(40, 800, seed=6)), 0.9)
    assert (lo, hi) == pytest.approx((ci["lo"], ci["hi"]), rel=1e-12)


def test_ci_covers_a_known_mean_at_about_its_level():
    rng = np.random.default_rng(0)
    trials, hits = 200, 0
    for t in range(trials):
        ci = bootstrap_ci(rng.normal(1.0, 2.0, size=80), n_boot=400, seed=t)
        assert ci["lo"] < ci["mean"] < ci["hi"]
        hits += ci["lo"] <= 1.0 <= ci["hi"]
    assert 0.88 <= hits / trials <= 0.99  # 95% nominal (percentile CIs run a bit narrow)


def test_paired_difference_finds_the_sign_that_unpaired_cis_miss():
    rng = np.random.default_rng(0)
    user = rng.normal(0.0, 3.0, size=100)  # large between-user spread, shared by a and b
    a = user + 0.3 + rng.normal(0.0, 0.2, size=100)
    b = user + rng.normal(0.0, 0.2, size=100)
    ca, cb = bootstrap_ci(a, 1000), bootstrap_ci(b, 1000)
    assert ca["lo"] < cb["hi"]  # the marginal CIs overlap ...
    d = paired_bootstrap_ci(a, b, 1000)
    assert 0 < d["lo"] < 0.3 < d["hi"]  # ... the paired one excludes 0 and holds the truth
    neg = paired_bootstrap_ci(b, a, 1000)
    assert neg["hi"] < 0 and neg["mean"] == pytest.approx(-d["mean"])
    with pytest.raises(ValueError, match="same shape"):
        paired_bootstrap_ci(a, b[:-1])


def test_weighted_means_leave_out_nan():
    v = np.array([1.0, np.nan, 3.0])
    w = np.array([[1.0, 1.0, 1.0], [0.0, 3.0, 0.0], [2.0, 0.0, 1.0]])
    out = weighted_means(v, w)
    assert out[0] == pytest.approx(2.0)
    assert np.isnan(out[1])  # only the NaN unit drawn
    assert out[2] == pytest.approx(5.0 / 3.0)


def test_intervals_edge_cases():
    assert percentile_interval(np.array([np.nan, np.nan])) == (None, None)
    assert percentile_interval(np.array([2.0, np.nan]), 0.9) == (2.0, 2.0)
    assert normal_interval(None, np.arange(5.0)) == (None, None)
    assert normal_interval(1.0, np.array([3.0, np.nan])) == (None, None)
    s = np.random.default_rng(0).normal(size=1000)
    lo, hi = normal_interval(10.0, s, 0.95)
    half = NormalDist().inv_cdf(0.975) * s.std(ddof=1)
    assert (lo, hi) == pytest.approx((10.0 - half, 10.0 + half))
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci(np.array([]))
    with pytest.raises(ValueError, match="n_units >= 1"):
        resample_weights(0, 10)


WORLD = {
    "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "max_sessions": 3, "max_session_steps": 12},
}


def test_runner_intervals_are_the_shared_bootstrap(tmp_path):
    from recoworld.evaluation.runner import EvalConfig, run_evaluation

    cfg = EvalConfig.model_validate(
        {
            "policies": ["random", "popular"],
            "worlds": [{"name": "w", "overrides": WORLD}],
            "seeds": [0, 1],
            "users": 4,
            "episodes": 12,
            "n_boot": 300,
            "level": 0.9,
            "transcripts": 0,
        }
    )
    res = run_evaluation(cfg, tmp_path, show_progress=False, write_html=False)
    ep = pq.read_table(tmp_path / "episodes.parquet").to_pandas()
    lives = {
        p: ep[ep.policy == p].sort_values(["seed", "episode_id"]) for p in ("random", "popular")
    }
    n_units = len(lives["popular"])
    assert n_units == 2 * 12
    wts = resample_weights(n_units, 300, seed=0)
    boot = {
        p: {m: weighted_means(d[m].to_numpy(), wts) for m in ("return_rate", "clicks_per_session")}
        for p, d in lives.items()
    }
    rows = {(r["policy"], r["metric"]): r for r in res["results"]}
    pairs = {(r["policy"], r["metric"]): r for r in res["paired"]}
    for m in ("return_rate", "clicks_per_session"):
        for p in ("random", "popular"):
            r = rows[(p, m)]
            assert (r["lo"], r["hi"]) == pytest.approx(percentile_interval(boot[p][m], 0.9))
            assert r["lo"] <= r["mean"] <= r["hi"]
        d = pairs[("random", m)]
        expect = percentile_interval(boot["random"][m] - boot["popular"][m], 0.9)
        assert (d["lo"], d["hi"]) == pytest.approx(expect)
        assert d["lo"] <= d["diff"] <= d["hi"]
