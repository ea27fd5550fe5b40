"""A population split across processes or machines: users in shards (Ray actors), the
coupling exchanged once per step, results independent of the number of shards.

``ShardedPopulation`` is the driver; it has the interface of ``Population`` (``reset``,
``step``, ``arrivals``, ``alive``, ``joined``, the creator ledger), so the PettingZoo
``ShardedPopulationEnv`` is ``PopulationEnv`` over it. The users (``capacity`` slots) are cut
into ``blocks`` contiguous ranges; each block is a ``PopulationBlock``: a batched ``World`` of
its users plus their inboxes and a replica of the platform state its candidates read
(trending counts, released items, recent uploads). A shard (``PopulationShard``, a Ray actor,
or an in-process object with ``use_ray=False``) holds a contiguous run of blocks.

## Randomness: why the block, not the shard, is the unit

The world's draws (users, candidates, responses) run through numba kernels that take a
variable number of uniforms per user from one ``np.random.Generator``, so a slice of users
cannot reproduce its part of a bigger batch's stream. Each block therefore has its own three
world streams (block 0 those of ``World.seed(seed)``; block g > 0 those of
``block_seed(seed, g)``), and everything drawn for the population as a whole — the friendship
graph, which shares reach which friend, publishing, arrivals and the uniforms of the trending
slots — comes from one population stream (``SeedSequence(seed).spawn(4)[3]``, as in
``Population``) that only the driver draws from, in ``Population``'s order; a block replays the
trending uniforms of its rows (``ReplayedUniforms``). Hence:

- a run depends on ``(config, seed, blocks)``, never on ``shards`` or on where the shards
  run: 1 shard in process, 2 shards on two nodes and ``blocks`` shards give identical
  observations, rewards and infos;
- with ``blocks=1`` it is *exactly* ``Population`` (same streams, same order of draws): the
  single-process run is the 1-shard case of this code, and ``Population`` is its 1-block case.

## One step

The world's step has two public phases (``World.respond``, ``World.advance``); a block keeps
the responded step between them, so nothing waits inside a world step.

1. fan-out (``begin_step``): each block's world responds (``World.respond``: responses,
   session ends, rewards, platform logs) and the block returns its ``StepSummary`` (per-creator
   exposure/click/follow/gift counts, per-item clicks, the liked (user, item) pairs);
2. exchange (driver): ``PlatformCoupling.exchange`` of the summed summaries (creator ledger,
   trending, the shares' draws, publishing), then the trending uniforms for every slot;
3. fan-in (``finish_step``): each block delivers the shares to its users' inboxes
   (``deliver_shares``), adopts trending/released/uploads, and its world advances
   (``World.advance``: session starts, next candidates with the shared/follower/trending
   slots, observations).

The observation, reward and info rows come back in user order. The coupling is
``recoworld.envs.population.coupling``: the driver and ``Population`` share
``PlatformCoupling`` (the exchange, arrivals), a block and ``Population`` share
``CandidateSlots`` (the injection of slots), so the single-process and the sharded population
have one definition of it; the equality tests (``tests/test_sharded_population.py``) hold
them to it.

LLM worlds work too (each shard's worlds make their backend from ``world.llm``: a
``ray_vllm`` backend with ``ray.pool_name`` set lets every shard use one named engine pool),
but equality across shard counts is only claimed for the parametric simulator: an LLM
engine's answers depend on how requests are batched.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from recoworld.catalog import load_catalog
from recoworld.envs.population.config import PopulationConfig
from recoworld.envs.population.coupling import (
    CandidateSlots,
    PlatformCoupling,
    StepResult,
    StepSummary,
    reach_of,
    trending_uniforms,
)
from recoworld.envs.population.population import PopulationEnv, hold_back_newest
from recoworld.envs.world import Responded, World


def block_ranges(capacity: int, blocks: int) -> list[tuple[int, int]]:
    """``blocks`` contiguous [lo, hi) user ranges covering ``capacity``, sizes differing by at
    most one (the first ``capacity % blocks`` are one larger)."""
    if not 1 <= blocks <= capacity:
        raise ValueError(f"blocks={blocks} must lie in [1, capacity={capacity}]")
    edges = np.r_[0, np.cumsum([len(a) for a in np.array_split(np.arange(capacity), blocks)])]
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def shard_blocks(blocks: int, shards: int) -> list[list[int]]:
    """Which blocks each shard holds: contiguous runs, as even as possible."""
    if not 1 <= shards <= blocks:
        raise ValueError(f"shards={shards} must lie in [1, blocks={blocks}]")
    return [list(map(int, run)) for run in np.array_split(np.arange(blocks), shards)]


def block_seed(seed: int, block: int) -> int:
    """The seed of block ``block``'s world streams: ``seed`` itself for block 0 (so one block
    is exactly ``Population``), else a 64-bit seed from the SeedSequence child ``(4, block)``
    of ``seed`` (disjoint from the world's children 0-2 and the population's child 3)."""
    if block == 0:
        return seed
    child = np.random.SeedSequence(seed, spawn_key=(4, block))
    return int(child.generate_state(1, np.uint64)[0])


class ReplayedUniforms:
    """Stands in for the population generator inside a block: ``random(n)`` returns the next
    array of uniforms the driver drew for this block's rows, and fails loudly when the block
    asks for a draw the driver did not make (the two would have diverged)."""

    def __init__(self) -> None:
        self._queue: list[np.ndarray] = []

    def load(self, arrays: Sequence[np.ndarray]) -> None:
        if self._queue:
            raise RuntimeError(f"{len(self._queue)} replayed uniform draw(s) were never used")
        self._queue = list(arrays)

    def random(self, size: int) -> np.ndarray:
        if not self._queue:
            raise RuntimeError(
                f"a block asked the population stream for {size} uniforms the driver did not draw"
            )
        u = self._queue.pop(0)
        if u.shape != (size,):
            raise RuntimeError(f"replayed uniforms have shape {u.shape}, the block asked {size}")
        return u

    def check_used(self) -> None:
        self.load([])


class PopulationBlock(CandidateSlots):
    """Users ``[lo, hi)`` of a sharded population: their world, inboxes and shared-slot flags,
    and a replica of the platform state their candidates read (module docstring)."""

    rng: ReplayedUniforms

    def __init__(
        self, config: PopulationConfig, lo: int, hi: int, catalog: Any, movielens: Any
    ) -> None:
        self.config, self.lo, self.hi = config, lo, hi
        self.capacity = hi - lo
        self.catalog = catalog
        self.world = World(config.world, self.capacity, catalog, movielens)
        self._init_slots(self.capacity)
        self.trending = np.zeros(catalog.n_items)
        self.n_released = catalog.n_items - config.publishing.reserve
        self.uploads = np.zeros((0, 2), dtype=np.int64)
        self.t = 0
        self.rng = ReplayedUniforms()
        self.obs: dict[str, np.ndarray] | None = None
        self._paused: Responded | None = None  # the step between begin_step and finish_step

    def reset(self, seed: int, n_alive: int) -> dict[str, np.ndarray]:
        self._paused = None
        self.n_released = self.catalog.n_items - self.config.publishing.reserve
        self.trending = np.zeros(self.catalog.n_items)  # not in place: may be a read-only reply
        self.uploads = np.zeros((0, 2), dtype=np.int64)
        self.t = 0
        self.rng = ReplayedUniforms()
        self.reset_slots()
        self.obs, _ = self.world.reset(seed=seed, inject=self.inject)
        return self.obs

    # ------------------------------------------------------------------ a step in two calls
    def begin_step(self, actions: np.ndarray, active: np.ndarray) -> StepSummary:
        """The world's first phase (``World.respond``); returns this block's summary and
        keeps the responded step for ``finish_step``."""
        self._paused = None
        step = self.respond(actions, active)
        self._paused = step
        return StepSummary.of(self.catalog, step, self.lo)

    def finish_step(self, reply: dict[str, Any]) -> StepResult:
        """Adopt the driver's reply (platform state, shares, trending uniforms), then the
        world's second phase (``World.advance``)."""
        if self._paused is None:
            raise RuntimeError("finish_step without begin_step")
        step, self._paused = self._paused, None
        self.trending = reply["trending"]  # read-only under Ray (object store): never edited
        self.n_released = reply["n_released"]
        self.uploads = reply["uploads"]
        self.rng.load(reply["uniforms"])
        self.receive(reply["share_to"] - self.lo, reply["share_what"])
        out = self.advance(step)
        self.rng.check_used()
        self.t += 1
        self.obs = out[0]
        return out

    def abort(self) -> None:
        """Drop a step begun but not finished (another block failed)."""
        self._paused = None

    def arrive(self, rows: np.ndarray, uniforms: list[np.ndarray]) -> dict[str, np.ndarray]:
        """New users in local ``rows`` (never used before); returns their observations."""
        assert self.obs is not None
        if rows.size == 0:
            return {key: value[rows] for key, value in self.obs.items()}
        self.rng.load(uniforms)
        self.world.reset_rows(rows, self.obs, inject=self.inject)
        self.rng.check_used()
        return {key: value[rows] for key, value in self.obs.items()}

    def reach(self, item: int, joined: np.ndarray) -> int:
        return reach_of(self.world.state, joined, item)


