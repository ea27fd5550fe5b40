"""Hidden-state reference policies of the tasks: ``TaskOracle`` ranks the current candidates
by the simulator's ground-truth utility as seen through a *lens*, which removes or replaces
the part of the utility a reference policy is not allowed to know.

Lenses (``LENSES``; terms in ``recoworld.simulators.parametric.model.COMPONENTS`` order):

- ``oracle``: the full utility, right now (every hidden term);
- ``population``: only the terms every user shares — quality and popularity — and the
  rewatch penalty (the platform knows what the user clicked): a perfect non-personalised
  ranking;
- ``static_novelty``: the full utility with the user's *static* novelty propensity in place
  of the session's (knows the user, not today's mood);
- ``no_instruction``: the full utility without the active instruction's term;
- ``no_creator``: the full utility without creator affinity (every creator alike);
- ``old_quality``: the full utility with the quality of the catalog's newest items (the
  candidate source's fresh window) replaced by their mean: knows old items' quality only;
- ``no_coupled``: the full utility, but never the last ``coupled`` candidate slots, which a
  population fills from the other users (shared by friends, followed creators' new
  uploads, trending): a ranking blind to what the rest of the population does.

They are references, not deployable policies: they read the world's hidden state in
process, so they run only on the world they were built for (``make_oracle(lens, world)``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recoworld.envs.world import World
from recoworld.policies.base import batched, top_k, unbatch
from recoworld.simulators.parametric.model import COMPONENTS, ParametricUserModel
from recoworld.simulators.parametric.state import UserState

Terms = tuple[np.ndarray, np.ndarray, np.ndarray]  # comps [B, M, 9], nov [B, M], util [B, M]
LensFn = Callable[["TaskOracle", UserState, np.ndarray, Terms], np.ndarray]
C = {name: i for i, name in enumerate(COMPONENTS)}


def _oracle(o: TaskOracle, state: UserState, items: np.ndarray, terms: Terms) -> np.ndarray:
    return terms[2]


def _population(o: TaskOracle, state: UserState, items: np.ndarray, terms: Terms) -> np.ndarray:
    comps, _, util = terms
    rewatch = util - comps.sum(-1)  # -2 for items the user already clicked, else 0
    return comps[..., C["quality"]] + comps[..., C["popularity"]] + rewatch


def _static_novelty(o: TaskOracle, state: UserState, items: np.ndarray, terms: Terms) -> np.ndarray:
    comps, nov, util = terms
    cfg = o.world.simulator.config
    static = cfg.novelty_weight * (state.novelty_static[:, None] - cfg.novelty_pivot) * nov
    return util - comps[..., C["novelty"]] + static


def _no_instruction(o: TaskOracle, state: UserState, items: np.ndarray, terms: Terms) -> np.ndarray:
    return terms[2] - terms[0][..., C["instruction"]]


def _no_creator(o: TaskOracle, state: UserState, items: np.ndarray, terms: Terms) -> np.ndarray:
    return terms[2] - terms[0][..., C["creator"]]


def new_items(world: World) -> np.ndarray:
    """[N] bool: the catalog's newest items, the candidate source's fresh window."""
    cat = world.catalog
    newest = np.argsort(-cat.release_time, kind="stable")[: world.config.candidates.fresh_window]
    mask = np.zeros(cat.n_items, dtype=bool)
    mask[newest] = True
    return mask


def _old_quality(o: TaskOracle, state: UserState, items: np.ndarray, terms: Terms) -> np.ndarray:
    comps, _, util = terms
    weight = o.world.simulator.config.quality_weight
    blind = np.where(o.new[items], weight * (2.0 * o.new_prior - 1.0), comps[..., C["quality"]])
    return util - comps[..., C["quality"]] + blind


def _no_coupled(o: TaskOracle, state: UserState, items: np.ndarray, terms: Terms) -> np.ndarray:
    scores = terms[2].copy()
    if o.coupled:
        scores[:, -o.coupled :] = -np.inf
    return scores


LENSES: dict[str, LensFn] = {
    "oracle": _oracle,
    "population": _population,
    "static_novelty": _static_novelty,
    "no_instruction": _no_instruction,
    "no_creator": _no_creator,
    "old_quality": _old_quality,
    "no_coupled": _no_coupled,
}


class TaskOracle:
    """Ranks the candidates of ``world``'s users by the utility seen through ``lens``."""

    def __init__(self, world: World, lens: str, name: str | None = None, coupled: int = 0) -> None:
        if lens not in LENSES:
            raise ValueError(f"unknown oracle lens {lens!r}; available: {', '.join(LENSES)}")
        if not isinstance(world.simulator, ParametricUserModel):
            raise ValueError("task oracles read the parametric user model's utility")
        self.world = world
        self.lens = lens
        self.name = name or f"oracle[{lens}]"
        self._fn = LENSES[lens]
        self.coupled = coupled
        self.new = new_items(world)
        self.new_prior = float(world.catalog.quality[self.new].mean())

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        w = self.world
        if w.state is None or w.cands is None or len(w.cands) != len(obs["candidates"]):
            raise ValueError(f"{self.name}: the observation does not come from its world")
        terms = w.simulator.utility_components(w.state, w.cands)
        scores = self._fn(self, w.state, w.cands, terms)
        return unbatch(top_k(scores, w.slate_size), single)


def make_oracle(
    lens: str, name: str | None = None, coupled: int = 0
) -> Callable[[World], TaskOracle]:
    """A policy factory (``world -> TaskOracle``) for ``run_policy``; ``coupled``: the
    population's coupled slots (``no_coupled``)."""
    return lambda world: TaskOracle(world, lens, name, coupled)
