"""Logged positive interactions: what item-kNN and matrix factorisation are fitted on.

An ``Interactions`` is a list of (user, item) events that count as positive feedback, with
items as catalog indices. Two sources:

* ``Interactions.from_movielens(data)``: the MovieLens ratings, liked = rating >= the
  like threshold (``MovieLensData.like_threshold`` unless given). In a MovieLens world this
  is the platform's historical log: it names real raters, never the simulated users.
* ``Interactions.from_trajectories(log, catalog)``: a RecoWorld trajectory log (Parquet
  path or Arrow table, ``recoworld.envs.trajectory``): every clicked slot of every logged step is
  one event, and a user is one logged user life (``episode_id``).

``matrix()`` is the binary user x item matrix (repeated events count once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recoworld.catalog.catalog import Catalog
from recoworld.catalog.movielens import MovieLensData
from recoworld.envs.trajectory import read_trajectories


@dataclass(frozen=True, eq=False)
class Interactions:
    """Positive user-item events (row r: ``user[r]`` liked/clicked catalog item ``item[r]``)."""

    user: np.ndarray  # [R] int64 in [0, n_users)
    item: np.ndarray  # [R] int64 in [0, n_items)
    n_users: int
    n_items: int
    source: str = "arrays"

    def __post_init__(self) -> None:
        user = np.asarray(self.user)
        item = np.asarray(self.item)
        if user.shape != item.shape or user.ndim != 1:
            raise ValueError(
                f"Interactions: user and item must be 1-D of equal length, got {user.shape} "
                f"and {item.shape}"
            )
        if user.size == 0:
            raise ValueError(f"Interactions ({self.source}): no positive events to fit on")
        if not (np.issubdtype(user.dtype, np.integer) and np.issubdtype(item.dtype, np.integer)):
            raise ValueError("Interactions: user and item must be integer indices")
        if user.min() < 0 or user.max() >= self.n_users:
            raise ValueError(f"Interactions: user indices must lie in [0, {self.n_users})")
        if item.min() < 0 or item.max() >= self.n_items:
            raise ValueError(f"Interactions: item indices must lie in [0, {self.n_items})")
        object.__setattr__(self, "user", user.astype(np.int64, copy=False))
        object.__setattr__(self, "item", item.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return int(self.user.size)

    @classmethod
    def from_movielens(
        cls,
        data: MovieLensData,
        like_threshold: float | None = None,
        rows: np.ndarray | None = None,
    ) -> Interactions:
        """Liked ratings (rating >= ``like_threshold``, default the data's) of MovieLens;
        ``rows`` restricts to a subset of rating rows (e.g. a training split)."""
        threshold = data.like_threshold if like_threshold is None else like_threshold
        keep = data.rating >= threshold
        if rows is not None:
            mask = np.zeros(data.n_ratings, dtype=bool)
            mask[np.asarray(rows, dtype=np.int64)] = True
            keep &= mask
        return cls(
            user=data.user_index[keep],
            item=data.item_index[keep],
            n_users=data.n_users,
            n_items=data.catalog.n_items,
            source=f"movielens liked (rating >= {threshold:g})",
        )

    @classmethod
    def from_trajectories(cls, log: str | Path | pa.Table, catalog: Catalog) -> Interactions:
        """Clicks of a trajectory log (one user = one ``episode_id``); item ids are mapped
        to ``catalog`` indices (an id the catalog lacks is an error)."""
        table = read_trajectories(log) if isinstance(log, str | Path) else log
        missing = [c for c in ("episode_id", "item_ids", "click") if c not in table.column_names]
        if missing:
            raise ValueError(f"trajectory log lacks columns {missing}")
        ids = _fixed_lists(table, "item_ids")
        click = _fixed_lists(table, "click").astype(bool)
        if "shown" in table.column_names:
            click &= _fixed_lists(table, "shown").astype(bool)
        episode = np.asarray(table.column("episode_id").to_numpy(), dtype=np.int64)
        rows, slots = np.nonzero(click)
        order = np.argsort(catalog.item_ids, kind="stable")
        clicked_ids = ids[rows, slots]
        pos = np.searchsorted(catalog.item_ids, clicked_ids, sorter=order)
        pos = np.minimum(pos, len(order) - 1)
        item = order[pos]
        unknown = catalog.item_ids[item] != clicked_ids
        if unknown.any():
            raise ValueError(
                f"trajectory log: {int(unknown.sum())} clicked item ids are not in catalog "
                f"{catalog.name!r} (e.g. {clicked_ids[unknown][:3].tolist()})"
            )
        users, user = np.unique(episode[rows], return_inverse=True)
        return cls(
            user=user.astype(np.int64),
            item=item.astype(np.int64),
            n_users=max(len(users), 1),
            n_items=catalog.n_items,
            source=f"trajectory clicks ({len(table)} user-steps)",
        )

    def matrix(self) -> sp.csr_matrix:
        """Binary [n_users, n_items] CSR matrix (float64, repeated events count once)."""
        m = sp.csr_matrix(
            (np.ones(len(self), dtype=np.float64), (self.user, self.item)),
            shape=(self.n_users, self.n_items),
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def item_counts(self) -> np.ndarray:
        """[n_items] number of distinct users per item."""
        return np.asarray(self.matrix().sum(axis=0)).ravel()


def _fixed_lists(table: pa.Table, column: str) -> np.ndarray:
    """A fixed-size-list column as a [rows, k] array."""
    arr = table.column(column).combine_chunks()
    if not pa.types.is_fixed_size_list(arr.type):
        raise ValueError(f"trajectory log: column {column!r} is not a fixed-size list")
    k = arr.type.list_size
    return arr.flatten().to_numpy(zero_copy_only=False).reshape(len(arr), k)


def popularity_prior(counts: np.ndarray) -> np.ndarray:
    """log1p(count) scaled to [0, 1]: the cold-start score of fitted recommenders."""
    logc = np.log1p(np.asarray(counts, dtype=np.float64))
    return (logc / max(float(logc.max()), 1e-12)).astype(np.float32)
