"""User segments: a population drawn from weighted segments, each a distribution over the
traits of new users (the behaviour parameters of the compiled model stay global).

This module owns:

- ``SegmentSpec``: one segment — a name, a weight, an optional persona sentence, and either
  overrides of the sampled-user trait distributions (``interest_concentration``,
  ``novelty_static_a/b``, ``patience_mean``, ``era_a/b``, ``topic_boost``) or a filter on the
  real MovieLens raters (``age``, ``gender``, ``occupations``, ``favourite_genres``);
- ``validate_segments`` / ``segment_rows`` / ``favourite_genre``: checking segments against a
  catalog and MovieLens data, and the fitted-population rows a filter selects;
- ``SegmentedTraits``: the trait draw of a ``ParametricUserModel`` with segments (same keys
  as ``ParametricUserModel._draw_traits`` plus ``segment``), usable as the ``draw`` callable
  of ``TraitStream.take``;
- ``segment_summary`` (per-segment statistics for reports), ``load_segments`` (YAML) and
  ``movielens_segments`` (the shipped MovieLens segmentation, also in
  ``experiments/configs/segments_movielens.yaml``).

Fitted population rows <-> MovieLens users: ``fit_users`` (``movielens_users``) builds one row
per MovieLens user in ``MovieLensData.user_ids`` order (row u = ``user_ids[u]``, with
``user_age[u]``, ``user_gender[u]``, ``user_occupation[u]`` and the ratings whose
``user_index == u``); ``training_view`` keeps every user, so the mapping also holds for
populations fitted on a training split.

Favourite genre of a rater (``favourite_genre``): each liked rating (rating >=
``like_threshold``) gives its film's unit weight split equally over the film's genres
(``catalog.topics_normalized``, as ``fit_users`` does for interests); c[u, g] is the user's
liked mass in genre g and L[u] = sum_g c[u, g] the user's number of liked ratings. The
favourite genre is the argmax over g (first on ties) of the smoothed lift

    (c[u, g] + FAVOURITE_PSEUDOCOUNT) / (L[u] * p[g] + FAVOURITE_PSEUDOCOUNT)

where p[g] is genre g's share of all liked mass of all raters (the population's liked-genre
mix), so a genre is a favourite when the user likes it more than raters do on average: Drama
does not win everywhere, and a single liked film of a rare genre (Film-Noir, Documentary)
does not win either (pseudocount 2 = two liked films of prior at lift 1). Users without a
liked rating have no favourite (-1). On ML-100k this gives Drama 116 of 943 raters,
Thriller 98, Comedy 80, Action 77, Romance 63, ... Normalising liked counts by the genre's
share of the *catalog* instead makes War the favourite of ~30% of raters and Drama of < 3%
(War is a small catalog genre holding some of the most-liked films, e.g. the Star Wars
trilogy), hence the population's liked mix.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from pydantic import Field, model_validator

from recoworld.catalog.catalog import Catalog
from recoworld.catalog.movielens import MovieLensData
from recoworld.core.config import StrictModel
from recoworld.simulators.parametric.config import ParametricUserConfig, SegmentSpec

if TYPE_CHECKING:
    from recoworld.simulators.parametric.state import FittedPopulation

# The 21 occupations of ML-100k (u.occupation): the valid names when no data is at hand.
ML100K_OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
    "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other",
    "programmer", "retired", "salesman", "scientist", "student", "technician", "writer",
)  # fmt: skip
FAVOURITE_PSEUDOCOUNT = 2.0


class SegmentsFile(StrictModel):
    """A segments YAML document: a top-level ``segments:`` list with unique names."""

    segments: list[SegmentSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SegmentsFile:
        _check_unique([s.name for s in self.segments])
        return self


def _check_unique(names: list[str]) -> None:
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup:
        raise ValueError(f"segment names must be unique; duplicated: {dup}")


def _unknown(kind: str, segment: str, names: list[str], valid: list[str] | tuple[str, ...]) -> None:
    bad = [n for n in names if n not in valid]
    if bad:
        raise ValueError(f"segment {segment!r}: unknown {kind} {bad}; valid {kind}s: {list(valid)}")


# --------------------------------------------------------------------------- MovieLens raters


@lru_cache(maxsize=8)
def favourite_genre(movielens: MovieLensData) -> np.ndarray:
    """[U] int64 favourite genre (topic index) of each MovieLens user, -1 for users without a
    liked rating (the rule is in the module docstring). Cached per data object."""
    cat = movielens.catalog
    liked = movielens.rating >= movielens.like_threshold
    mass = np.zeros((movielens.n_users, cat.n_topics), dtype=np.float64)
    np.add.at(mass, movielens.user_index[liked], cat.topics_normalized[movielens.item_index[liked]])
    n_liked = mass.sum(axis=1)
    share = mass.sum(axis=0) / max(float(mass.sum()), 1e-12)
    a = FAVOURITE_PSEUDOCOUNT
    lift = (mass + a) / (n_liked[:, None] * share[None, :] + a)
    fav = lift.argmax(axis=1).astype(np.int64)
    fav[n_liked <= 0] = -1
    fav.setflags(write=False)
    return fav


def _check_population(movielens: MovieLensData, population: FittedPopulation) -> None:
    if len(population) != movielens.n_users:
        raise ValueError(
            f"fitted population has {len(population)} rows but the MovieLens data has "
            f"{movielens.n_users} users: segment filters need one row per user, in "
            "MovieLensData.user_ids order (a population fitted by fit_movielens_population "
            "on this data)"
        )


def segment_rows(
    spec: SegmentSpec, movielens: MovieLensData | None, population: FittedPopulation
) -> np.ndarray:
    """[m] int64 rows of ``population`` (= MovieLens user rows) whose rater matches the
    segment's filter; every row when the segment has no filter."""
    if not spec.has_filter:
        return np.arange(len(population), dtype=np.int64)
    if movielens is None:
        raise ValueError(f"segment {spec.name!r} filters MovieLens raters: needs MovieLensData")
    _check_population(movielens, population)
    mask = np.ones(movielens.n_users, dtype=bool)
    if spec.age is not None:
        age = np.asarray(movielens.user_age)
        mask &= (age >= spec.age[0]) & (age <= spec.age[1])
    if spec.gender is not None:
        mask &= np.asarray(movielens.user_gender) == spec.gender
    if spec.occupations is not None:
        mask &= np.isin(np.asarray(movielens.user_occupation), spec.occupations)
    if spec.favourite_genres is not None:
        names = movielens.catalog.topic_names
        _unknown("genre", spec.name, spec.favourite_genres, names)
        wanted = [names.index(g) for g in spec.favourite_genres]
        mask &= np.isin(favourite_genre(movielens), wanted)
    return np.flatnonzero(mask).astype(np.int64)


