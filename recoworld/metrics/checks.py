"""Input validation shared by the metric families: every metric checks its arrays and raises
``ValueError`` naming the argument.
"""

from __future__ import annotations

import numpy as np


def check_array(name: str, a: object, ndim: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    return arr


def check_float(name: str, a: object, ndim: int) -> np.ndarray:
    arr = check_array(name, a, ndim)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def check_ints(name: str, a: object, ndim: int) -> np.ndarray:
    """Integer ids; a float array is accepted when every value is a whole number."""
    arr = check_array(name, a, ndim)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        whole = np.issubdtype(arr.dtype, np.floating) and bool(
            (np.isfinite(arr) & (arr == np.round(arr))).all()
        )
        if not whole:
            raise ValueError(f"{name}: expected integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def check_bool(name: str, a: object, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(a)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    return arr.astype(bool, copy=False)


def shown_mask(shown: object | None, shape: tuple[int, ...]) -> np.ndarray:
    if shown is None:
        return np.ones(shape, dtype=bool)
    return check_bool("shown", shown, shape)


def same_rows(n: int, **arrays: np.ndarray) -> None:
    for name, arr in arrays.items():
        if arr.shape[0] != n:
            raise ValueError(f"{name}: expected {n} rows, got {arr.shape[0]}")


def check_items(name: str, items: np.ndarray, mask: np.ndarray, n_items: int) -> np.ndarray:
    """Checks the ids of the masked slots lie in [0, n_items); unmasked slots become 0."""
    live = items[mask]
    if live.size and (live.min() < 0 or live.max() >= n_items):
        raise ValueError(
            f"{name}: item ids must lie in [0, {n_items}), got {live.min()}..{live.max()}"
        )
    return np.where(mask, items, 0)


def check_relevance(name: str, a: object) -> np.ndarray:
    rel = check_float(name, a, 2)
    if np.isnan(rel).any() or (rel < 0).any():
        raise ValueError(f"{name}: relevances must be non-negative and not NaN")
    return rel


def slate_k(k: int | None, width: int, m: int | None = None) -> int:
    k = width if k is None else int(k)
    if k < 1 or k > width:
        raise ValueError(f"k: must satisfy 1 <= k <= slate width {width}, got {k}")
    if m is not None and k > m:
        raise ValueError(f"k: must be <= the number of candidates {m}, got {k}")
    return k


def check_counts(name: str, a: object) -> np.ndarray:
    c = check_float(name, a, 1)
    if c.size == 0:
        raise ValueError(f"{name}: expected a non-empty array")
    if np.isnan(c).any() or (c < 0).any():
        raise ValueError(f"{name}: counts must be non-negative and not NaN")
    return c


def ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num / den elementwise, ``empty`` where den == 0."""
    out = np.full(np.shape(num), empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out
