"""The registry of RLlib training algorithms: what ``recoworld train --algo NAME`` builds.

Each algorithm lives in its own folder (``recoworld/rl/<name>/``: its config model, its
spec, its modules) and exposes an ``AlgorithmSpec``:

- ``build_config(world, train_config)``: the RLlib ``AlgorithmConfig`` to build and train;
- ``recommender(algo, name)``: the trained policy of a running ``Algorithm`` as a greedy
  ``Recommender`` (used for the evaluation curve during training);
- ``from_checkpoint(path, name)``: the same from a checkpoint directory, in a fresh process
  without a Ray runtime (used by ``recoworld evaluate`` and scripts).

- ``settings``: the pydantic model of the algorithm's own section of the training config
  (``train.<name>:`` in a run YAML), or None.

``ALGORITHMS`` maps names to ``"module:attribute"`` and is resolved lazily, so naming an
algorithm imports only its own module. Adding an algorithm is one folder and one line here,
or ``register_algorithm(name, spec)`` from any module (a plugin, a test).
``load_recommender(checkpoint)`` reads which algorithm wrote a checkpoint from the run's
``manifest.json`` (``train.algo``) next to it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoworld.core.errors import CheckpointError

if TYPE_CHECKING:
    from recoworld.core.config import StrictModel
    from recoworld.envs.config import WorldConfig
    from recoworld.policies.base import Recommender

ALGORITHMS: dict[str, str | AlgorithmSpec] = {
    "ppo": "recoworld.rl.ppo.algorithm:PPO_SPEC",
    "hrl": "recoworld.rl.hrl.algorithm:HRL_SPEC",
    "slate_ts": "recoworld.rl.slate_ts.algorithm:SLATE_TS_SPEC",
    "rliv_ua": "recoworld.rl.rliv_ua.algorithm:RLIV_UA_SPEC",
}


@dataclass(frozen=True)
class AlgorithmSpec:
    """How to build, evaluate and reload one algorithm (see the module docstring)."""

    build_config: Callable[[WorldConfig, Any], Any]  # (world, TrainConfig) -> AlgorithmConfig
    recommender: Callable[[Any, str], Recommender]
    from_checkpoint: Callable[[Path, str], Recommender]
    settings: type[StrictModel] | None = None


def register_algorithm(name: str, spec: AlgorithmSpec | str, *, replace: bool = False) -> None:
    """Make ``recoworld train --algo name`` (and ``TrainConfig(algo=name)``) build ``spec``:
    an ``AlgorithmSpec`` or its ``"module:attribute"`` path (resolved on first use)."""
    if not name.isidentifier():
        raise ValueError(f"algorithm name {name!r} must be a Python identifier")
    if name in ALGORITHMS and not replace:
        raise ValueError(f"algorithm {name!r} is already registered (pass replace=True)")
    ALGORITHMS[name] = spec


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The spec registered as ``name`` (ValueError naming the known ones otherwise)."""
    if name not in ALGORITHMS:
        raise ValueError(f"algo: unknown algorithm {name!r}; known: {sorted(ALGORITHMS)}")
    entry = ALGORITHMS[name]
    if isinstance(entry, AlgorithmSpec):
        return entry
    module, attr = entry.split(":")
    return getattr(importlib.import_module(module), attr)


def run_config(path: str | Path) -> dict[str, Any] | None:
    """The ``config`` recorded in the ``manifest.json`` of checkpoint ``path``'s run (the
    checkpoint's parent, or grandparent for ``checkpoints/iter_N``): ``{"world": ...,
    "train": ...}``; None when there is no manifest (module-only checkpoints)."""
    path = Path(path).resolve()
    for run_dir in (path.parent, path.parent.parent):
        manifest = run_dir / "manifest.json"
        if manifest.exists():
            return json.loads(manifest.read_text()).get("config") or {}
    return None


def checkpoint_algo(path: str | Path) -> str:
    """The algorithm that wrote checkpoint ``path``: ``train.algo`` of its run's config
    (``run_config``); ``"ppo"`` when no manifest says otherwise (module-only checkpoints,
    older runs)."""
    train = (run_config(path) or {}).get("train")
    if isinstance(train, dict) and train.get("algo") in ALGORITHMS:
        return str(train["algo"])
    return "ppo"


def load_recommender(path: str | Path, name: str, algo: str | None = None) -> Recommender:
    """A trained policy from a checkpoint as a ``Recommender`` (``algo`` read from the run's
    manifest when not given)."""
    path = Path(path).resolve()
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    return algorithm_spec(algo or checkpoint_algo(path)).from_checkpoint(path, name)