# --------------------------------------------------------------------------- validation


def validate_segments(
    segments: list[SegmentSpec],
    catalog: Catalog,
    population: FittedPopulation | None = None,
    movielens: MovieLensData | None = None,
) -> None:
    """Raise ValueError (naming the segment) on: no segments, duplicate names, unknown topic
    names in ``topic_boost``, a ``topic_boost`` zeroing every topic, unknown occupations
    (checked against ``movielens`` when given, else the ML-100k list) or genres (checked
    against ``catalog.topic_names``), and — when ``population`` and ``movielens`` are given —
    a filter matching no fitted user."""
    if not segments:
        raise ValueError("segments: need at least one segment")
    _check_unique([s.name for s in segments])
    topics = list(catalog.topic_names)
    occupations = sorted(set(movielens.user_occupation)) if movielens else ML100K_OCCUPATIONS
    for spec in segments:
        _unknown("topic", spec.name, list(spec.topic_boost), topics)
        if len(topics) and all(spec.topic_boost.get(t, 1.0) == 0.0 for t in topics):
            raise ValueError(f"segment {spec.name!r}: topic_boost sets every topic to 0")
        if spec.occupations is not None:
            _unknown("occupation", spec.name, spec.occupations, occupations)
        if spec.favourite_genres is not None:
            _unknown("genre", spec.name, spec.favourite_genres, topics)
        if population is not None and movielens is not None and spec.has_filter:
            if len(segment_rows(spec, movielens, population)) == 0:
                raise ValueError(
                    f"segment {spec.name!r}: its filter matches no fitted MovieLens user "
                    f"(age={spec.age}, gender={spec.gender}, occupations={spec.occupations}, "
                    f"favourite_genres={spec.favourite_genres})"
                )


# --------------------------------------------------------------------------- drawing


