"""Items and where they come from: the ``Catalog`` (struct of arrays + text), the synthetic
generator, real MovieLens 100k, and per-step candidate generation.

``load_catalog(CatalogConfig)`` is the one entry point that turns a config's ``source``
('synthetic', 'movielens', an ml-100k directory, or a saved catalog .parquet) into a
``Catalog`` (plus the MovieLens rating log when the source is MovieLens)."""

from __future__ import annotations

from pathlib import Path

from recoworld.catalog.candidates import SOURCES, CandidateGenerator
from recoworld.catalog.catalog import Catalog
from recoworld.catalog.config import CatalogConfig
from recoworld.catalog.movielens import MovieLensData, load_movielens
from recoworld.catalog.synthetic import generate_synthetic_catalog
from recoworld.core.errors import MissingDataPackageError

__all__ = [
    "SOURCES",
    "CandidateGenerator",
    "Catalog",
    "MissingDataPackageError",
    "MovieLensData",
    "generate_synthetic_catalog",
    "load_catalog",
    "load_movielens",
]


def load_catalog(config: CatalogConfig | None = None) -> tuple[Catalog, MovieLensData | None]:
    cfg = config or CatalogConfig()
    if cfg.source == "synthetic":
        return generate_synthetic_catalog(cfg.synthetic), None
    if cfg.source == "movielens":
        data = load_movielens(cfg.movielens)
        return data.catalog, data
    path = Path(cfg.source)
    if path.is_dir():
        data = load_movielens(cfg.movielens.model_copy(update={"data_dir": path}))
        return data.catalog, data
    if path.suffix == ".parquet":
        return Catalog.load(path), None
    raise ValueError(
        f"catalog.source={cfg.source!r}: a path must be an ml-100k directory or a .parquet catalog"
    )
