"""Population simulation: many users on one platform, as a PettingZoo ``ParallelEnv``.

``Population`` is the batched core: one ``World`` of ``capacity`` user slots whose users
couple through the platform:

- **trending**: the population's clicks (decayed per step) feed ``trending.slots`` candidate
  slots of every user, drawn in proportion to the trending counts;
- **social sharing**: users sit on a Watts-Strogatz friendship graph (``social.degree``
  friends, ``social.rewire`` of the edges rewired); an item a user likes is shared with each
  friend with probability ``social.share_probability`` and waits in the friend's inbox, from
  which ``social.slots`` candidate slots per step are filled; such slots are flagged
  (``info["shared"]``) and an LLM user reads the note "shared by a friend";
- **creators publishing**: the newest ``publishing.reserve`` items of the catalog are held
  back and released over time (Poisson, ``publishing.rate`` per step, in batches every
  ``publishing.every`` steps, in release order: the
  catalog is reordered so that held-back items come last and the available items are a
  prefix); a followed creator's recent upload fills ``publishing.follower_slots`` slots;
- **creator ledger**: exposure, clicks, follows and gifts per creator, and the Gini of
  creator exposure after every step;
- **user-author pair histories**: per user slot and creator, how often the creator's items
  were shown to the user, clicked and gifted, and the last step at which they were shown
  (``pair_exposure``, ``pair_clicks``, ``pair_gifts`` as uint16 counts saturating at 65535,
  ``pair_last_shown`` int32, -1 = never; follows are the users' own ``follows`` state):
  what RLIV-UA's sparse cross-request pairs are made of (``pair_history``). They cost 10
  bytes per (user slot, creator), the same order as the users' creator affinity.

A step drives the world through its two phases: ``World.respond`` (the users respond), then
``couple`` (pair histories, then ``exchange``: ledger, trending, shares, publishing), then
``World.advance`` (next candidates, their slots filled by ``inject``). The coupling is defined
once, in ``recoworld.envs.population.coupling``, for this population and the sharded one
(``recoworld.envs.population.sharded``).

Users join (``arrival_rate`` per step, Poisson, until ``capacity``) and leave: a user whose
episode ends (left for good, or its last allowed session ended) never comes back. Users come
from the world's ``segments`` when set. Every simulator mode works; an LLM world sends the
LLM calls of all users of a step as one batch.

``PopulationEnv`` (``parallel_env()``; ``env()`` is the AEC version via PettingZoo's
converter) makes each user an agent: the recommender's decision point for that user, with
the observation and action spaces of RecoWorld-v0, so one shared policy serves all agents.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from recoworld.catalog import Catalog, MovieLensData, load_catalog
from recoworld.envs.observation import view_observation, view_space
from recoworld.envs.population.config import PopulationConfig
from recoworld.envs.population.coupling import (
    SHARED_NOTE,
    CandidateSlots,
    PlatformCoupling,
    StepSummary,
    reach_of,
    watts_strogatz,
)
from recoworld.envs.world import Responded, World
from recoworld.llm import LLMBackend
from recoworld.metrics import gini
from recoworld.simulators.base import Responses

__all__ = [
    "SHARED_NOTE", "Population", "PopulationEnv", "env", "hold_back_newest", "parallel_env",
    "raw_env", "watts_strogatz",
]  # fmt: skip


def hold_back_newest(
    catalog: Catalog, movielens: MovieLensData | None, reserve: int
) -> tuple[Catalog, MovieLensData | None]:
    """The catalog reordered so that its ``reserve`` newest items come last, oldest release
    first (so releasing items in index order releases them in time order); the MovieLens
    rating log is remapped to the new rows."""
    if reserve == 0:
        return catalog, movielens
    if reserve >= catalog.n_items:
        raise ValueError(f"publishing.reserve={reserve} must be below the catalog size")
    newest = np.argsort(catalog.release_time, kind="stable")[-reserve:]
    rest = np.setdiff1d(np.arange(catalog.n_items), newest)
    order = np.concatenate([rest, newest])
    reordered = catalog.take(order)
    if movielens is None:
        return reordered, None
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    ml = dataclasses.replace(movielens, catalog=reordered, item_index=inverse[movielens.item_index])
    return reordered, ml


class Population(PlatformCoupling, CandidateSlots):
    """The batched, coupled population core (see the module docstring)."""

    rng: np.random.Generator

    def __init__(self, config: PopulationConfig, llm_backend: LLMBackend | None = None) -> None:
        catalog, movielens = load_catalog(config.world.catalog)
        catalog, movielens = hold_back_newest(catalog, movielens, config.publishing.reserve)
        self._init_platform(config, catalog)
        self.world = World(config.world, self.capacity, catalog, movielens, llm_backend)
        self._init_slots(self.capacity)
        n = self.capacity
        self.pair_exposure = np.zeros((n, catalog.n_creators), dtype=np.uint16)
        self.pair_clicks = np.zeros((n, catalog.n_creators), dtype=np.uint16)
        self.pair_gifts = np.zeros((n, catalog.n_creators), dtype=np.uint16)
        self.pair_last_shown = np.full((n, catalog.n_creators), -1, dtype=np.int32)

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Fresh users in the first ``n_users`` slots (the others wait for arrivals); returns
        the batched observation of all slots."""
        self.reset_platform(seed)
        self.reset_slots()
        for pairs in (self.pair_exposure, self.pair_clicks, self.pair_gifts):
            pairs[:] = 0
        self.pair_last_shown[:] = -1
        obs, _ = self.world.reset(seed=seed, inject=self.inject)
        return obs

    def join(self, rows: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        self.world.reset_rows(rows, obs, inject=self.inject)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One platform step for every alive user (``actions`` [capacity, k]; rows of users
        who are not alive are ignored): the world's users respond, the population couples
        (``couple``), the world advances. Users whose episode ends leave for good."""
        step = self.respond(actions, self.alive.copy())
        self.couple(step)
        obs, reward, terminated, truncated, info = self.advance(step)
        self.alive &= ~(terminated | truncated)
        self.t += 1
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------ coupling
    def couple(self, step: Responded) -> None:
        """After the users responded, before the next candidates: the pair histories, then
        ``exchange`` (creator ledger, trending, sharing along the graph, publishing)."""
        self._log_pairs(step.responses, step.items, step.shown)
        self.receive(*self.exchange(StepSummary.of(self.catalog, step)))

    def share(self, liked: np.ndarray, items: np.ndarray) -> None:
        """Each liked item (``liked`` [capacity, k] over ``items``) goes to each friend's
        inbox with probability share_probability (newest first; a full inbox drops its
        oldest item)."""
        users, slots = np.nonzero(liked)
        self.receive(*self.draw_shares(users, items[users, slots]))

    def _log_pairs(self, resp: Responses, items: np.ndarray, shown: np.ndarray) -> None:
        """Per-pair histories: exposure / clicks / gifts of (user slot, creator) this step
        (two items of one creator in a slate count twice), saturating at the uint16 max."""
        creators = self.catalog.creator[items]
        users = np.broadcast_to(np.arange(creators.shape[0])[:, None], creators.shape)
        n_creators = self.catalog.n_creators
        for ledger, hit in ((self.pair_exposure, shown), (self.pair_clicks, resp.click & shown),
                            (self.pair_gifts, resp.gift & shown)):  # fmt: skip
            if hit.any():  # O(pairs hit), not O(users x creators)
                pair, count = np.unique(users[hit] * n_creators + creators[hit],
                                        return_counts=True)  # fmt: skip
                flat = ledger.reshape(-1)
                flat[pair] = np.minimum(flat[pair].astype(np.int64) + count, 65535)
        self.pair_last_shown[users[shown], creators[shown]] = self.t

    def pair_history(self, slot: int) -> dict[str, np.ndarray]:
        """The pair histories of user slot ``slot`` with every creator: ``exposure``,
        ``clicks``, ``gifts`` (counts), ``follows`` (bool), ``last_shown`` (step, -1 never)."""
        if not 0 <= slot < self.capacity:
            raise ValueError(f"slot {slot} is outside [0, {self.capacity})")
        state = self.world.state
        follows = (
            np.zeros(self.catalog.n_creators, dtype=bool) if state is None else state.follows[slot]
        )
        return {
            "exposure": self.pair_exposure[slot].copy(),
            "clicks": self.pair_clicks[slot].copy(),
            "gifts": self.pair_gifts[slot].copy(),
            "follows": follows.copy(),
            "last_shown": self.pair_last_shown[slot].copy(),
        }

    # ------------------------------------------------------------------ measures
    def reach(self, item: int) -> int:
        """How many users (alive or gone) have been shown ``item``."""
        return reach_of(self.world.state, self.joined, item)

    def close(self) -> None:
        self.world.close()


class PopulationEnv(ParallelEnv):
    """RecoWorld's population as a PettingZoo ``ParallelEnv``.

    ## Agents
    ``possible_agents`` = ``user_0 .. user_{capacity-1}``; the first ``n_users`` are present
    after ``reset``, the others join over time (``arrival_rate``). Each agent is the
    recommender's decision point for one simulated user; an agent leaves for good when its
    user's episode ends (``terminations``: left and did not return; ``truncations``: its last
    allowed session ended, or ``max_cycles`` steps passed).

    ## Spaces
    Per agent, those of ``RecoWorld-v0``: a ``Dict`` observation (candidate features and
    ids, history, instruction, counters, ...) and a ``MultiDiscrete([M] * k)`` slate.

    ## Rewards and info
    The world's per-user reward. ``infos[agent]`` holds the step's responses for that user
    (click, watch, like, follow, gift per slot, session events, instruction text) and
    ``shared`` [M]: which candidates were shared by a friend.

    ## Arguments
    ``config``: a ``PopulationConfig`` (or mapping); keyword arguments override its top-level
    fields (``n_users``, ``max_cycles``, ...). ``render_mode``: ``"ansi"``.
    """

    metadata = {
        "name": "recoworld_population_v0",
        "render_modes": ["ansi"],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        config: PopulationConfig | dict[str, Any] | None = None,
        render_mode: str | None = None,
        llm_backend: LLMBackend | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(config, PopulationConfig):
            data = config.model_dump()
        else:
            data = dict(config or {})
        data.update(overrides)
        self.config = PopulationConfig.model_validate(data)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r}: supported {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.population = self._make_population(llm_backend)
        self._observation_space = view_space(
            self.population.world.observation_space, self.config.world.observation
        )
        self.possible_agents = [f"user_{i}" for i in range(self.population.capacity)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._names = np.array(self.possible_agents, dtype=object)  # row -> agent, vectorised
        self.agents: list[str] = []
        self._obs: dict[str, np.ndarray] | None = None
        self._cycles = 0
        self._last_info: dict[str, Any] | None = None

    def _make_population(self, llm_backend: LLMBackend | None) -> Population:
        """The batched core behind the env (``sharded_population`` overrides it)."""
        return Population(self.config, llm_backend)

    @functools.cache  # noqa: B019 (one space object for every agent)
    def observation_space(self, agent: str) -> spaces.Space:
        """Per agent, the view ``world.observation`` of RecoWorld-v0's observation (one space
        object shared by every agent)."""
        return self._observation_space

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return self.population.world.action_space

    def _agent_obs(self, rows: np.ndarray) -> dict[str, Any]:
        """Per agent of ``rows``, its rows of the batched observation: views, not copies
        (the world encodes a fresh batch every step, so they stay as they were)."""
        assert self._obs is not None
        view = view_observation(self._obs, self.config.world.observation)
        names = self._names[rows].tolist()
        if isinstance(view, np.ndarray):  # flat: one row per agent
            return dict(zip(names, _rows(view, rows), strict=True))
        return _per_agent(view, tuple(view), rows, names)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        self._obs = self.population.reset(seed)
        self._cycles = 0
        rows = np.flatnonzero(self.population.alive)
        self.agents = [self.possible_agents[r] for r in rows]
        infos = {a: {"joined": True} for a in self.agents}
        return self._agent_obs(rows), infos

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        if self._obs is None:
            raise RuntimeError("PopulationEnv.step called before reset()")
        pop = self.population
        k = pop.world.slate_size
        batch = np.zeros((pop.capacity, k), dtype=np.int64)
        batch[:] = np.arange(k)
        unknown = actions.keys() - set(self.agents)
        if unknown:
            raise ValueError(f"actions for agents that are not present: {sorted(unknown)[:5]}")
        if actions:
            rows = np.fromiter(map(self._index.__getitem__, actions), np.int64, len(actions))
            slates = list(actions.values())
            try:  # one conversion for all slates (np.stack of asarrays is ~5x slower)
                batch[rows] = np.array(slates, dtype=np.int64)
            except ValueError:  # ragged slates: the world's shape check says which
                batch[rows] = np.stack([np.asarray(v, dtype=np.int64) for v in slates])
        before = np.fromiter(map(self._index.__getitem__, self.agents), np.int64, len(self.agents))
        obs, reward, terminated, truncated, info = pop.step(batch)
        self._obs = obs
        self._cycles += 1
        self._last_info = info
        out_of_time = self._cycles >= self.config.max_cycles
        names = self._names[before].tolist()
        rewards = dict(zip(names, reward[before].astype(np.float64).tolist(), strict=True))
        terms = dict(zip(names, terminated[before].tolist(), strict=True))
        ended = truncated[before] | out_of_time
        truncs = dict(zip(names, ended.tolist(), strict=True))
        infos = self._infos(info, before, names)
        staying = (
            before[~(terminated[before] | truncated[before])] if not out_of_time else before[:0]
        )
        joined = pop.arrivals(obs) if not out_of_time else np.zeros(0, dtype=np.int64)
        rows = np.concatenate([staying, joined])
        self.agents = self._names[rows].tolist()
        observations = self._agent_obs(before)
        if joined.size:
            observations |= self._agent_obs(joined)
        for r in joined.tolist():
            agent = self.possible_agents[r]
            rewards.setdefault(agent, 0.0)
            terms.setdefault(agent, False)
            truncs.setdefault(agent, False)
            infos.setdefault(agent, {"joined": True})
        return observations, rewards, terms, truncs, infos

    def _infos(
        self, info: dict[str, Any], rows: np.ndarray, names: list[str]
    ) -> dict[str, dict[str, Any]]:
        """Per agent of ``rows`` (named ``names``), its entries of the step info: views of
        the step's (fresh) arrays, Python scalars, and the instruction text only for the
        agents who wrote one."""
        keys = tuple(k for k in INFO_KEYS if k in info)
        out = _per_agent(info, keys, rows, names)
        if "instruction" in info:
            for r in rows[np.asarray(info["instructed"])[rows]].tolist():
                if info["instruction"][r]:
                    out[self.possible_agents[r]]["instruction"] = info["instruction"][r]
        return out

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        pop = self.population
        top = np.argsort(pop.creator_exposure)[::-1][:3]
        names = [pop.catalog.creator_names[c] for c in top]
        return (
            f"step {self._cycles}: {len(self.agents)} users present, "
            f"{int(pop.joined.sum())} joined so far, {pop.n_released} items released; "
            f"creator exposure Gini {gini(pop.creator_exposure):.3f}; "
            f"most exposed creators: {', '.join(names)}"
        )

    def state(self) -> np.ndarray:
        """A global view: per slot [alive, satisfaction]."""
        st = self.population.world.state
        sat = np.zeros(self.population.capacity, np.float32) if st is None else st.satisfaction
        return np.stack([self.population.alive.astype(np.float32), sat], axis=1)

    def close(self) -> None:
        self.population.close()


INFO_KEYS = (
    "click", "watch", "like", "follow", "gift", "shown", "shared", "left", "session_end",
    "returned", "satisfaction",
)  # fmt: skip
"""Per-agent info entries (the user's row of the batched step info)."""


def _per_agent(
    batch: dict[str, Any], keys: tuple[str, ...], rows: np.ndarray, names: list[str]
) -> dict[str, dict[str, Any]]:
    """Rows ``rows`` of each batched array, as one dict per agent (``names``, one per row):
    1-d entries as Python scalars (one ``tolist`` per key), n-d entries as row views of the
    batched array (no copy), the dicts built by one dict display per agent."""
    columns = []
    for k in keys:
        value = np.asarray(batch[k])
        if value.ndim == 1 and value.dtype != object:
            columns.append(value[rows].tolist())
        else:
            columns.append(_rows(value, rows))
    return dict(zip(names, map(_dict_maker(keys), *columns), strict=True))


def _rows(value: np.ndarray, rows: np.ndarray) -> list[Any]:
    """Row views ``value[r]`` for r in ``rows`` (object arrays: the objects)."""
    every = list(value)  # one view per row, in C
    if len(rows) == len(every) and np.array_equal(rows, np.arange(len(every))):
        return every
    return list(map(every.__getitem__, rows.tolist()))


@functools.cache
def _dict_maker(keys: tuple[str, ...]) -> Any:
    """``lambda v0, v1, ...: {keys[0]: v0, keys[1]: v1, ...}`` (a dict display: about twice
    as fast as ``dict(zip(keys, values))`` per agent)."""
    if not all(key.isidentifier() for key in keys):
        return lambda *values: dict(zip(keys, values, strict=True))
    args = ", ".join(f"v{i}" for i in range(len(keys)))
    body = ", ".join(f"{key!r}: v{i}" for i, key in enumerate(keys))
    return eval(f"lambda {args}: {{{body}}}")  # keys are identifiers: a plain dict display


def parallel_env(**kwargs: Any) -> PopulationEnv:
    """The population as a PettingZoo ``ParallelEnv`` (keyword arguments: ``PopulationEnv``)."""
    return PopulationEnv(**kwargs)


def raw_env(**kwargs: Any) -> Any:
    """The AEC version (PettingZoo's ``parallel_to_aec`` over ``parallel_env``)."""
    return parallel_to_aec(parallel_env(**kwargs))


env = raw_env
