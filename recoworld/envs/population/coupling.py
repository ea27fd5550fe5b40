"""How a population's users couple through the platform: one definition for both variants.

``Population`` (one process) and ``ShardedPopulation`` (users in blocks, on Ray actors)
couple their users in the same way and differ only in where the pieces run. Both drive
their worlds through the world's two phases (``World.respond``, then ``World.advance``) and
couple the users in between:

- ``StepSummary``: what one responded step tells the platform (per-creator exposure, clicks,
  follows and gifts, per-item clicks, the liked (user, item) pairs); a sharded population sums
  its blocks' summaries (``StepSummary.total``);
- ``PlatformCoupling`` (base of ``Population`` and of ``ShardedPopulation``, the driver): the
  population-wide state (who is alive and has joined, the friendship graph, the creator
  ledger, trending counts, the publishing schedule) and the population stream from which
  every population-wide draw comes, in one order: ``exchange`` (ledger and trending, then
  the shares, then publishing), then the trending slots' uniforms (``trending_uniforms``,
  drawn when the next candidates are injected), and ``arrivals`` after the step;
- ``CandidateSlots`` (base of ``Population`` and of a sharded ``PopulationBlock``): a group of
  users' inboxes and shared-slot flags, the replica of the platform state their candidates
  read, and ``inject``, which fills the last candidate slots with shared, followed creators'
  and trending items.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from recoworld.catalog import Catalog
from recoworld.core.arrays import gather_bits
from recoworld.envs.population.config import PopulationConfig, PublishingConfig
from recoworld.envs.world import Responded, World
from recoworld.metrics import gini
from recoworld.simulators.parametric.state import UserState

SHARED_NOTE = "shared by a friend"

StepResult = tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]


class Uniforms(Protocol):
    """Where the trending slots' uniforms come from: the population ``np.random.Generator``,
    or a sharded block's replay of what the driver drew for its rows."""

    def random(self, size: int) -> np.ndarray: ...


# --------------------------------------------------------------------------- building blocks


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


def trending_uniforms(
    config: PopulationConfig, trending: np.ndarray, n_released: int, rng: Uniforms, n: int
) -> list[np.ndarray]:
    """The uniforms of the trending slots of ``n`` users' fresh candidates: one array per
    trending slot, none while nothing released is trending."""
    if not (config.trending.slots and trending[:n_released].sum() > 0):
        return []
    return [rng.random(n) for _ in range(config.trending.slots)]


def place(cands: np.ndarray, slot: int, item: np.ndarray, flag: np.ndarray | None) -> None:
    """Put ``item`` [B] (-1: nothing) into column ``slot`` where it is not already among that
    user's candidates (and flag it in ``flag`` when given)."""
    ok = (item >= 0) & ~(cands == item[:, None]).any(axis=1)
    cands[ok, slot] = item[ok]
    if flag is not None:
        flag[ok, slot] = True


def reach_of(state: UserState | None, joined: np.ndarray, item: int) -> int:
    """How many of the ``joined`` users (alive or gone) of a world state have been shown
    ``item``."""
    if state is None:
        return 0
    rows = np.flatnonzero(joined)
    return int(gather_bits(state.seen[rows], np.full((len(rows), 1), item)).sum())


@dataclasses.dataclass
class StepSummary:
    """What one responded step tells the platform (counts over the slots shown)."""

    exposure: np.ndarray  # per creator
    clicks: np.ndarray  # per creator
    follows: np.ndarray  # per creator
    gifts: np.ndarray  # per creator
    item_clicks: np.ndarray  # per item
    liked_users: np.ndarray  # population slot of each like (row-major over liked slots)
    liked_items: np.ndarray  # item of each like

    @classmethod
    def of(cls, catalog: Catalog, step: Responded, lo: int = 0) -> StepSummary:
        """The summary of a world's responded ``step``; its user b is population slot
        ``lo + b``."""
        resp, items, shown = step.responses, step.items, step.shown
        n_creators = catalog.n_creators
        creators = catalog.creator[items]
        click = resp.click & shown
        users, slots = np.nonzero(resp.like & shown)
        return cls(
            exposure=np.bincount(creators[shown], minlength=n_creators),
            clicks=np.bincount(creators[click], minlength=n_creators),
            follows=np.bincount(creators[resp.follow & shown], minlength=n_creators),
            gifts=np.bincount(creators[resp.gift & shown], minlength=n_creators),
            item_clicks=np.bincount(items[click], minlength=catalog.n_items),
            liked_users=users + lo,
            liked_items=items[users, slots],
        )

    @classmethod
    def total(cls, parts: Sequence[StepSummary]) -> StepSummary:
        """The summary of a population from its blocks' (in user order)."""
        if len(parts) == 1:
            return parts[0]
        counts = {
            f.name: sum(getattr(p, f.name) for p in parts)
            for f in dataclasses.fields(cls)
            if not f.name.startswith("liked_")
        }
        return cls(
            **counts,
            liked_users=np.concatenate([p.liked_users for p in parts]),
            liked_items=np.concatenate([p.liked_items for p in parts]),
        )


