"""User segments: sampled-trait overrides, MovieLens rater filters, batching, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recoworld.simulators import ParametricUserModel, fit_movielens_population
from recoworld.simulators.parametric.config import ParametricUserConfig
from recoworld.simulators.parametric.model import TraitStream
from recoworld.simulators.parametric.segments import (
    SegmentedTraits,
    SegmentSpec,
    favourite_genre,
    load_segments,
    movielens_segments,
    segment_rows,
    segment_summary,
    validate_segments,
)

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
TRAIT_KEYS = {
    "interest", "latent", "novelty_static", "patience", "era", "population_row",
    "session_noise", "segment",
}  # fmt: skip


def _parts(model):
    """What ``SegmentedTraits`` draws from: the model's catalog, config and population."""
    return model.catalog, model.config, model.population


@pytest.fixture(scope="module")
def ml_model(movielens):
    # traits only: no preference-weight fit (fast)
    cfg = ParametricUserConfig(source="movielens", fitted_weights=False)
    return ParametricUserModel(movielens.catalog, cfg, fit_movielens_population(movielens, cfg))


def _within(share: float, p: float, n: int, z: float = 4.0) -> bool:
    return abs(share - p) <= z * np.sqrt(p * (1 - p) / n)


def test_sampled_segments_shift_traits(small_catalog):
    model = ParametricUserModel(small_catalog, ParametricUserConfig(patience_mean=1.0))
    topic = small_catalog.topic_names[2]
    segs = [
        SegmentSpec(name="seekers", weight=1.0, novelty_static_a=8.0, novelty_static_b=2.0),
        SegmentSpec(
            name="loyal", weight=2.0, novelty_static_a=2.0, novelty_static_b=8.0,
            patience_mean=3.0, topic_boost={topic: 6.0},
        ),
        SegmentSpec(name="default", weight=1.0),
    ]  # fmt: skip
    n = 20_000
    traits = SegmentedTraits(model.catalog, model.config, model.population, segs).draw(
        n, np.random.default_rng(0)
    )
    assert set(traits) == TRAIT_KEYS
    assert all(len(v) == n for v in traits.values())
    seg = traits["segment"]
    assert seg.dtype == np.int64 and (traits["population_row"] == -1).all()
    for k, p in enumerate([0.25, 0.5, 0.25]):
        assert _within(float((seg == k).mean()), p, n)
    nov = traits["novelty_static"]
    # Beta(8, 2) mean 0.8, Beta(2, 8) mean 0.2, fallback Beta(2, 3) mean 0.4 (sd <= 0.2)
    for k, mean in enumerate([0.8, 0.2, 0.4]):
        assert abs(nov[seg == k].mean() - mean) < 0.01
    pat = traits["patience"]
    assert abs(pat[seg == 1].mean() - 3.0) < 0.05 and abs(pat[seg == 0].mean() - 1.0) < 0.03
    interest = traits["interest"]
    assert np.allclose(interest.max(axis=1), 1.0)
    boosted, plain = interest[seg == 1, 2].mean(), interest[seg == 0, 2].mean()
    assert boosted > plain + 0.2
    assert boosted > np.delete(interest[seg == 1].mean(0), 2).max()

    summary = segment_summary(traits, segs, small_catalog)
    assert [s["name"] for s in summary] == ["seekers", "loyal", "default"]
    assert sum(s["users"] for s in summary) == n
    assert summary[1]["top_topics"][0] == topic
    assert (
        summary[0]["novelty_static"] > summary[2]["novelty_static"] > summary[1]["novelty_static"]
    )


def test_trait_stream_batching_is_independent(small_catalog):
    model = ParametricUserModel(small_catalog)
    segs = load_segments(CONFIGS / "segments_synthetic.yaml")
    draw = SegmentedTraits(model.catalog, model.config, model.population, segs).draw
    one, chunked = TraitStream(block=64), TraitStream(block=64)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    singles = [one.take(1, rng_a, draw) for _ in range(150)]
    a = {k: np.concatenate([s[k] for s in singles]) for k in singles[0]}
    parts = [chunked.take(m, rng_b, draw) for m in (7, 50, 93)]
    b = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    assert set(a) == TRAIT_KEYS
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert len(np.unique(a["segment"])) == len(segs)


def test_synthetic_segments_yaml(small_catalog):
    segs = load_segments(CONFIGS / "segments_synthetic.yaml")
    assert 3 <= len(segs) <= 4
    validate_segments(segs, small_catalog)
    traits = SegmentedTraits(*_parts(ParametricUserModel(small_catalog)), segs).draw(
        4000, np.random.default_rng(1)
    )
    summary = {s["name"]: s for s in segment_summary(traits, segs, small_catalog)}
    assert summary["novelty seekers"]["novelty_static"] > summary["loyal bingers"]["novelty_static"]
    assert summary["loyal bingers"]["patience"] > summary["novelty seekers"]["patience"]
    assert summary["gaming and tech niche"]["top_topics"][0] == "gaming"


def test_population_rows_are_movielens_users(movielens, ml_model):
    assert len(ml_model.population) == movielens.n_users
    students = SegmentSpec(name="students", weight=1.0, occupations=["student"])
    rows = segment_rows(students, movielens, ml_model.population)
    occ = np.asarray(movielens.user_occupation)
    assert len(rows) == (occ == "student").sum() and (occ[rows] == "student").all()
    everyone = segment_rows(SegmentSpec(name="all", weight=1.0), movielens, ml_model.population)
    np.testing.assert_array_equal(everyone, np.arange(movielens.n_users))


