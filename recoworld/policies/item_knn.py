"""Item-kNN: item-item cosine similarity over users, fitted on logged positives.

Fit (``ItemKNNRecommender.fit``): with X the binary user x item matrix of the log and
n_i the number of users of item i,

    sim(i, j) = (X^T X)_ij / (sqrt(n_i n_j) + shrinkage),   sim(i, i) = 0,

keeping each item's ``neighbors`` most similar items (a sparse [N, N] matrix). Shrinkage
damps similarities resting on few co-occurrences. On MovieLens 100k liked ratings the fit
takes well under a second.

Act: a candidate c is scored by its similarity to the user's recent clicks
(``observation["recent_ids"]``, most recent first), the h-th most recent weighted by
``recency_decay ** h``::

    cf_score(c) = sum_h recency_decay^h * sim(recent_h, c)

then combined with the popularity prior and the clicked-before penalty
(``recoworld.policies.collaborative``). Users without clicks get the prior's order.
Deterministic: no randomness anywhere.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recoworld.policies.collaborative import CollaborativeConfig, CollaborativeRecommender
from recoworld.policies.interactions import Interactions


class ItemKNNConfig(CollaborativeConfig):
    """Item-kNN settings."""

    neighbors: int = Field(100, ge=1, description="Most similar items kept per item.")
    shrinkage: float = Field(10.0, ge=0.0, description="Added to the cosine's denominator.")
    recency_decay: float = Field(
        0.8, gt=0.0, le=1.0, description="Weight ratio of each older recent click."
    )


class ItemKNNRecommender(CollaborativeRecommender):
    """Item-kNN over ``recent_ids`` (see the module docstring)."""

    name = "knn"

    def __init__(
        self,
        slate_size: int,
        config: ItemKNNConfig | None = None,
        clicked_index: int | None = None,
    ) -> None:
        super().__init__(slate_size, clicked_index)
        self.config: ItemKNNConfig = config or ItemKNNConfig()
        self.similarity: sp.csr_matrix | None = None

    def _fit(self, interactions: Interactions) -> None:
        x = interactions.matrix().tocsc()
        n = x.shape[1]
        counts = np.asarray(x.sum(axis=0)).ravel()
        co = (x.T @ x).tocsr()  # [N, N] co-occurrence counts
        norm = np.sqrt(counts)
        keep = min(self.config.neighbors, max(n - 1, 1))
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        chunk = max(1, (1 << 23) // max(n, 1))  # ~64 MB of float64 per dense block
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            block = co[start:stop].toarray()
            block /= norm[start:stop, None] * norm[None, :] + self.config.shrinkage + 1e-12
            block[np.arange(stop - start), np.arange(start, stop)] = 0.0
            top = np.argpartition(-block, keep - 1, axis=1)[:, :keep] if keep < n else None
            if top is None:
                top = np.broadcast_to(np.arange(n), block.shape)
            sims = np.take_along_axis(block, top, axis=1)
            nz = sims > 0
            rows.append(np.broadcast_to(np.arange(start, stop)[:, None], top.shape)[nz])
            cols.append(top[nz])
            vals.append(sims[nz])
        self.similarity = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        self.similarity.sort_indices()

    def _cf_scores(self, items: np.ndarray, recent: np.ndarray) -> np.ndarray:
        assert self.similarity is not None
        b, m = items.shape
        h = recent.shape[1]
        valid = recent >= 0
        weight = (self.config.recency_decay ** np.arange(h))[None, :] * valid  # [B, H]
        r = np.broadcast_to(np.where(valid, recent, 0)[:, :, None], (b, h, m)).ravel()
        c = np.broadcast_to(items[:, None, :], (b, h, m)).ravel()
        sims = np.asarray(self.similarity[r, c]).reshape(b, h, m)
        return np.einsum("bh,bhm->bm", weight, sims)
