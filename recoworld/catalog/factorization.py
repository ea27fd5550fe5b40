"""Latent factors of a rating log: the item vectors a MovieLens catalog carries and the user
vectors its simulated users are fitted with.

Two methods (``MovieLensCatalogConfig.latent``):

- ``rating_svd``: a rank-D SVD of the user-mean-centred rating matrix (missing = 0), so a
  user . item product approximates the centred star rating: taste among films *rated*.
- ``implicit_als``: implicit-feedback ALS (Hu, Koren & Volinsky 2008) on the binary
  "rated at all" matrix, so the product approximates *whether the user watches* the film,
  the signal a consume decision needs. ``implicit_als`` is also the solver of the MF
  recommender (``recoworld.policies.matrix_factorization``).

Either way the item vectors are rescaled to unit root-mean-square norm and the user vectors
by the inverse factor, so every user . item product is unchanged.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import scipy.sparse as sp

LatentMethod = Literal["rating_svd", "implicit_als"]
LATENT_METHODS: tuple[str, ...] = get_args(LatentMethod)
# implicit_als settings of the catalog's factors (the MF recommender's defaults)
ALS_REGULARIZATION, ALS_ALPHA, ALS_ITERATIONS, ALS_INIT_SCALE = 20.0, 20.0, 15, 0.01


def _unit_items(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = np.sqrt((items**2).sum(1).mean()) + 1e-8
    return (users * scale).astype(np.float32), (items / scale).astype(np.float32)


def svd_factors(
    user_index: np.ndarray, item_index: np.ndarray, rating: np.ndarray, n_users: int,
    n_items: int, dim: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Rank-``dim`` SVD of the user-mean-centred rating matrix (missing = 0)."""
    counts = np.bincount(user_index, minlength=n_users)
    means = np.bincount(user_index, weights=rating, minlength=n_users) / np.maximum(counts, 1)
    matrix = np.zeros((n_users, n_items), dtype=np.float64)
    matrix[user_index, item_index] = rating - means[user_index]
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    root = np.sqrt(s[:dim])
    return _unit_items(u[:, :dim] * root, vt[:dim].T * root)


def als_solve_side(
    p: sp.csr_matrix, other: np.ndarray, regularization: float, alpha: float
) -> np.ndarray:
    """Exact ALS step for every row of ``p`` given the other side's factors [n, f]."""
    n, f = other.shape
    gram = other.T @ other + regularization * np.eye(f)
    outer = (other[:, :, None] * other[:, None, :]).reshape(n, f * f)
    a = gram[None] + alpha * np.asarray(p @ outer).reshape(-1, f, f)
    rhs = (1.0 + alpha) * np.asarray(p @ other)
    return np.linalg.solve(a, rhs[..., None])[..., 0]


def implicit_als(
    p: sp.csr_matrix, factors: int, regularization: float = ALS_REGULARIZATION,
    alpha: float = ALS_ALPHA, iterations: int = ALS_ITERATIONS,
    init_scale: float = ALS_INIT_SCALE, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(user [U, f], item [N, f]) factors of the binary matrix ``p`` [U, N] minimising
    sum c_ui (p_ui - x_u . y_i)^2 + regularization (|X|^2 + |Y|^2), c_ui = 1 + alpha p_ui,
    by ``iterations`` alternating exact solves from a seeded normal start (a pure function
    of its arguments)."""
    p = sp.csr_matrix(p, dtype=np.float64)
    pt = p.T.tocsr()
    rng = np.random.default_rng(seed)
    users = rng.normal(0.0, init_scale, (p.shape[0], factors))
    items = rng.normal(0.0, init_scale, (p.shape[1], factors))
    for _ in range(iterations):
        users = als_solve_side(p, items, regularization, alpha)
        items = als_solve_side(pt, users, regularization, alpha)
    return users, items


def latent_factors(
    method: str, user_index: np.ndarray, item_index: np.ndarray, rating: np.ndarray,
    n_users: int, n_items: int, dim: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(user [U, dim], item [N, dim]) float32 factors of a rating log by ``method`` (see
    the module docstring); items at unit RMS norm."""
    if method == "rating_svd":
        return svd_factors(user_index, item_index, rating, n_users, n_items, dim)
    if method == "implicit_als":
        p = sp.csr_matrix(
            (np.ones(len(user_index)), (user_index, item_index)), shape=(n_users, n_items)
        )
        p.data[:] = 1.0  # a rating = watched, repeated ratings count once
        return _unit_items(*implicit_als(p, dim))
    raise ValueError(f"latent method {method!r}: expected one of {list(LATENT_METHODS)}")
