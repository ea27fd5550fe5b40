"""A trained slate RLModule as a ``Recommender``: load a checkpoint, act, no Ray cluster.

``ModuleRecommender.from_checkpoint(path)`` accepts an algorithm checkpoint directory
(written by ``Algorithm.save_to_path``; the module is read from
``learner_group/learner/rl_module/default_policy``) or a module checkpoint directory, and
restores the torch module with ``RLModule.from_checkpoint`` — Ray's Python package is
imported but no Ray runtime is started, so a fresh process (an evaluation script, a
notebook) can use a trained policy like any baseline. ``act`` takes one observation or a
batch and returns the greedy slate (top-k scores) or, with ``explore=True``, a
Plackett-Luce sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from recoworld.core.errors import CheckpointError
from recoworld.policies.base import batched, unbatch

MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"
SHARED_MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "shared"
"""Where a population checkpoint (one policy shared by every user) keeps its module."""


def module_checkpoint_dir(path: str | Path) -> Path:
    """The RLModule directory inside an algorithm checkpoint (or ``path`` itself), absolute
    (RLlib reads a relative path as a URI without a scheme)."""
    path = Path(path).resolve()
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    for sub in (MODULE_SUBDIR, SHARED_MODULE_SUBDIR):  # single-agent, or population (shared)
        if (path / sub).is_dir():
            return path / sub
    if (path / "module_state.pt").exists() or any(path.glob("module_state*")):
        return path
    raise CheckpointError(
        f"{path} is neither an algorithm checkpoint (no {MODULE_SUBDIR}) nor an RLModule "
        "checkpoint (no module_state)"
    )


class ModuleRecommender:
    """Wraps a slate RLModule (``recoworld.rl.common.slate_module``) as a ``Recommender``."""

    def __init__(
        self, module: Any, name: str = "ppo", explore: bool = False, seed: int | None = None
    ) -> None:
        self.module = module
        self.name = name
        self.explore = explore
        self._generator = torch.Generator().manual_seed(seed or 0)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, name: str = "ppo", explore: bool = False
    ) -> ModuleRecommender:
        from ray.rllib.core.rl_module.rl_module import RLModule

        module = RLModule.from_checkpoint(module_checkpoint_dir(path))
        module.eval()
        return cls(module, name=name, explore=explore)

    def scores(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """[B, M] candidate scores for a batch of observations."""
        obs = {k: torch.as_tensor(np.asarray(v)) for k, v in observation.items()}
        with torch.no_grad():
            return self.module.scores(obs).numpy()

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        scores = torch.as_tensor(self.scores(obs))
        k = self.module.slate_size
        if self.explore:
            u = torch.rand(scores.shape, generator=self._generator).clamp_(1e-10, 1 - 1e-7)
            scores = scores - torch.log(-torch.log(u))
        slate = torch.topk(scores, k, dim=-1).indices.numpy()
        return unbatch(slate, single)


def module_recommender(algo: Any, name: str) -> Any:
    """The slate module of a running algorithm as a greedy ``ModuleRecommender``."""

    return ModuleRecommender(algo.get_module(), name=name)  # no dropout/batch-norm: mode-free


def module_from_checkpoint(path: Path, name: str) -> Any:
    """A slate module (or a subclass) from a checkpoint as a ``ModuleRecommender``."""

    return ModuleRecommender.from_checkpoint(path, name=name)
