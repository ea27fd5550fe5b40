"""The ``Recommender`` protocol: every policy — baseline, RLlib-trained module, LLM
re-ranker — maps an observation to a slate, so evaluation treats them alike.

``act(observation)`` accepts one observation (``candidates`` of shape [M, d]) or a batch
(``[B, M, d]``) and returns ``[k]`` or ``[B, k]`` distinct candidate indices (int64).

Online learners also implement ``OnlineRecommender.update``, called once after every env
step with what the step produced::

    update(observation, slate, reward, next_observation, done, info)

``observation`` is the (batched) observation the slate was chosen from, ``slate`` [B, k]
the action, ``reward`` / ``done`` [B] (``terminated | truncated``), ``next_observation`` the
returned observation and ``info`` the env's step info: per-slot ``click`` / ``watch`` /
``shown`` [B, k] (so a learner can credit each slot, not just the slate), the instruction
text when ``episode.text_info`` keeps it, and — from the vector env — the ``_click`` mask of
the slots that really stepped (an autoreset slot's slate was ignored; learners skip it).
A single-user env's info is passed as is (arrays of length 1 or scalars are both accepted
through ``step_mask``).

Policies that need logged data (item-kNN, matrix factorisation) are fitted before they act;
``fit`` never happens inside ``act``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Recommender(Protocol):
    """A policy: observation -> slate of k distinct candidate indices."""

    name: str

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray: ...


@runtime_checkable
class OnlineRecommender(Recommender, Protocol):
    """A recommender that learns from every step (see the module docstring)."""

    def update(
        self,
        observation: dict[str, np.ndarray],
        slate: np.ndarray,
        reward: np.ndarray,
        next_observation: dict[str, np.ndarray],
        done: np.ndarray,
        info: dict[str, Any],
    ) -> None: ...


def batched(observation: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], bool]:
    """(observation with a leading batch axis, whether the input was a single observation)."""
    if not isinstance(observation, dict) or "candidates" not in observation:
        raise ValueError(
            "observation: expected a RecoWorld observation dict with a 'candidates' array, "
            f"got {type(observation).__name__}"
        )
    ndim = np.ndim(observation["candidates"])
    if ndim not in (2, 3):
        raise ValueError(
            f"observation['candidates']: expected shape [M, d] or [B, M, d], got "
            f"{np.shape(observation['candidates'])}"
        )
    single = ndim == 2
    if single:
        return {key: np.asarray(v)[None] for key, v in observation.items()}, True
    return observation, False


def require(obs: dict[str, np.ndarray], keys: tuple[str, ...], who: str) -> None:
    """Raise a clear error when the observation lacks keys a policy reads."""
    missing = [k for k in keys if k not in obs]
    if missing:
        raise ValueError(
            f"{who}: the observation lacks {missing} (it needs {list(keys)}; RecoWorld "
            "observations have them since the item-identity keys were added)"
        )


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores per row, best first, ties to the lower index."""
    if k > scores.shape[1]:
        raise ValueError(f"slate size {k} exceeds the {scores.shape[1]} candidates")
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def unbatch(slates: np.ndarray, single: bool) -> np.ndarray:
    return slates[0] if single else slates


def batched_info(info: dict[str, Any], single: bool) -> dict[str, Any]:
    """A step's info with a leading batch axis: a single env's info (row values: arrays of
    shape [k], scalars, str or None) gets one; a batched info is returned as is."""
    if not single:
        return info
    out: dict[str, Any] = {}
    for key, value in info.items():
        if isinstance(value, str) or value is None or isinstance(value, list):
            arr = np.empty(1, dtype=object)
            arr[0] = value
            out[key] = arr
        else:
            out[key] = np.asarray(value)[None]
    return out


def step_mask(info: dict[str, Any], n: int) -> np.ndarray:
    """[n] bool: the rows of a (batched) step that really happened: the vector env's
    ``_click`` mask, or all rows."""
    mask = info.get("_click")
    if mask is None:
        return np.ones(n, dtype=bool)
    return np.asarray(mask, dtype=bool).reshape(n)


def info_array(info: dict[str, Any], key: str) -> np.ndarray:
    """``info[key]`` as an array, with a clear error when the step info lacks it."""
    if key not in info:
        raise ValueError(f"update: the step info lacks {key!r} (pass the env's step info)")
    return np.asarray(info[key])