class PopulationShard:
    """A run of blocks in one process (the body of a Ray actor, or used in process)."""

    def __init__(self, config: dict[str, Any], ranges: list[tuple[int, int]]) -> None:
        self.config = PopulationConfig.model_validate(config)
        catalog, movielens = load_catalog(self.config.world.catalog)
        catalog, movielens = hold_back_newest(catalog, movielens, self.config.publishing.reserve)
        self.blocks = [
            PopulationBlock(self.config, lo, hi, catalog, movielens) for lo, hi in ranges
        ]
        self.lo, self.hi = ranges[0][0], ranges[-1][1]
        self.busy_s = 0.0  # time spent computing (for the benchmark's exchange overhead)

    def spaces(self) -> tuple[spaces.Space, spaces.Space]:
        w = self.blocks[0].world
        return w.observation_space, w.action_space

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        import os

        return os.getpid()

    def reset(self, seeds: list[int], n_alive: int) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        parts = [b.reset(s, n_alive) for b, s in zip(self.blocks, seeds, strict=True)]
        self.busy_s += time.perf_counter() - start
        return _concat(parts)

    def begin_step(self, actions: np.ndarray, active: np.ndarray) -> list[StepSummary]:
        start = time.perf_counter()
        out = []
        try:
            for b in self.blocks:
                sl = slice(b.lo - self.lo, b.hi - self.lo)
                out.append(b.begin_step(actions[sl], active[sl]))
        except BaseException:
            self.abort()
            raise
        self.busy_s += time.perf_counter() - start
        return out

    def finish_step(self, replies: list[dict[str, Any]]) -> StepResult:
        start = time.perf_counter()
        try:
            parts = [b.finish_step(r) for b, r in zip(self.blocks, replies, strict=True)]
        except BaseException:
            self.abort()
            raise
        obs, reward, term, trunc, info = zip(*parts, strict=True)
        out = (_concat(obs), np.concatenate(reward), np.concatenate(term),
               np.concatenate(trunc), _concat(info))  # fmt: skip
        self.busy_s += time.perf_counter() - start
        return out

    def abort(self) -> None:
        for b in self.blocks:
            b.abort()

    def arrive(self, per_block: list[tuple[np.ndarray, list[np.ndarray]]]) -> dict[str, Any]:
        start = time.perf_counter()
        parts = [b.arrive(rows, u) for b, (rows, u) in zip(self.blocks, per_block, strict=True)]
        self.busy_s += time.perf_counter() - start
        return _concat(parts)

    def satisfaction(self) -> np.ndarray:
        parts = [b.world.state.satisfaction for b in self.blocks if b.world.state is not None]
        return np.concatenate(parts) if parts else np.zeros(self.hi - self.lo, np.float32)

    def reach(self, item: int, joined: np.ndarray) -> int:
        return sum(b.reach(item, joined[b.lo - self.lo : b.hi - self.lo]) for b in self.blocks)

    def take_busy(self) -> float:
        busy, self.busy_s = self.busy_s, 0.0
        return busy

    def close(self) -> None:
        for b in self.blocks:
            b.abort()
            b.world.close()


