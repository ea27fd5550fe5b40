"""Config models of the catalog: its source (synthetic or MovieLens), candidate generation and
the item representations (text embeddings, semantic IDs, modalities).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from recoworld.catalog.factorization import LatentMethod
from recoworld.core.config import StrictModel


class SyntheticCatalogConfig(StrictModel):
    """A seeded synthetic catalog with believable templated text."""

    n_items: int = Field(2000, ge=10, le=2_000_000, description="Number of items.")
    n_topics: int = Field(
        16, ge=2, le=24, description="Topics used, taken in order from the built-in vocabulary."
    )
    n_creators: int = Field(200, ge=1, description="Number of creators (authors).")
    max_topics_per_item: int = Field(3, ge=1, le=5, description="Upper bound on topics per item.")
    latent_dim: int = Field(16, ge=1, le=256, description="Dimension of the item latent vector.")
    popularity_zipf: float = Field(
        1.1, gt=0.0, description="Zipf exponent of creator reach (drives item popularity)."
    )
    horizon_days: float = Field(
        365.0, gt=0.0, description="Items are released uniformly over this many past days."
    )
    seed: int = Field(0, description="Seed of the generator (the catalog is a pure function).")


class MovieLensCatalogConfig(StrictModel):
    """Real MovieLens 100k, read from the installed ``recbole`` package or a directory."""

    data_dir: Path | None = Field(
        None,
        description="Directory with ml-100k.inter/.item/.user (RecBole atomic files); "
        "None = the copy shipped in recbole==1.2.1.",
    )
    enrich: bool = Field(
        True,
        description="Add director and cast from bokeh-sampledata's CC0 movies.db when installed "
        "(directors become creators).",
    )
    latent_dim: int = Field(16, ge=1, le=128, description="Rank of the latent factors.")
    latent: LatentMethod = Field(
        "rating_svd",
        description="How the films' and users' latent factors are fitted: 'rating_svd' (SVD "
        "of the user-centred ratings: taste among rated films; MovieLens-v0's) or "
        "'implicit_als' (implicit ALS on who rated what: whether a user watches a film).",
    )
    like_threshold: float = Field(4.0, ge=1.0, le=5.0, description="Ratings >= this are likes.")


class CatalogConfig(StrictModel):
    source: str = Field(
        "synthetic",
        description="'synthetic', 'movielens', a directory of ml-100k files, or a catalog "
        ".parquet written by Catalog.save.",
    )
    synthetic: SyntheticCatalogConfig = Field(default_factory=SyntheticCatalogConfig)
    movielens: MovieLensCatalogConfig = Field(default_factory=MovieLensCatalogConfig)

    @model_validator(mode="after")
    def _check_source(self) -> CatalogConfig:
        if self.source not in ("synthetic", "movielens") and not Path(self.source).exists():
            raise ValueError(
                f"catalog.source={self.source!r}: expected 'synthetic', 'movielens', "
                "or an existing path (ml-100k directory or catalog .parquet)"
            )
        return self


class CandidateMix(StrictModel):
    """Relative weights of the candidate sources (normalised; at least one > 0)."""

    popular: float = Field(0.25, ge=0.0, description="Sampled in proportion to popularity.")
    random: float = Field(0.25, ge=0.0, description="Uniform over the catalog.")
    interest: float = Field(
        0.35, ge=0.0, description="Near the user's *observed* click topics (no hidden state)."
    )
    fresh: float = Field(0.15, ge=0.0, description="Uniform over the most recent releases.")

    @model_validator(mode="after")
    def _positive(self) -> CandidateMix:
        if self.popular + self.random + self.interest + self.fresh <= 0:
            raise ValueError("candidates.mix: at least one weight must be > 0")
        return self


class CandidateConfig(StrictModel):
    n_candidates: int = Field(20, ge=2, le=1000, description="M: candidates per user per step.")
    mix: CandidateMix = Field(default_factory=CandidateMix)
    popularity_power: float = Field(
        1.0, ge=0.0, description="Popular source samples ∝ popularity**power."
    )
    fresh_window: int = Field(200, ge=1, description="The fresh source's newest-item window.")


SEMANTIC_ID_MAX_LEVELS = 25
"""Levels a semantic ID may have: one letter per level, one left for the disambiguator."""


class SemanticIDConfig(StrictModel):
    """How semantic IDs are built (``semantic_ids``)."""

    levels: int = Field(3, ge=1, le=SEMANTIC_ID_MAX_LEVELS, description="codes per item (L)")
    codebook_size: int = Field(16, ge=2, le=65536, description="codes per level (K)")
    method: Literal["rkmeans", "rqvae"] = "rkmeans"
    seed: int = 0
    kmeans_iters: int = Field(50, ge=1, description="Lloyd iterations per k-means")
    kmeans_init: int = Field(
        8, ge=1, description="k-means++ restarts per k-means; the lowest squared error wins"
    )
    # RQ-VAE
    latent_dim: int = Field(32, ge=1)
    hidden: int = Field(128, ge=1, description="hidden width of encoder and decoder MLPs")
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    beta: float = Field(0.25, ge=0, description="weight of the commitment loss")


class ModalitySpec(StrictModel):
    """A user-supplied modality: per-item vectors in a file."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    path: str = Field(min_length=1, description="A .npy [N, d] array or a .parquet file.")
    column: str | None = Field(None, description="Parquet: the column holding the vectors.")
    id_column: str | None = Field(
        None, description="Parquet: item ids to align rows with the catalog (else row order)."
    )
    standardize: bool = Field(True, description="z-score each dimension over the items.")


class RepresentationConfig(StrictModel):
    """Settings of the item representations (``WorldConfig.representation`` picks one)."""

    text_dim: int = Field(
        0,
        ge=0,
        le=384,
        description="text: principal components of the item text embeddings (MiniLM) added "
        "to the policy's candidate features (0: none, and no embedding is computed); "
        "multimodal uses max(text_dim, 16).",
    )
    semantic_id: SemanticIDConfig = Field(default_factory=lambda: SemanticIDConfig())
    metadata: bool = Field(True, description="multimodal: include the catalog's metadata modality.")
    modalities: list[ModalitySpec] = Field(
        default_factory=list, description="multimodal: extra per-item vectors from files."
    )
