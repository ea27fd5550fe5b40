"""The item catalog: a struct of arrays plus text lists.

A ``Catalog`` owns everything known about items: ids, titles, descriptions, topics
(multi-hot over a topic vocabulary), creator (author), quality, duration, popularity,
release time and a latent vector. It is immutable after construction; derived views
(popularity percentiles, per-topic item index, sparse topic lists) are computed once.

Units: ``duration`` in minutes, ``release_time`` in days since 1970-01-01 (may be negative
for old films), ``popularity`` is an interaction count (>= 0), ``quality`` in [0, 1].
``quality`` and ``latent`` are ground truth for the simulators; observation encoders must
not expose them to policies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recoworld.core.atomic import atomic_write_parquet


@dataclass(frozen=True, eq=False)
class Catalog:
    """Items as arrays (index i = row i everywhere). Build with the validating constructor."""

    name: str
    item_ids: np.ndarray  # [N] int64, external ids
    titles: list[str]
    descriptions: list[str]
    topics: np.ndarray  # [N, T] float32 multi-hot
    topic_names: list[str]
    creator: np.ndarray  # [N] int64 in [0, C)
    creator_names: list[str]
    quality: np.ndarray  # [N] float32 in [0, 1]
    duration: np.ndarray  # [N] float32 minutes
    popularity: np.ndarray  # [N] float32 counts
    release_time: np.ndarray  # [N] float32 days since epoch
    latent: np.ndarray  # [N, D] float32
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if n == 0:
            raise ValueError("Catalog: no items")
        checks = {
            "titles": len(self.titles),
            "descriptions": len(self.descriptions),
            "topics": self.topics.shape[0],
            "creator": self.creator.shape[0],
            "quality": self.quality.shape[0],
            "duration": self.duration.shape[0],
            "popularity": self.popularity.shape[0],
            "release_time": self.release_time.shape[0],
            "latent": self.latent.shape[0],
        }
        bad = {k: v for k, v in checks.items() if v != n}
        if bad:
            raise ValueError(f"Catalog {self.name!r}: lengths differ from item_ids ({n}): {bad}")
        if self.topics.ndim != 2 or self.topics.shape[1] != len(self.topic_names):
            raise ValueError("Catalog: topics must be [N, len(topic_names)]")
        if (self.topics.sum(axis=1) <= 0).any():
            raise ValueError("Catalog: every item needs at least one topic")
        if self.creator.min() < 0 or self.creator.max() >= len(self.creator_names):
            raise ValueError("Catalog: creator ids must index creator_names")
        if (self.quality < 0).any() or (self.quality > 1).any():
            raise ValueError("Catalog: quality must lie in [0, 1]")
        if (self.popularity < 0).any() or (self.duration <= 0).any():
            raise ValueError("Catalog: popularity must be >= 0 and duration > 0")
        if len(np.unique(self.item_ids)) != n:
            raise ValueError("Catalog: item_ids must be unique")

    # ------------------------------------------------------------------ sizes
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_topics(self) -> int:
        return len(self.topic_names)

    @property
    def n_creators(self) -> int:
        return len(self.creator_names)

    @property
    def latent_dim(self) -> int:
        return self.latent.shape[1]

    # ------------------------------------------------------------------ derived views
    @cached_property
    def topics_normalized(self) -> np.ndarray:
        """[N, T] topics divided by the item's topic count (each row sums to 1)."""
        return (self.topics / self.topics.sum(axis=1, keepdims=True)).astype(np.float32)

    @cached_property
    def topic_lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse topics: (index [N, L] int64, weight [N, L] float32, count [N] int64), where
        L is the most topics any item has; row i lists item i's topics and their normalised
        weights (padding: index 0, weight 0)."""
        counts = (self.topics > 0).sum(axis=1)
        width = int(counts.max())
        order = np.argsort(self.topics <= 0, axis=1, kind="stable")[:, :width]
        weights = np.take_along_axis(self.topics_normalized, order, axis=1)
        present = np.arange(width)[None, :] < counts[:, None]
        return (
            np.where(present, order, 0).astype(np.int64),
            np.where(present, weights, 0.0).astype(np.float32),
            counts.astype(np.int64),
        )

    @cached_property
    def popularity_percentile(self) -> np.ndarray:
        """[N] rank of popularity in [0, 1] (1 = most popular); ties share the mean rank."""
        order = np.argsort(np.argsort(self.popularity, kind="stable"), kind="stable")
        return (order / max(self.n_items - 1, 1)).astype(np.float32)

    @cached_property
    def topic_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(items, offsets, counts): items of topic t are items[offsets[t]:offsets[t]+counts[t]]."""
        item_idx, topic_idx = np.nonzero(self.topics > 0)
        order = np.argsort(topic_idx, kind="stable")
        counts = np.bincount(topic_idx, minlength=self.n_topics)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return item_idx[order], offsets.astype(np.int64), counts.astype(np.int64)

    @cached_property
    def newest_first(self) -> np.ndarray:
        """[N] item indices sorted by release time, newest first."""
        return np.argsort(-self.release_time, kind="stable")

    @cached_property
    def age_days(self) -> np.ndarray:
        """[N] days between each release and the newest release (>= 0)."""
        return (self.release_time.max() - self.release_time).astype(np.float32)

    def take(self, order: np.ndarray) -> Catalog:
        """The catalog with its items in ``order`` (a permutation of 0..N-1): item ``order[j]``
        becomes row j; external ids, creators and topics travel with their items."""
        order = np.asarray(order, dtype=np.int64)
        if order.shape != (self.n_items,) or not np.array_equal(
            np.sort(order), np.arange(self.n_items)
        ):
            raise ValueError("Catalog.take: order must be a permutation of the item rows")
        return Catalog(
            name=self.name, item_ids=self.item_ids[order],
            titles=[self.titles[i] for i in order],
            descriptions=[self.descriptions[i] for i in order], topics=self.topics[order],
            topic_names=list(self.topic_names), creator=self.creator[order],
            creator_names=list(self.creator_names), quality=self.quality[order],
            duration=self.duration[order], popularity=self.popularity[order],
            release_time=self.release_time[order], latent=self.latent[order],
            meta=dict(self.meta),
        )  # fmt: skip

    def topic_list(self, i: int) -> list[str]:
        return [self.topic_names[t] for t in np.flatnonzero(self.topics[i])]

    def describe(self) -> dict[str, Any]:
        """Summary statistics (for CLI output and reports)."""
        return {
            "name": self.name,
            "items": self.n_items,
            "topics": self.n_topics,
            "creators": self.n_creators,
            "latent_dim": self.latent_dim,
            "mean_topics_per_item": float(self.topics.sum(axis=1).mean()),
            "popularity_total": float(self.popularity.sum()),
        }

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the catalog to one Parquet file, atomically (temp file + rename)."""
        path = Path(path)
        table = pa.table(
            {
                "item_id": self.item_ids,
                "title": self.titles,
                "description": self.descriptions,
                "topics": pa.FixedSizeListArray.from_arrays(
                    pa.array(self.topics.ravel()), self.n_topics
                ),
                "creator": self.creator,
                "quality": self.quality,
                "duration": self.duration,
                "popularity": self.popularity,
                "release_time": self.release_time,
                "latent": pa.FixedSizeListArray.from_arrays(
                    pa.array(self.latent.ravel()), self.latent_dim
                ),
            }
        )
        meta = {
            "recoworld.catalog": json.dumps(
                {
                    "name": self.name,
                    "topic_names": self.topic_names,
                    "creator_names": self.creator_names,
                    "meta": self.meta,
                }
            )
        }
        table = table.replace_schema_metadata(meta)
        atomic_write_parquet(table, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        path = Path(path)
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(b"recoworld.catalog")
        if raw is None:
            raise ValueError(f"{path}: not a RecoWorld catalog (no recoworld.catalog metadata)")
        head = json.loads(raw)
        n_topics = len(head["topic_names"])

        def matrix(col: str, width: int) -> np.ndarray:
            flat = table[col].combine_chunks().flatten().to_numpy()
            return flat.reshape(-1, width).astype(np.float32)

        latent_width = table.schema.field("latent").type.list_size
        return cls(
            name=head["name"],
            item_ids=table["item_id"].to_numpy().astype(np.int64),
            titles=table["title"].to_pylist(),
            descriptions=table["description"].to_pylist(),
            topics=matrix("topics", n_topics),
            topic_names=head["topic_names"],
            creator=table["creator"].to_numpy().astype(np.int64),
            creator_names=head["creator_names"],
            quality=table["quality"].to_numpy().astype(np.float32),
            duration=table["duration"].to_numpy().astype(np.float32),
            popularity=table["popularity"].to_numpy().astype(np.float32),
            release_time=table["release_time"].to_numpy().astype(np.float32),
            latent=matrix("latent", latent_width),
            meta=head.get("meta", {}),
        )