# --------------------------------------------------------------------------- the platform


class PlatformCoupling(abc.ABC):
    """The population-wide side of the coupling (module docstring); a subclass calls
    ``_init_platform`` and implements ``join``."""

    config: PopulationConfig
    catalog: Catalog
    capacity: int
    rng: np.random.Generator

    def _init_platform(self, config: PopulationConfig, catalog: Catalog) -> None:
        self.config = config
        self.catalog = catalog
        self.capacity = n = config.max_users
        self.alive = np.zeros(n, dtype=bool)
        self.joined = np.zeros(n, dtype=bool)
        self.friends = np.zeros((n, 0), dtype=np.int64)
        self.trending = np.zeros(catalog.n_items)
        self.n_released = catalog.n_items - config.publishing.reserve
        self.uploads = np.zeros((0, 2), dtype=np.int64)  # rows: (item, step published)
        self.creator_exposure = np.zeros(catalog.n_creators)
        self.creator_clicks = np.zeros(catalog.n_creators)
        self.creator_follows = np.zeros(catalog.n_creators)
        self.creator_gifts = np.zeros(catalog.n_creators)
        self.exposure_gini: list[float] = []
        self.t = 0
        self.rng = np.random.default_rng()

    def reset_platform(self, seed: int | None) -> None:
        """A fresh platform: the population stream, a new friendship graph, nothing trending
        or released yet, an empty ledger; the first ``n_users`` slots alive."""
        cfg = self.config
        # the world spawns three streams from this seed (users, candidates, responses): the
        # population's own draws (graph, sharing, trending, publishing, arrivals) take a fourth
        self.rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
        self.friends = watts_strogatz(self.capacity, cfg.social.degree, cfg.social.rewire, self.rng)
        self.n_released = self.catalog.n_items - cfg.publishing.reserve
        self.trending = np.zeros(self.catalog.n_items)
        for ledger in (self.creator_exposure, self.creator_clicks, self.creator_follows,
                       self.creator_gifts):  # fmt: skip
            ledger[:] = 0.0
        self.exposure_gini = []
        self.uploads = np.zeros((0, 2), dtype=np.int64)
        self.t = 0
        self.alive[:] = False
        self.alive[: cfg.n_users] = True
        self.joined[:] = self.alive

    def exchange(self, summary: StepSummary) -> tuple[np.ndarray, np.ndarray]:
        """The coupling of one step, after the users responded and before their next
        candidates: creator ledger, trending counts, shares along the graph, publishing (in
        this order of draws). Returns the shares' (recipient, item) pushes."""
        self.creator_exposure += summary.exposure
        self.creator_clicks += summary.clicks
        self.creator_follows += summary.follows
        self.creator_gifts += summary.gifts
        self.exposure_gini.append(gini(self.creator_exposure))
        self.trending *= self.config.trending.decay
        self.trending += summary.item_clicks
        shares = self.draw_shares(summary.liked_users, summary.liked_items)
        self.n_released, self.uploads = release_uploads(
            self.config.publishing, self.catalog.n_items, self.n_released, self.uploads,
            self.t, self.rng,
        )  # fmt: skip
        return shares

    def draw_shares(
        self, users: np.ndarray, liked_items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each like (``users[i]`` liked ``liked_items[i]``) goes to each friend with
        probability ``social.share_probability`` (``share_pushes``)."""
        p = self.config.social.share_probability
        if p <= 0 or self.friends.shape[1] == 0 or users.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return share_pushes(users, liked_items, self.friends, self.alive, p, self.rng)

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
            self.join(rows, obs)
            self.alive[rows] = True
            self.joined[rows] = True
        return rows

    @abc.abstractmethod
    def join(self, rows: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        """New users in slots ``rows``: their worlds sample them and their candidates (whose
        trending slots draw from the population stream); their observations go into
        ``obs``."""

    def creator_report(self) -> dict[str, Any]:
        """Per-creator totals and the exposure concentration so far."""
        return {
            "exposure_gini": gini(self.creator_exposure),
            "exposure": self.creator_exposure.tolist(),
            "clicks": self.creator_clicks.tolist(),
            "follows": self.creator_follows.tolist(),
            "gifts": self.creator_gifts.tolist(),
        }


# --------------------------------------------------------------------------- the users' slots


class CandidateSlots:
    """A group of users' side of the coupling (module docstring): their world, inboxes and
    shared-slot flags, and the platform state their candidates read (``trending``,
    ``n_released``, ``uploads``, ``t``; ``rng`` gives the trending uniforms). A subclass
    calls ``_init_slots``."""

    config: PopulationConfig
    catalog: Catalog
    world: World
    trending: np.ndarray
    n_released: int
    uploads: np.ndarray
    t: int
    rng: Uniforms

    def _init_slots(self, n_users: int) -> None:
        m = self.world.n_candidates
        self.inbox = np.full((n_users, self.config.social.inbox_size), -1, dtype=np.int64)
        self.shared = np.zeros((n_users, m), dtype=bool)  # slots filled from the inbox

    def reset_slots(self) -> None:
        """Empty inboxes, no shared slots; the world samples only the released items."""
        self.world.candidates.set_available(self.n_released)
        self.inbox.fill(-1)
        self.shared[:] = False

    def receive(self, to: np.ndarray, what: np.ndarray) -> None:
        """After an exchange: the shares pushed to this group's users (``to``: their rows
        here) go into their inboxes, and the world samples the items released so far."""
        deliver_shares(self.inbox, to, what)
        if self.world.candidates.n_available != self.n_released:
            self.world.candidates.set_available(self.n_released)

    def respond(self, actions: np.ndarray, active: np.ndarray) -> Responded:
        """The world's first phase (the LLM users read which slots were shared)."""
        self.set_slot_notes(actions)
        return self.world.respond(actions, active)

    def advance(self, step: Responded) -> StepResult:
        """The world's second phase with this group's slots injected; users who were not
        active were shown nothing and do not end."""
        obs, reward, terminated, truncated, info = self.world.advance(step, inject=self.inject)
        info["shown"] = step.shown
        info["shared"] = self.shared.copy()
        return obs, reward, terminated & step.active, truncated & step.active, info

    def set_slot_notes(self, actions: np.ndarray) -> None:
        sim = self.world.simulator
        if not hasattr(sim, "slot_notes"):
            return
        flags = np.take_along_axis(self.shared, np.asarray(actions, dtype=np.int64), axis=1)
        notes = np.where(flags, SHARED_NOTE, "").astype(object)
        sim.slot_notes = notes

    def inject(self, cands: np.ndarray, rows: np.ndarray | None) -> None:
        """Overwrite the last candidate slots: shared items, followed creators' recent
        uploads, trending items (an item already among the user's candidates is skipped)."""
        cfg = self.config
        b, m = cands.shape
        who = np.arange(b) if rows is None else np.asarray(rows)
        shared = np.zeros((b, m), dtype=bool)
        slot = m - 1
        for _ in range(cfg.social.slots):
            item = self.inbox[who, 0]
            place(cands, slot, item, shared)
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
                    place(cands, slot, pick, None)
                    slot -= 1
            else:
                slot -= cfg.publishing.follower_slots
        else:
            slot -= cfg.publishing.follower_slots
        uniforms = trending_uniforms(cfg, self.trending, self.n_released, self.rng, b)
        if uniforms:
            cdf = np.cumsum(self.trending[: self.n_released])
            total = self.trending[: self.n_released].sum()
            for u in uniforms:
                item = np.minimum(np.searchsorted(cdf, u * total, side="right"),
                                  self.n_released - 1)  # fmt: skip
                place(cands, slot, item, None)
                slot -= 1
        if rows is None:
            self.shared = shared
        else:
            self.shared[who] = shared
