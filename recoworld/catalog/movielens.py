"""Real MovieLens 100k: catalog, ratings and per-user histories.

Source: the RecBole atomic files shipped in ``recbole==1.2.1``
(``recbole/dataset_example/ml-100k/``: ``.inter`` 100,000 ratings, ``.item`` 1,682 films
with release year and genres, ``.user`` 943 users), or the same files in a directory the user
gives. The data is never copied into this repository (MovieLens terms: research use, no
redistribution).

Mapping to a ``Catalog``: the 19 genres (including ``unknown``) become topics; popularity is
the rating count; quality is the Bayesian-shrunk mean rating mapped to [0, 1]; release time is
mid-year of the release year; the latent vector is the item factor of the rating log's
factorisation (``catalog.factorization``, by ``MovieLensCatalogConfig.latent``: a rank-D SVD
of the user-centred ratings by default, or implicit ALS on who rated what); the user factors
are kept for fitting simulated users. Optional
enrichment from ``bokeh-sampledata``'s CC0 ``movies.db`` (Wikidata/OMDb) adds director
(directors become creators), cast and runtime for the films it matches on normalised title
and year (±1); films it does not match get their own one-film creator and the median runtime.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from recoworld.catalog.catalog import Catalog
from recoworld.catalog.config import MovieLensCatalogConfig
from recoworld.catalog.factorization import LatentMethod, latent_factors
from recoworld.core.paths import package_dir, package_file

RECBOLE_SPEC = "recbole==1.2.1"
BOKEH_SPEC = "bokeh-sampledata==2026.1"
ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
_ARTICLES = ("The", "A", "An", "Il", "La", "Le", "Les", "L'", "Das", "Der", "Die", "El", "Lo")


@dataclass(frozen=True, eq=False)
class MovieLensData:
    """The catalog plus the rating log (row i of the arrays = one rating)."""

    catalog: Catalog
    user_ids: np.ndarray  # [U] original user ids
    user_index: np.ndarray  # [R] row into user_ids
    item_index: np.ndarray  # [R] row into catalog
    rating: np.ndarray  # [R] float32 1..5
    timestamp: np.ndarray  # [R] int64 unix seconds
    user_age: np.ndarray  # [U] int
    user_gender: list[str]
    user_occupation: list[str]
    user_latent: np.ndarray  # [U, D] from the same factorisation as catalog.latent
    like_threshold: float
    latent_method: LatentMethod = "rating_svd"  # how the factors were fitted (factorization)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_ratings(self) -> int:
        return len(self.rating)

    def history(self, u: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item indices, ratings, timestamps) of user row ``u``, oldest first."""
        rows = np.flatnonzero(self.user_index == u)
        rows = rows[np.argsort(self.timestamp[rows], kind="stable")]
        return self.item_index[rows], self.rating[rows], self.timestamp[rows]


def default_movielens_dir() -> Path:
    return package_dir("recbole", RECBOLE_SPEC) / "dataset_example" / "ml-100k"


def _read_atomic(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"MovieLens file not found: {path}")
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def display_title(title: str) -> str:
    """'Usual Suspects, The' -> 'The Usual Suspects'."""
    m = re.match(r"^(.*), (" + "|".join(re.escape(a) for a in _ARTICLES) + r")(\s*\(.*\))?$", title)
    if m:
        return f"{m.group(2)} {m.group(1)}{m.group(3) or ''}".replace("L' ", "L'")
    return title


def _norm_title(title: str) -> str:
    title = re.sub(r"\s*\(.*?\)", "", display_title(title))
    return re.sub(r"[^a-z0-9]", "", title.lower())


def _enrichment(titles: list[str], years: np.ndarray) -> list[dict[str, object] | None]:
    """Director, cast and runtime from bokeh-sampledata's movies.db (None = no match)."""
    db = package_file("bokeh_sampledata", BOKEH_SPEC, "_data/movies.db")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute(
            'SELECT "Title", "Year", "Director", "Cast", "Runtime" FROM omdb'
        ).fetchall()
    index: dict[str, list[tuple[int, str, str, float | None]]] = {}
    for title, year, director, cast, runtime in rows:
        if title and year and director:
            index.setdefault(_norm_title(title), []).append((int(year), director, cast, runtime))
    out: list[dict[str, object] | None] = []
    for title, year in zip(titles, years, strict=True):
        best = None
        for y, director, cast, runtime in index.get(_norm_title(title), []):
            if abs(y - year) <= 1 and (best is None or abs(y - year) < abs(best[0] - year)):
                best = (y, director, cast, runtime)
        if best is None:
            out.append(None)
        else:
            out.append(
                {
                    "director": best[1].split(",")[0].strip(),
                    "cast": [c.strip() for c in (best[2] or "").split(",") if c.strip()][:4],
                    "runtime": float(best[3]) if best[3] else None,
                }
            )
    return out


def load_movielens(config: MovieLensCatalogConfig | None = None) -> MovieLensData:
    """Load MovieLens 100k (cached per configuration)."""
    cfg = config or MovieLensCatalogConfig()
    return _load_cached(cfg.model_dump_json())