def test_favourite_genre_rule(movielens):
    fav = favourite_genre(movielens)
    cat = movielens.catalog
    liked = movielens.rating >= movielens.like_threshold
    mass = np.zeros((movielens.n_users, cat.n_topics))
    np.add.at(mass, movielens.user_index[liked], cat.topics_normalized[movielens.item_index[liked]])
    share = mass.sum(0) / mass.sum()
    for u in (0, 1, 100, 500):
        items, ratings, _ = movielens.history(u)
        c = cat.topics_normalized[items[ratings >= movielens.like_threshold]].sum(0)
        assert fav[u] == np.argmax((c + 2.0) / (c.sum() * share + 2.0))
    # Drama is the favourite of some raters, but not of most
    drama = cat.topic_names.index("Drama")
    assert 0.02 < (fav == drama).mean() < 0.3


def test_movielens_segments_draw_real_raters(movielens, ml_model):
    segs = movielens_segments()
    validate_segments(segs, movielens.catalog, ml_model.population, movielens)
    counts = {s.name: len(segment_rows(s, movielens, ml_model.population)) for s in segs}
    assert 5 <= len(segs) <= 6 and min(counts.values()) >= 20, counts
    # weights = matched users (as written in the YAML comment)
    assert all(s.weight == counts[s.name] for s in segs), counts
    # the shipped YAML holds the same segmentation
    assert load_segments(CONFIGS / "segments_movielens.yaml") == segs

    traits = SegmentedTraits(
        ml_model.catalog, ml_model.config, ml_model.population, segs, movielens
    ).draw(3000, np.random.default_rng(2))
    seg, rows = traits["segment"], traits["population_row"]
    assert (rows >= 0).all()
    pop = ml_model.population
    np.testing.assert_array_equal(traits["interest"], pop.interest[rows])
    np.testing.assert_array_equal(traits["patience"], pop.patience[rows])
    names = [s.name for s in segs]
    occ = np.asarray(movielens.user_occupation)
    age = np.asarray(movielens.user_age)
    students = rows[seg == names.index("students")]
    assert students.size > 0 and (occ[students] == "student").all()
    young = rows[seg == names.index("young action and sci-fi fans")]
    assert young.size > 0 and ((age[young] >= 18) & (age[young] <= 29)).all()
    genres = [movielens.catalog.topic_names.index(g) for g in ("Action", "Adventure", "Sci-Fi")]
    assert np.isin(favourite_genre(movielens)[young], genres).all()
    women = rows[seg == names.index("women 25-49 romance and comedy")]
    assert (np.asarray(movielens.user_gender)[women] == "F").all()
    assert ((age[women] >= 25) & (age[women] <= 49)).all()
    p = np.array([s.weight for s in segs]) / sum(s.weight for s in segs)
    for k in range(len(segs)):
        assert _within(float((seg == k).mean()), float(p[k]), len(seg))


def test_segment_errors(small_catalog, movielens, ml_model):
    pop = ml_model.population
    with pytest.raises(ValueError, match=r"'focused'.*unknown topic \['cats'\].*valid topic"):
        validate_segments(
            [SegmentSpec(name="focused", weight=1, topic_boost={"cats": 2.0})], small_catalog
        )
    with pytest.raises(ValueError, match=r"'wizards'.*unknown occupation.*'student'"):
        validate_segments(
            [SegmentSpec(name="wizards", weight=1, occupations=["wizard"])],
            movielens.catalog, pop, movielens,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"'fans'.*unknown genre \['Anime'\]"):
        validate_segments(
            [SegmentSpec(name="fans", weight=1, favourite_genres=["Anime"])], movielens.catalog
        )
    with pytest.raises(ValueError, match=r"'retired kids'.*matches no fitted"):
        validate_segments(
            [SegmentSpec(name="retired kids", weight=1, age=(7, 12), occupations=["retired"])],
            movielens.catalog, pop, movielens,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"unique.*\['a'\]"):
        validate_segments(
            [SegmentSpec(name="a", weight=1), SegmentSpec(name="a", weight=2)], small_catalog
        )
    with pytest.raises(ValueError, match="every topic to 0"):
        zero = {t: 0.0 for t in small_catalog.topic_names}
        validate_segments([SegmentSpec(name="z", weight=1, topic_boost=zero)], small_catalog)
    # the kind of segment must fit the kind of users
    with pytest.raises(ValueError, match=r"'old'.*users are sampled"):
        SegmentedTraits(
            *_parts(ParametricUserModel(small_catalog)),
            [SegmentSpec(name="old", weight=1, age=(50, 99))],
        )
    with pytest.raises(ValueError, match=r"'seekers'.*MovieLens-fitted"):
        SegmentedTraits(
            *_parts(ml_model),
            [SegmentSpec(name="seekers", weight=1, novelty_static_a=5.0)],
            movielens,
        )
    # field constraints
    bad_fields = [
        {"weight": 0}, {"name": ""}, {"age": (30, 20)}, {"topic_boost": {"x": -1.0}},
        {"novelty_static_a": 0.0}, {"gender": "X"}, {"occupations": []}, {"extra": 1},
    ]  # fmt: skip
    for bad in bad_fields:
        with pytest.raises(ValueError):
            SegmentSpec.model_validate({"name": "s", "weight": 1.0} | bad)


def test_load_segments_errors(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("segments:\n  - {name: a, weight: 1}\n  - {name: a, weight: 2}\n")
    with pytest.raises(ValueError, match="duplicated"):
        load_segments(path)
    path.write_text("users: []\n")
    with pytest.raises(ValueError, match="top-level 'segments:'"):
        load_segments(path)
    path.write_text("segments:\n  - {name: a, weight: 1, colour: red}\n")
    with pytest.raises(ValueError, match="colour"):
        load_segments(path)