def _concat(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if len(parts) == 1:
        return dict(parts[0])
    return {key: np.concatenate([np.asarray(p[key]) for p in parts]) for key in parts[0]}


@dataclasses.dataclass(frozen=True)
class WorldSpec:
    """What callers of a population read from its world besides stepping it."""

    observation_space: spaces.Space
    action_space: spaces.Space
    slate_size: int
    n_candidates: int


class ShardedPopulation(PlatformCoupling):
    """The driver of a sharded population (module docstring).

    ``shards``: how many shard processes (Ray actors) hold the blocks; ``blocks``: the unit of
    randomness (default ``shards``; keep it fixed to compare runs across shard counts);
    ``use_ray``: False runs the shards in this process (the reference run and the tests'
    fast path). ``ray_address``: connect to this cluster when Ray is not initialized yet
    (None: ``ray.init()``'s own default, i.e. ``RAY_ADDRESS`` or a new local instance).
    ``shard_options``: ``ray.remote`` options per shard actor (default ``num_cpus=1`` and the
    SPREAD scheduling strategy, so shards land on different nodes where they can).
    """

    def __init__(
        self,
        config: PopulationConfig | dict[str, Any],
        shards: int = 1,
        blocks: int | None = None,
        use_ray: bool = True,
        ray_address: str | None = None,
        shard_options: dict[str, Any] | None = None,
    ) -> None:
        cfg = PopulationConfig.model_validate(
            config.model_dump() if isinstance(config, PopulationConfig) else config
        )
        catalog, _ = load_catalog(cfg.world.catalog)
        self._init_platform(cfg, hold_back_newest(catalog, None, cfg.publishing.reserve)[0])
        self.n_blocks = shards if blocks is None else blocks
        self.ranges = block_ranges(self.capacity, self.n_blocks)
        self.layout = shard_blocks(self.n_blocks, shards)
        self.use_ray = use_ray
        payload = self.config.model_dump(mode="json")
        shard_ranges = [[self.ranges[g] for g in run] for run in self.layout]
        if use_ray:
            import ray

            if not ray.is_initialized():
                ray.init(address=ray_address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)  # fmt: skip
            options = {"num_cpus": 1, "scheduling_strategy": "SPREAD", **(shard_options or {})}
            actor = ray.remote(PopulationShard).options(**options)
            self.shards: list[Any] = [actor.remote(payload, r) for r in shard_ranges]
        else:
            self.shards = [PopulationShard(payload, r) for r in shard_ranges]
        obs_space, act_space = self._each("spaces")[0]
        self.world = WorldSpec(obs_space, act_space, self.config.world.episode.slate_size,
                               self.config.world.candidates.n_candidates)  # fmt: skip
        self.episode_id = np.zeros(self.capacity, dtype=np.int64)
        self._next_episode = 0
        self.timings = {"steps": 0, "wall_s": 0.0, "exchange_s": 0.0}

    # ------------------------------------------------------------------ transport
    def _call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``method(*args[i])`` on shard i (all shards in parallel under Ray), in order."""
        if self.use_ray:
            import ray

            refs = [getattr(s, method).remote(*a) for s, a in zip(self.shards, args, strict=True)]
            return ray.get(refs)
        return [getattr(s, method)(*a) for s, a in zip(self.shards, args, strict=True)]

    def _each(self, method: str, *args: Any) -> list[Any]:
        return self._call(method, [args] * len(self.shards))

    def _shard_slices(self) -> list[slice]:
        return [slice(self.ranges[run[0]][0], self.ranges[run[-1]][1]) for run in self.layout]

    def node_ids(self) -> list[str]:
        """The Ray node of each shard (placement checks)."""
        return self._each("node_id")

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        self.reset_platform(seed)
        self.episode_id = np.arange(self.capacity, dtype=np.int64)
        self._next_episode = self.capacity
        seeds = [[block_seed(seed, g) for g in run] for run in self.layout]
        parts = self._call("reset", [(s, self.config.n_users) for s in seeds])
        self.obs = _concat(parts)
        return self.obs

    def step(self, actions: np.ndarray) -> StepResult:
        """One platform step for every alive user (``Population.step``'s contract)."""
        start = time.perf_counter()
        actions = np.asarray(actions)
        if actions.shape != (self.capacity, self.world.slate_size):
            raise ValueError(
                f"actions: expected shape {(self.capacity, self.world.slate_size)}, "
                f"got {actions.shape}"
            )
        active = self.alive.copy()
        slices = self._shard_slices()
        try:
            summaries = self._call("begin_step", [(actions[s], active[s]) for s in slices])
        except BaseException:
            self._each("abort")
            raise
        t0 = time.perf_counter()
        replies = self._exchange([b for shard in summaries for b in shard])
        self.timings["exchange_s"] += time.perf_counter() - t0
        parts = self._call("finish_step", [([replies[g] for g in run],) for run in self.layout])
        obs, reward, terminated, truncated, info = (
            _concat([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([p[3] for p in parts]),
            _concat([p[4] for p in parts]),
        )
        info["episode_id"] = self.episode_id.copy()
        self.alive &= ~(terminated | truncated)
        self.t += 1
        self.obs = obs
        self.timings["steps"] += 1
        self.timings["wall_s"] += time.perf_counter() - start
        return obs, reward, terminated, truncated, info

    def _exchange(self, summaries: list[StepSummary]) -> list[dict[str, Any]]:
        """The coupling of one step (``exchange``, then the trending-slot uniforms: the order
        of draws of ``Population``). Returns one reply per block."""
        to, what = self.exchange(StepSummary.total(summaries))
        uniforms = trending_uniforms(self.config, self.trending, self.n_released, self.rng,
                                     self.capacity)  # fmt: skip
        replies = []
        for lo, hi in self.ranges:
            mine = (to >= lo) & (to < hi)
            replies.append({
                "trending": self.trending.copy(), "n_released": self.n_released,
                "uploads": self.uploads, "share_to": to[mine], "share_what": what[mine],
                "uniforms": [u[lo:hi] for u in uniforms],
            })  # fmt: skip
        return replies

    def join(self, rows: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        """New users in ``rows``: the driver draws their trending uniforms, their blocks
        sample them."""
        uniforms = trending_uniforms(self.config, self.trending, self.n_released, self.rng,
                                     len(rows))  # fmt: skip
        per_block = []
        for lo, hi in self.ranges:
            mine = (rows >= lo) & (rows < hi)
            per_block.append((rows[mine] - lo, [u[mine] for u in uniforms]))
        grouped = [[per_block[g] for g in run] for run in self.layout]
        sub = _concat(self._call("arrive", [(run,) for run in grouped]))
        for key, value in sub.items():
            if not obs[key].flags.writeable:  # arrays received from Ray are read-only
                obs[key] = obs[key].copy()
            obs[key][rows] = value
        count = len(rows)
        self.episode_id[rows] = np.arange(self._next_episode, self._next_episode + count)
        self._next_episode += count

    # ------------------------------------------------------------------ measures
    def reach(self, item: int) -> int:
        return sum(self._call("reach", [(item, self.joined[s]) for s in self._shard_slices()]))

    def satisfaction(self) -> np.ndarray:
        """Every slot's current satisfaction (the users' hidden state, in user order)."""
        return np.concatenate(self._each("satisfaction"))

    def shard_busy_s(self) -> list[float]:
        """Seconds each shard spent computing since the last call (resets the counters)."""
        return self._each("take_busy")

    def close(self) -> None:
        if not getattr(self, "shards", None):
            return
        if self.use_ray:
            import ray

            for s in self.shards:
                try:
                    ray.get(s.close.remote(), timeout=30)
                except ray.exceptions.RayError as err:  # gone or stuck: killed below
                    warnings.warn(f"shard close failed ({err}); killing the actor", stacklevel=2)
                ray.kill(s)
        else:
            for s in self.shards:
                s.close()
        self.shards = []


class ShardedPopulationEnv(PopulationEnv):
    """``PopulationEnv`` (same agents, spaces, rewards, infos) over a ``ShardedPopulation``.

    ## Arguments
    ``config``: a ``PopulationConfig`` (or mapping; keyword ``overrides`` as in
    ``PopulationEnv``); ``shards``, ``blocks``, ``use_ray``, ``ray_address``,
    ``shard_options``: those of ``ShardedPopulation``.
    """

    metadata = {**PopulationEnv.metadata, "name": "recoworld_sharded_population_v0"}

    def __init__(
        self,
        config: PopulationConfig | dict[str, Any] | None = None,
        render_mode: str | None = None,
        shards: int = 1,
        blocks: int | None = None,
        use_ray: bool = True,
        ray_address: str | None = None,
        shard_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        self._shard_args = (shards, blocks, use_ray, ray_address, shard_options)
        super().__init__(config, render_mode, **overrides)

    def _make_population(self, llm_backend: Any) -> Any:
        return ShardedPopulation(self.config, *self._shard_args)

    def state(self) -> np.ndarray:
        """A global view: per slot [alive, satisfaction]."""
        pop = self.population
        sat = pop.satisfaction() if self._obs is not None else np.zeros(pop.capacity, np.float32)
        return np.stack([self.population.alive.astype(np.float32), sat], axis=1)