@lru_cache(maxsize=4)
def _load_cached(config_json: str) -> MovieLensData:
    cfg = MovieLensCatalogConfig.model_validate_json(config_json)
    root = Path(cfg.data_dir) if cfg.data_dir is not None else default_movielens_dir()
    inter = _read_atomic(root / "ml-100k.inter")
    items = _read_atomic(root / "ml-100k.item")
    users = _read_atomic(root / "ml-100k.user")

    item_ids = items["item_id"].astype(np.int64).to_numpy()
    item_row = pd.Series(np.arange(len(item_ids)), index=item_ids)
    user_ids = users["user_id"].astype(np.int64).to_numpy()
    user_row = pd.Series(np.arange(len(user_ids)), index=user_ids)
    r_item = inter["item_id"].astype(np.int64)
    r_user = inter["user_id"].astype(np.int64)
    unknown = ~r_item.isin(item_row.index) | ~r_user.isin(user_row.index)
    if unknown.any():
        raise ValueError(f"{root}: {int(unknown.sum())} ratings name unknown users or items")
    item_index = item_row.loc[r_item].to_numpy()
    user_index = user_row.loc[r_user].to_numpy()
    rating = inter["rating"].astype(np.float32).to_numpy()
    timestamp = inter["timestamp"].astype(float).astype(np.int64).to_numpy()
    n_items, n_users = len(item_ids), len(user_ids)

    genre_col = {g: k for k, g in enumerate(ML100K_GENRES)}
    topics = np.zeros((n_items, len(ML100K_GENRES)), dtype=np.float32)
    for i, genres in enumerate(items["class"]):
        tokens = genres.split() or ["unknown"]
        for g in tokens:
            if g not in genre_col:
                raise ValueError(f"{root}: unknown genre {g!r} for item {item_ids[i]}")
            topics[i, genre_col[g]] = 1.0

    years_raw = pd.to_numeric(items["release_year"], errors="coerce")
    years = years_raw.fillna(years_raw.median()).astype(int).to_numpy()
    raw_titles = items["movie_title"].tolist()
    titles = [f"{display_title(t)} ({y})" for t, y in zip(raw_titles, years, strict=True)]

    counts = np.bincount(item_index, minlength=n_items).astype(np.float32)
    sums = np.bincount(item_index, weights=rating, minlength=n_items)
    prior_mean, prior_n = float(rating.mean()), 10.0
    shrunk = (sums + prior_mean * prior_n) / (counts + prior_n)
    quality = ((shrunk - 1.0) / 4.0).clip(0.0, 1.0).astype(np.float32)

    extra = _enrichment(raw_titles, years) if cfg.enrich else [None] * n_items
    runtimes = [e["runtime"] for e in extra if e and e["runtime"]]
    median_runtime = float(np.median(runtimes)) if runtimes else 105.0
    creator_names: list[str] = []
    creator_of: dict[str, int] = {}
    creator = np.zeros(n_items, dtype=np.int64)
    duration = np.full(n_items, median_runtime, dtype=np.float32)
    descriptions = []
    for i in range(n_items):
        e = extra[i]
        name = str(e["director"]) if e else f"(unlisted) {titles[i]}"
        if name not in creator_of:
            creator_of[name] = len(creator_names)
            creator_names.append(name)
        creator[i] = creator_of[name]
        genres = ", ".join(ML100K_GENRES[k] for k in np.flatnonzero(topics[i]))
        text = f"{titles[i]}. {genres}."
        if e:
            if e["runtime"]:
                duration[i] = float(e["runtime"])  # type: ignore[arg-type]
            text += f" Directed by {e['director']}."
            if e["cast"]:
                text += f" Starring {', '.join(e['cast'])}."  # type: ignore[arg-type]
        descriptions.append(text + f" {duration[i]:.0f} min.")

    user_latent, item_latent = latent_factors(
        cfg.latent, user_index, item_index, rating, n_users, n_items, cfg.latent_dim
    )
    catalog = Catalog(
        name="movielens-100k",
        item_ids=item_ids,
        titles=titles,
        descriptions=descriptions,
        topics=topics,
        topic_names=list(ML100K_GENRES),
        creator=creator,
        creator_names=creator_names,
        quality=quality,
        duration=duration,
        popularity=counts,
        release_time=((years - 1970) * 365.25 + 182.0).astype(np.float32),
        latent=item_latent,
        meta={
            "source": str(root),
            "enriched": bool(cfg.enrich),
            "enriched_items": int(sum(e is not None for e in extra)),
        },
    )
    return MovieLensData(
        catalog=catalog,
        user_ids=user_ids,
        user_index=user_index.astype(np.int64),
        item_index=item_index.astype(np.int64),
        rating=rating,
        timestamp=timestamp,
        user_age=users["age"].astype(int).to_numpy(),
        user_gender=users["gender"].tolist(),
        user_occupation=users["occupation"].tolist(),
        user_latent=user_latent,
        like_threshold=cfg.like_threshold,
        latent_method=cfg.latent,
    )