class SegmentedTraits:
    """New users' traits drawn from weighted segments, for a ``ParametricUserModel``.

    ``draw(n, rng)`` returns the keys of ``ParametricUserModel._draw_traits`` plus
    ``segment`` [n] int64 (index into ``segments``): each user's segment is drawn with
    ``rng.choice(len(segments), size=n, p=weights / sum)``; then, segment by segment (in
    list order), its users' traits are drawn vectorised — sampled users (``model.config.source
    == 'sampled'`` or no population) from the segment's distributions with its overrides
    falling back to ``model.config``; MovieLens-fitted users uniformly over the segment's
    ``segment_rows`` — and put back in user order; last, ``session_noise`` for all n users.
    The result depends only on ``n`` and the generator's state, so a ``TraitStream`` hands out
    the same users however they are batched."""

    def __init__(
        self,
        catalog: Catalog,
        config: ParametricUserConfig,
        population: FittedPopulation | None,
        segments: list[SegmentSpec],
        movielens: MovieLensData | None = None,
    ) -> None:
        self.catalog, self.config, self.population = catalog, config, population
        self.segments = list(segments)
        self.fitted = population is not None and config.source == "movielens"
        validate_segments(self.segments, catalog, population if self.fitted else None, movielens)
        for spec in self.segments:
            if self.fitted and spec.sampled_overrides:
                raise ValueError(
                    f"segment {spec.name!r} sets sampled-user fields "
                    f"{sorted(spec.sampled_overrides)}, but users are MovieLens-fitted "
                    "(users.source='movielens'): use a filter (age, gender, occupations, "
                    "favourite_genres)"
                )
            if not self.fitted and spec.has_filter:
                raise ValueError(
                    f"segment {spec.name!r} filters MovieLens raters, but users are sampled: "
                    "use the sampled-user fields (interest_concentration, novelty_static_a/b, "
                    "patience_mean, era_a/b, topic_boost) or users.source='movielens'"
                )
        weights = np.array([s.weight for s in self.segments], dtype=np.float64)
        self.p = weights / weights.sum()
        self.rows: list[np.ndarray] | None = None
        if self.fitted:
            assert population is not None
            self.rows = [segment_rows(s, movielens, population) for s in self.segments]
        topics = list(catalog.topic_names)
        self._boost = []
        for spec in self.segments:
            boost = np.ones(len(topics), dtype=np.float64)
            for name, factor in spec.topic_boost.items():
                boost[topics.index(name)] = factor
            self._boost.append(boost)

    def draw(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Traits of ``n`` new users (see the class docstring)."""
        seg = rng.choice(len(self.segments), size=n, p=self.p).astype(np.int64)
        traits = self._draw_fitted(seg, rng) if self.fitted else self._draw_sampled(seg, rng)
        traits["session_noise"] = rng.standard_normal(n)
        traits["segment"] = seg
        return traits

    def _draw_fitted(self, seg: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        pop = self.population
        assert pop is not None and self.rows is not None
        rows = np.empty(len(seg), dtype=np.int64)
        for k, seg_rows in enumerate(self.rows):
            idx = np.flatnonzero(seg == k)
            if idx.size:
                rows[idx] = seg_rows[rng.integers(0, len(seg_rows), size=idx.size)]
        return {
            "interest": pop.interest[rows],
            "latent": pop.latent[rows],
            "novelty_static": pop.novelty_static[rows],
            "patience": pop.patience[rows],
            "era": np.full(len(seg), 0.5, np.float32) if pop.era is None else pop.era[rows],
            "population_row": rows,
        }

    def _draw_sampled(self, seg: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        cfg = self.config
        n = len(seg)
        t, d = self.catalog.n_topics, self.catalog.latent_dim
        out = {
            "interest": np.empty((n, t)),
            "latent": np.empty((n, d)),
            "novelty_static": np.empty(n),
            "patience": np.empty(n),
            "era": np.empty(n),
            "population_row": np.full(n, -1, dtype=np.int64),
        }
        for k, spec in enumerate(self.segments):
            idx = np.flatnonzero(seg == k)
            m = idx.size
            if m == 0:
                continue

            def get(field: str, spec: SegmentSpec = spec) -> float:
                value = getattr(spec, field)
                return getattr(cfg, field) if value is None else value

            # as ParametricUserModel._draw_traits: Dirichlet draws as gammas normalised by
            # the max; the segment's topic_boost scales its topics' gammas first
            g = rng.standard_gamma(get("interest_concentration"), size=(m, t)) * self._boost[k]
            out["interest"][idx] = g / np.maximum(g.max(axis=1, keepdims=True), 1e-30)
            out["latent"][idx] = rng.normal(0.0, 1.0 / np.sqrt(d), size=(m, d))
            out["novelty_static"][idx] = rng.beta(
                get("novelty_static_a"), get("novelty_static_b"), size=m
            )
            out["patience"][idx] = rng.gamma(4.0, get("patience_mean") / 4.0, size=m)
            out["era"][idx] = rng.beta(get("era_a"), get("era_b"), size=m)
        return out


# --------------------------------------------------------------------------- reports


def segment_summary(
    traits: dict[str, np.ndarray], segments: list[SegmentSpec], catalog: Catalog
) -> list[dict[str, Any]]:
    """Per segment (list order): name, persona, users drawn, their share, mean
    novelty_static, mean patience, mean era and the top-3 topics by mean interest (means are
    None for a segment without users). ``traits`` is a ``SegmentedTraits.draw`` result."""
    seg = np.asarray(traits["segment"])
    n = max(len(seg), 1)
    out = []
    for k, spec in enumerate(segments):
        mask = seg == k
        users = int(mask.sum())
        row: dict[str, Any] = {"name": spec.name, "persona": spec.persona, "users": users}
        row["share"] = users / n
        if users:
            interest = np.asarray(traits["interest"])[mask].mean(axis=0)
            top = np.argsort(-interest, kind="stable")[:3]
            row |= {
                "novelty_static": float(np.mean(traits["novelty_static"][mask])),
                "patience": float(np.mean(traits["patience"][mask])),
                "era": float(np.mean(traits["era"][mask])),
                "top_topics": [catalog.topic_names[i] for i in top],
            }
        else:
            row |= {"novelty_static": None, "patience": None, "era": None, "top_topics": []}
        out.append(row)
    return out


# --------------------------------------------------------------------------- loading


def load_segments(path: str | Path) -> list[SegmentSpec]:
    """Segments from a YAML file with a top-level ``segments:`` list (unknown keys and
    duplicate names are errors)."""
    path = Path(path)
    with path.open() as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or "segments" not in doc:
        raise ValueError(f"{path}: expected a mapping with a top-level 'segments:' list")
    return SegmentsFile.model_validate(doc).segments


# The shipped MovieLens segmentation (experiments/configs/segments_movielens.yaml holds the
# same list; a test checks they match). Weights = the number of fitted ML-100k users each
# filter matches (segments overlap: a user may match several).
_MOVIELENS_SEGMENTS: list[dict[str, Any]] = [
    {
        "name": "students",
        "weight": 196,
        "persona": "A student who watches films between classes and follows what friends watch.",
        "occupations": ["student"],
    },
    {
        "name": "young action and sci-fi fans",
        "weight": 77,
        "persona": "A young adult who loves action, adventure and science-fiction spectacle.",
        "age": (18, 29),
        "favourite_genres": ["Action", "Adventure", "Sci-Fi"],
    },
    {
        "name": "drama lovers 30-49",
        "weight": 51,
        "persona": "A viewer in their thirties or forties who loves serious, character dramas.",
        "age": (30, 49),
        "favourite_genres": ["Drama"],
    },
    {
        "name": "classics 50+",
        "weight": 69,
        "persona": "A viewer over fifty who likes classic dramas, war films, noir and musicals.",
        "age": (50, 120),
        "favourite_genres": ["Drama", "War", "Film-Noir", "Western", "Musical", "Mystery"],
    },
    {
        "name": "women 25-49 romance and comedy",
        "weight": 34,
        "persona": "A woman in her thirties or forties who enjoys romances and comedies.",
        "gender": "F",
        "age": (25, 49),
        "favourite_genres": ["Romance", "Comedy"],
    },
    {
        "name": "tech professionals",
        "weight": 191,
        "persona": "An engineer or programmer who likes clever plots and science fiction.",
        "occupations": ["engineer", "programmer", "scientist", "technician"],
    },
]


def movielens_segments() -> list[SegmentSpec]:
    """The shipped MovieLens segmentation by age, occupation and genre taste (the same list
    as ``experiments/configs/segments_movielens.yaml``)."""
    return SegmentsFile.model_validate({"segments": _MOVIELENS_SEGMENTS}).segments


def resolve_segments(spec: list[SegmentSpec] | str) -> list[SegmentSpec]:
    """``WorldConfig.segments``: a list as is, ``"movielens"`` (the shipped segmentation) or
    the path of a YAML file with a top-level ``segments:`` list."""
    if isinstance(spec, list):
        return spec
    if spec == "movielens":
        return movielens_segments()
    if not Path(spec).is_file():
        raise FileNotFoundError(f"segments: {spec!r} is neither 'movielens' nor a YAML file")
    return load_segments(spec)
