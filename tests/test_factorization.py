"""Latent factors of the MovieLens rating log (``recoworld.catalog.factorization``): each
method fits what it says on the real data, the choice reaches the catalog, the training
view and a world, and a bad method is refused."""

from __future__ import annotations

import numpy as np
import pytest

from recoworld.catalog import load_movielens
from recoworld.catalog.config import MovieLensCatalogConfig
from recoworld.catalog.factorization import LATENT_METHODS, implicit_als, latent_factors
from recoworld.catalog.splits import training_view
from recoworld.policies.interactions import Interactions
from recoworld.policies.matrix_factorization import ALSConfig, ALSRecommender


def _fit_measures(data, method: str) -> tuple[float, float]:
    """(share of (rated, random unrated) pairs the product orders right, correlation of the
    product with the user-centred star rating), over every rating."""
    n = data.catalog.n_items
    u, v = latent_factors(
        method, data.user_index, data.item_index, data.rating, data.n_users, n, 16
    )
    assert u.dtype == v.dtype == np.float32 and u.shape == (data.n_users, 16)
    assert v.shape == (n, 16) and np.sqrt((v**2).sum(1).mean()) == pytest.approx(1.0, rel=1e-4)
    rated = np.zeros((data.n_users, n), dtype=bool)
    rated[data.user_index, data.item_index] = True
    pos = np.einsum("rf,rf->r", u[data.user_index], v[data.item_index])
    other = np.random.default_rng(0).integers(0, n, len(pos))
    ok = ~rated[data.user_index, other]
    neg = np.einsum("rf,rf->r", u[data.user_index[ok]], v[other[ok]])
    means = np.bincount(data.user_index, data.rating) / np.bincount(data.user_index)
    corr = np.corrcoef(pos, data.rating - means[data.user_index])[0, 1]
    return float((pos[ok] > neg).mean()), float(corr)


def test_each_method_fits_its_own_signal(movielens):
    """rating_svd tracks the stars among rated films; implicit_als tells watched from not."""
    svd_order, svd_corr = _fit_measures(movielens, "rating_svd")
    als_order, als_corr = _fit_measures(movielens, "implicit_als")
    assert als_order > 0.9 and als_order > svd_order + 0.2
    assert svd_corr > 0.5 and svd_corr > als_corr + 0.2


def test_default_catalog_factors_are_the_rating_svd(movielens):
    d = movielens
    assert d.latent_method == "rating_svd" == MovieLensCatalogConfig().latent
    u, v = latent_factors(
        "rating_svd", d.user_index, d.item_index, d.rating, d.n_users, d.catalog.n_items, 16
    )
    assert np.array_equal(u, d.user_latent) and np.array_equal(v, d.catalog.latent)


def test_implicit_catalog_reaches_the_training_view_and_a_world(small_config):
    from recoworld.envs.world import World

    data = load_movielens(MovieLensCatalogConfig(latent="implicit_als"))
    assert data.latent_method == "implicit_als"
    keep = np.zeros(data.n_ratings, dtype=bool)
    keep[::2] = True
    view = training_view(data, keep)
    assert view.latent_method == "implicit_als"
    u, v = latent_factors(
        "implicit_als", data.user_index[keep], data.item_index[keep], data.rating[keep],
        data.n_users, data.catalog.n_items, data.catalog.latent_dim,
    )  # fmt: skip
    assert np.array_equal(view.user_latent, u) and np.array_equal(view.catalog.latent, v)
    cfg = small_config.model_copy(deep=True)
    cfg.catalog.source = "movielens"
    cfg.catalog.movielens.latent = "implicit_als"
    cfg.users.source = "movielens"
    world = World(cfg, 4)
    assert world.movielens is not None and world.movielens.latent_method == "implicit_als"
    assert np.array_equal(world.catalog.latent, data.catalog.latent)
    obs, _ = world.reset(seed=0)
    assert obs["candidates"].shape[0] == 4
    out = world.step(np.tile(np.arange(world.config.episode.slate_size), (4, 1)))
    assert np.isfinite(out[1]).all()


def test_mf_recommender_uses_the_same_solver(movielens):
    d = movielens
    inter = Interactions(d.user_index, d.item_index, d.n_users, d.catalog.n_items, source="t")
    rec = ALSRecommender(3, ALSConfig(factors=8, iterations=3, seed=5)).fit(inter)
    users, items = implicit_als(inter.matrix(), 8, iterations=3, seed=5)
    assert isinstance(rec, ALSRecommender)
    assert np.array_equal(rec.user_factors, users) and np.array_equal(rec.item_factors, items)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match=r"latent method 'pca'.*rating_svd"):
        latent_factors("pca", np.zeros(1, int), np.zeros(1, int), np.ones(1), 1, 1, 1)
    with pytest.raises(ValueError, match="latent"):
        MovieLensCatalogConfig(latent="pca")  # type: ignore[arg-type]
    assert set(LATENT_METHODS) == {"rating_svd", "implicit_als"}
