"""Matrix factorisation: implicit-feedback ALS (Hu, Koren & Volinsky 2008) in numpy.

Fit (``ALSRecommender.fit``) on the binary user x item matrix P of logged positives, with
confidence c_ui = 1 + alpha * p_ui, minimising

    sum_ui c_ui (p_ui - x_u . y_i)^2 + regularization * (|X|^2 + |Y|^2)

by alternating exact least squares. Every half-step is vectorised over all users (items):
the per-user normal matrices ``Y^T Y + regularization I + alpha sum_{i in u} y_i y_i^T`` are
one sparse product of P with the items' flattened outer products, solved in one batched
``np.linalg.solve``. Factors start from a seeded normal draw, so a fit is a pure function of
(data, config). MovieLens 100k liked ratings, 32 factors, 15 iterations: about a second.

Act: a simulated user is not a row of the fit log, so its vector is *folded in* from its
recent clicks (``observation["recent_ids"]``) by the same exact user step — a batched
f x f solve per act, no training::

    x_b = (Y^T Y + regularization I + alpha sum_h y_h y_h^T)^-1 (1 + alpha) sum_h y_h

and a candidate c scores ``x_b . y_c``, combined with the popularity prior and the
clicked-before penalty (``recoworld.policies.collaborative``). Users without clicks get
x_b = 0, i.e. the prior's order.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from recoworld.catalog.factorization import implicit_als
from recoworld.policies.collaborative import CollaborativeConfig, CollaborativeRecommender
from recoworld.policies.interactions import Interactions


class ALSConfig(CollaborativeConfig):
    """Implicit ALS settings."""

    factors: int = Field(32, ge=1, le=512, description="Latent dimension f.")
    regularization: float = Field(20.0, ge=0.0, description="L2 weight on the factors.")
    alpha: float = Field(20.0, ge=0.0, description="Confidence of a positive: 1 + alpha.")
    iterations: int = Field(15, ge=1, description="Alternating (users, items) rounds.")
    init_scale: float = Field(0.01, gt=0.0, description="Std of the initial factors.")
    seed: int = Field(0, description="Seed of the initial factors.")


class ALSRecommender(CollaborativeRecommender):
    """Implicit ALS with fold-in of ``recent_ids`` (see the module docstring)."""

    name = "mf"

    def __init__(
        self,
        slate_size: int,
        config: ALSConfig | None = None,
        clicked_index: int | None = None,
    ) -> None:
        super().__init__(slate_size, clicked_index)
        self.config: ALSConfig = config or ALSConfig()
        self.item_factors: np.ndarray | None = None  # [N, f]
        self.user_factors: np.ndarray | None = None  # [U, f] of the fit log's users
        self._gram: np.ndarray | None = None

    def _fit(self, interactions: Interactions) -> None:
        cfg = self.config
        users, items = implicit_als(
            interactions.matrix(), cfg.factors, cfg.regularization, cfg.alpha,
            cfg.iterations, cfg.init_scale, cfg.seed,
        )  # fmt: skip
        self.user_factors = users
        self.item_factors = items
        self._gram = items.T @ items + cfg.regularization * np.eye(cfg.factors)

    def fold_in(self, recent: np.ndarray) -> np.ndarray:
        """[B, f] user vectors from recent clicks [B, H] (catalog indices, -1 padded)."""
        assert self.item_factors is not None and self._gram is not None
        valid = (recent >= 0)[..., None]
        y = self.item_factors[np.where(recent >= 0, recent, 0)] * valid  # [B, H, f]
        a = self._gram[None] + self.config.alpha * np.einsum("bhf,bhg->bfg", y, y)
        rhs = (1.0 + self.config.alpha) * y.sum(axis=1)
        return np.linalg.solve(a, rhs[..., None])[..., 0]

    def _cf_scores(self, items: np.ndarray, recent: np.ndarray) -> np.ndarray:
        assert self.item_factors is not None
        x = self.fold_in(recent)
        return np.einsum("bf,bmf->bm", x, self.item_factors[items])
