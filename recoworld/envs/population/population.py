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
from recoworld.core.arrays import gather_bits
from recoworld.envs.population.config import PopulationConfig, PublishingConfig
from recoworld.envs.world import World
from recoworld.llm import LLMBackend
from recoworld.metrics import gini
from recoworld.simulators.base import Responses

SHARED_NOTE = "shared by a friend"


def watts_strogatz(n: int, degree: int, rewire: float, rng: np.random.Generator) -> np.ndarray:
    """[n, degree] friend lists: a ring lattice (degree/2 neighbours on each side) with each
    edge's far end rewired to a uniform random user with probability ``rewire`` (directed
    lists; a rewired edge that would point to the user itself goes to the next user)."""
    if degree == 0 or n < 2:
        return np.zeros((n, 0), dtype=np.int64)
    half = degree // 2
    offsets = np.concatenate([np.arange(1, half + 1), -np.arange(1, half + 1)])
    friends = (np.arange(n)[:, None] + offsets[None, :]) % n
    moved = rng.random(friends.shape) < rewire
    new = rng.integers(0, n, size=friends.shape)
    new = np.where(new == np.arange(n)[:, None], (new + 1) % n, new)
    return np.where(moved, new, friends).astype(np.int64)


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


def share_pushes(
    users: np.ndarray,
    liked_items: np.ndarray,
    friends: np.ndarray,
    alive: np.ndarray,
    p: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The shares of one step: ``users[i]`` liked ``liked_items[i]`` (in row-major order of
    the liked slots); each goes to each friend with probability ``p`` (one uniform per
    (like, friend) from ``rng``). Returns (recipient, item) pushes to alive recipients, in
    push order. Split from the delivery so that a sharded population draws it once, globally
    (``recoworld.envs.population.sharded``)."""
    targets = friends[users]  # [L, degree]
    keep = rng.random(targets.shape) < p
    to = targets[keep]
    what = np.broadcast_to(liked_items[:, None], targets.shape)[keep]
    ok = alive[to]
    return to[ok], what[ok]


def deliver_shares(inbox: np.ndarray, to: np.ndarray, what: np.ndarray) -> None:
    """Push ``what[i]`` into inbox row ``to[i]``, in order: newest first, a full inbox drops its
    oldest item (only the last ``inbox.shape[1]`` pushes to a row fit)."""
    if to.size == 0:
        return
    order = np.argsort(to, kind="stable")
    to, what = to[order], what[order]
    # rank of each push among the pushes to the same user (0 = first)
    starts = np.flatnonzero(np.r_[True, to[1:] != to[:-1]])
    rank = np.arange(len(to)) - np.repeat(starts, np.diff(np.r_[starts, len(to)]))
    size = inbox.shape[1]
    counts = np.bincount(to, minlength=inbox.shape[0])
    shift = np.minimum(counts, size)
    # shift the existing inbox right by the number of new items, then write them
    rows = np.flatnonzero(shift)
    cols = np.arange(size)[None, :] - shift[rows][:, None]
    old = np.where(cols >= 0, np.take_along_axis(inbox[rows], np.maximum(cols, 0), 1), -1)
    inbox[rows] = old
    newest = rank >= counts[to] - size  # only the last `size` pushes fit
    pos = counts[to][newest] - 1 - rank[newest]
    inbox[to[newest], pos] = what[newest]


def ledger_report(pop: Any) -> dict[str, Any]:
    """The creator ledger of ``pop`` (anything with ``creator_exposure`` / ``_clicks`` /
    ``_follows`` / ``_gifts`` arrays): per-creator totals and the exposure Gini."""
    return {
        "exposure_gini": gini(pop.creator_exposure),
        "exposure": pop.creator_exposure.tolist(),
        "clicks": pop.creator_clicks.tolist(),
        "follows": pop.creator_follows.tolist(),
        "gifts": pop.creator_gifts.tolist(),
    }


def release_uploads(
    pub: PublishingConfig,
    n_items: int,
    n_released: int,
    uploads: np.ndarray,
    t: int,
    rng: np.random.Generator,
) -> tuple[int, np.ndarray]:
    """One step of the publishing schedule: every ``pub.every`` steps a Poisson batch of the
    held-back items (the next indices after the ``n_released`` available ones) is released
    and stamped with step ``t``. Returns (new ``n_released``, ``uploads`` rows (item, step),
    the latest 256)."""
    left = n_items - n_released
    if left == 0 or pub.rate <= 0 or (t + 1) % pub.every:
        return n_released, uploads
    count = min(int(rng.poisson(pub.rate * pub.every)), left)
    if count == 0:
        return n_released, uploads
    new = np.arange(n_released, n_released + count)
    stamp = np.column_stack([new, np.full(count, t, dtype=np.int64)])
    return n_released + count, np.vstack([uploads, stamp])[-256:]


class Population:
    """The batched, coupled population core (see the module docstring)."""

    def __init__(self, config: PopulationConfig, llm_backend: LLMBackend | None = None) -> None:
        self.config = config
        catalog, movielens = load_catalog(config.world.catalog)
        catalog, movielens = hold_back_newest(catalog, movielens, config.publishing.reserve)
        self.capacity = config.max_users
        self.world = World(config.world, self.capacity, catalog, movielens, llm_backend)
        self.world.candidate_hook = self._inject
        self.world.response_hook = self._couple
        self.catalog = catalog
        n, m = self.capacity, self.world.n_candidates
        self.n_released = catalog.n_items - config.publishing.reserve
        self.alive = np.zeros(n, dtype=bool)
        self.joined = np.zeros(n, dtype=bool)
        self.friends = np.zeros((n, 0), dtype=np.int64)
        self.inbox = np.full((n, config.social.inbox_size), -1, dtype=np.int64)
        self.shared = np.zeros((n, m), dtype=bool)  # slots filled from the inbox
        self.trending = np.zeros(catalog.n_items)
        self.creator_exposure = np.zeros(catalog.n_creators)
        self.creator_clicks = np.zeros(catalog.n_creators)
        self.creator_follows = np.zeros(catalog.n_creators)
        self.creator_gifts = np.zeros(catalog.n_creators)
        self.exposure_gini: list[float] = []
        self.pair_exposure = np.zeros((n, catalog.n_creators), dtype=np.uint16)
        self.pair_clicks = np.zeros((n, catalog.n_creators), dtype=np.uint16)
        self.pair_gifts = np.zeros((n, catalog.n_creators), dtype=np.uint16)
        self.pair_last_shown = np.full((n, catalog.n_creators), -1, dtype=np.int32)
        self.uploads = np.zeros((0, 2), dtype=np.int64)  # rows: (item, step published)
        self.t = 0
        self.rng = np.random.default_rng()

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Fresh users in the first ``n_users`` slots (the others wait for arrivals); returns
        the batched observation of all slots."""
        cfg = self.config
        # the world spawns three streams from this seed (users, candidates, responses): the
        # population's own draws (graph, sharing, trending, publishing, arrivals) take a fourth
        self.rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
        self.friends = watts_strogatz(self.capacity, cfg.social.degree, cfg.social.rewire, self.rng)
        self.n_released = self.catalog.n_items - cfg.publishing.reserve
        self.world.candidates.set_available(self.n_released)
        self.inbox.fill(-1)
        self.shared[:] = False
        self.trending[:] = 0.0
        for ledger in (self.creator_exposure, self.creator_clicks, self.creator_follows,
                       self.creator_gifts):  # fmt: skip
            ledger[:] = 0.0
        self.exposure_gini = []
        for pairs in (self.pair_exposure, self.pair_clicks, self.pair_gifts):
            pairs[:] = 0
        self.pair_last_shown[:] = -1
        self.uploads = np.zeros((0, 2), dtype=np.int64)
        self.t = 0
        self.alive[:] = False
        self.alive[: cfg.n_users] = True
        self.joined[:] = self.alive
        obs, _ = self.world.reset(seed=seed)
        return obs

    def arrivals(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """New users joining this step (slots never used before); writes their observations
        into ``obs``; returns their slots."""
        rate = self.config.arrival_rate
        free = np.flatnonzero(~self.joined)
        if rate <= 0 or free.size == 0:
            return np.zeros(0, dtype=np.int64)
        count = min(int(self.rng.poisson(rate)), free.size)
        rows = free[:count]
        if count:
            self.world.reset_rows(rows, obs)
            self.alive[rows] = True
            self.joined[rows] = True
        return rows

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One platform step for every alive user (``actions`` [capacity, k]; rows of users
        who are not alive are ignored). Users whose episode ends leave for good."""
        active = self.alive.copy()
        self._set_slot_notes(actions)
        obs, reward, terminated, truncated, info = self.world.step(actions, active)
        done = (terminated | truncated) & active
        self.alive &= ~done
        self.t += 1
        info["shown"] = info["shown"] & active[:, None]  # nothing is shown to absent users
        info["shared"] = self.shared.copy()
        return obs, reward, terminated & active, truncated & active, info

    def _set_slot_notes(self, actions: np.ndarray) -> None:
        sim = self.world.simulator
        if not hasattr(sim, "slot_notes"):
            return
        flags = np.take_along_axis(self.shared, np.asarray(actions, dtype=np.int64), axis=1)
        notes = np.where(flags, SHARED_NOTE, "").astype(object)
        sim.slot_notes = notes

    # ------------------------------------------------------------------ coupling
    def _couple(self, resp: Responses, items: np.ndarray, mask: np.ndarray) -> None:
        """After the users responded (``mask``: slots shown to active users), before the next
        candidates: creator ledger, trending counts, sharing along the graph, publishing."""
        cat, cfg = self.catalog, self.config
        creators = cat.creator[items]
        self.creator_exposure += np.bincount(creators[mask], minlength=cat.n_creators)
        click = resp.click & mask
        self.creator_clicks += np.bincount(creators[click], minlength=cat.n_creators)
        self.creator_follows += np.bincount(creators[resp.follow & mask], minlength=cat.n_creators)
        self.creator_gifts += np.bincount(creators[resp.gift & mask], minlength=cat.n_creators)
        self.exposure_gini.append(gini(self.creator_exposure))
        self._log_pairs(creators, mask, click, resp.gift & mask)
        self.trending *= cfg.trending.decay
        self.trending += np.bincount(items[click], minlength=cat.n_items)
        self._share(resp.like & mask, items)
        self._publish()

    def _log_pairs(
        self, creators: np.ndarray, shown: np.ndarray, click: np.ndarray, gift: np.ndarray
    ) -> None:
        """Per-pair histories: exposure / clicks / gifts of (user slot, creator) this step
        (two items of one creator in a slate count twice), saturating at the uint16 max."""
        users = np.broadcast_to(np.arange(creators.shape[0])[:, None], creators.shape)
        n_creators = self.catalog.n_creators
        for ledger, hit in ((self.pair_exposure, shown), (self.pair_clicks, click),
                            (self.pair_gifts, gift)):  # fmt: skip
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

    def _share(self, liked: np.ndarray, items: np.ndarray) -> None:
        """Each liked item goes to each friend's inbox with probability share_probability
        (newest first; a full inbox drops its oldest item)."""
        p = self.config.social.share_probability
        if p <= 0 or self.friends.shape[1] == 0 or not liked.any():
            return
        users, slots = np.nonzero(liked)
        to, what = share_pushes(users, items[users, slots], self.friends, self.alive, p, self.rng)
        deliver_shares(self.inbox, to, what)

    def _publish(self) -> None:
        n_released, self.uploads = release_uploads(
            self.config.publishing, self.catalog.n_items, self.n_released, self.uploads,
            self.t, self.rng,
        )  # fmt: skip
        if n_released != self.n_released:
            self.n_released = n_released
            self.world.candidates.set_available(n_released)

    def _inject(self, cands: np.ndarray, rows: np.ndarray | None) -> None:
        """Overwrite the last candidate slots: shared items, followed creators' recent
        uploads, trending items (an item already among the user's candidates is skipped)."""
        cfg = self.config
        b, m = cands.shape
        who = np.arange(b) if rows is None else np.asarray(rows)
        shared = np.zeros((b, m), dtype=bool)
        slot = m - 1
        for _ in range(cfg.social.slots):
            item = self.inbox[who, 0]
            self._place(cands, slot, item, shared)
            self.inbox[who, :-1] = self.inbox[who, 1:]
            self.inbox[who, -1] = -1
            slot -= 1
        if cfg.publishing.follower_slots and len(self.uploads):
            recent = self.uploads[self.uploads[:, 1] >= self.t - cfg.publishing.recent_steps]
            if len(recent):
                state = self.world.state
                follows = (
                    state.follows[who][:, self.catalog.creator[recent[:, 0]]]
                    if state is not None
                    else np.zeros((b, len(recent)), dtype=bool)
                )
                newest_first = follows[:, ::-1]
                rank = np.cumsum(newest_first, axis=1)  # 1 = newest followed upload, ...
                items_newest = recent[::-1, 0]
                for s_ in range(cfg.publishing.follower_slots):
                    hit = newest_first & (rank == s_ + 1)
                    pick = np.where(hit.any(axis=1), items_newest[hit.argmax(axis=1)], -1)
                    self._place(cands, slot, pick, None)
                    slot -= 1
            else:
                slot -= cfg.publishing.follower_slots
        else:
            slot -= cfg.publishing.follower_slots
        total = self.trending[: self.n_released].sum()
        if cfg.trending.slots and total > 0:
            cdf = np.cumsum(self.trending[: self.n_released])
            for _ in range(cfg.trending.slots):
                u = self.rng.random(b) * total
                item = np.minimum(np.searchsorted(cdf, u, side="right"), self.n_released - 1)
                self._place(cands, slot, item, None)
                slot -= 1
        if rows is None:
            self.shared = shared
        else:
            self.shared[who] = shared

    @staticmethod
    def _place(cands: np.ndarray, slot: int, item: np.ndarray, flag: np.ndarray | None) -> None:
        """Put ``item`` [B] (-1: nothing) into column ``slot`` where it is not already
        among that user's candidates."""
        ok = (item >= 0) & ~(cands == item[:, None]).any(axis=1)
        cands[ok, slot] = item[ok]
        if flag is not None:
            flag[ok, slot] = True

    # ------------------------------------------------------------------ measures
    def reach(self, item: int) -> int:
        """How many users (alive or gone) have been shown ``item``."""
        state = self.world.state
        if state is None:
            return 0
        rows = np.flatnonzero(self.joined)
        return int(gather_bits(state.seen[rows], np.full((len(rows), 1), item)).sum())

    def creator_report(self) -> dict[str, Any]:
        """Per-creator totals and the exposure concentration so far."""
        return ledger_report(self)

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
        self.possible_agents = [f"user_{i}" for i in range(self.population.capacity)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        self._obs: dict[str, np.ndarray] | None = None
        self._cycles = 0
        self._last_info: dict[str, Any] | None = None

    def _make_population(self, llm_backend: LLMBackend | None) -> Population:
        """The batched core behind the env (``sharded_population`` overrides it)."""
        return Population(self.config, llm_backend)

    @functools.cache  # noqa: B019 (one space object for every agent)
    def observation_space(self, agent: str) -> spaces.Space:
        return self.population.world.observation_space

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return self.population.world.action_space

    def _agent_obs(self, rows: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        assert self._obs is not None
        return _per_agent(self._obs, list(self._obs), rows, self.possible_agents)

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
        unknown = set(actions) - set(self.agents)
        if unknown:
            raise ValueError(f"actions for agents that are not present: {sorted(unknown)[:5]}")
        if actions:
            rows = np.array([self._index[a] for a in actions], dtype=np.int64)
            batch[rows] = np.stack([np.asarray(v, dtype=np.int64) for v in actions.values()])
        before = np.array([self._index[a] for a in self.agents], dtype=np.int64)
        obs, reward, terminated, truncated, info = pop.step(batch)
        self._obs = obs
        self._cycles += 1
        self._last_info = info
        out_of_time = self._cycles >= self.config.max_cycles
        rewards = {self.possible_agents[r]: float(reward[r]) for r in before.tolist()}
        terms = {self.possible_agents[r]: bool(terminated[r]) for r in before.tolist()}
        truncs = {
            self.possible_agents[r]: bool(truncated[r]) or out_of_time for r in before.tolist()
        }
        infos = self._infos(info, before)
        staying = (
            before[~(terminated[before] | truncated[before])] if not out_of_time else before[:0]
        )
        joined = pop.arrivals(obs) if not out_of_time else np.zeros(0, dtype=np.int64)
        rows = np.concatenate([staying, joined])
        self.agents = [self.possible_agents[r] for r in rows.tolist()]
        observations = self._agent_obs(before) | self._agent_obs(joined)
        for r in joined.tolist():
            agent = self.possible_agents[r]
            rewards.setdefault(agent, 0.0)
            terms.setdefault(agent, False)
            truncs.setdefault(agent, False)
            infos.setdefault(agent, {"joined": True})
        return observations, rewards, terms, truncs, infos

    def _infos(self, info: dict[str, Any], rows: np.ndarray) -> dict[str, dict[str, Any]]:
        keys = [k for k in INFO_KEYS if k in info]
        out = _per_agent(info, keys, rows, self.possible_agents)
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
    batch: dict[str, Any], keys: list[str], rows: np.ndarray, names: list[str]
) -> dict[str, dict[str, Any]]:
    """Row ``r`` of each batched array, as one dict per agent (one split per key, then zip:
    several times faster than indexing every (agent, key))."""
    columns = []
    for k in keys:
        part = np.asarray(batch[k])[rows]
        # 1-d: plain Python scalars (tolist is one C call); n-d: row views
        columns.append(part.tolist() if part.ndim == 1 and part.dtype != object else list(part))
    return {
        names[r]: dict(zip(keys, values, strict=True))
        for r, values in zip(rows.tolist(), zip(*columns, strict=True), strict=True)
    }


def parallel_env(**kwargs: Any) -> PopulationEnv:
    """The population as a PettingZoo ``ParallelEnv`` (keyword arguments: ``PopulationEnv``)."""
    return PopulationEnv(**kwargs)


def raw_env(**kwargs: Any) -> Any:
    """The AEC version (PettingZoo's ``parallel_to_aec`` over ``parallel_env``)."""
    return parallel_to_aec(parallel_env(**kwargs))


env = raw_env
