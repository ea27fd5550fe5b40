"""SCRI-MDP samples: user-author pair transitions from trajectories, with or without ASA.

RLIV-UA (Kuaishou, 2025) values the relationship between a user and an author (creator).
In its *sparse cross-request interaction* MDP (SCRI-MDP) a transition of the pair (u, c)
exists only at a request t where an item of c was shown to u; the pair's next real state
is the next request t' > t where c is shown to u again, which may be far away or never come.
*Adjacent State Approximation* (ASA) takes the pair's next state from the user's adjacent
request t + 1 instead (the user's state then, the same author, the pair history updated by
what happened at t), so every pair transition gets a next state and samples are dense.

This module owns that transform, as one pure function and two adapters:

- ``scri_transitions(authors, shown, signals, terminated, asa)``: one user's sequence of L
  requests -> ``PairTransitions`` (arrays [L, k]); the tested core;
- ``scri_from_trajectories(table, item_creator, asa)``: the same over a Parquet trajectory
  log (``recoworld.envs.trajectory``), one row per pair transition (offline analysis, tests on
  hand-built logs, the sample counts of the experiment);
- ``SCRIConnector``: an RLlib learner ``ConnectorV2`` that runs the transform on the
  episodes of each training batch and adds per-timestep columns ``scri_*`` for the
  RLIV-UA learner (``recoworld.rl.rliv_ua.module``).

Why a learner connector rather than an offline Parquet transform for training: RLIV-UA here
learns on-policy next to PPO (the same sampled episodes feed the PPO actor and the pair
critics), and RLlib's learner connector is where per-batch data plumbing belongs on the new
API stack; it sees whole episode chunks (observations, actions and the env infos with each
slot's click / follow / gift) before minibatching, so a pair's next state (t + 1 or t') can
be looked up while the chunk is in order. The Parquet adapter shares the core for logs.

Conventions (both adapters):

- request t's responses are those of slot j of the slate shown at t; the author of a slot is
  ``item_creator[item]``. A pair transition starts at the *first* shown slot of each author
  in a slate (two items of one author in a slate make one pair transition); its rewards are
  the author's signals at t (click, follow, gift: 1 if any of the author's slots had it);
- ASA: ``next_t = t + 1`` (an observation index: t + 1 = L is the final observation of the
  sequence), ``next_slot = -1`` (the adjacent request need not show the author: the next
  state is the item-free pair state), ``done`` only at the last request of a terminated
  sequence (the user left for good). A non-terminated sequence bootstraps from its final
  observation (a truncated life, or an RLlib chunk that continues);
- true next co-occurrence (``asa=False``): ``next_t = t'`` and ``next_slot`` = the author's
  first shown slot at t'; without a t' in the sequence the pair transition is ``done`` when
  the sequence terminated (the user left; the pair has no future) and is dropped
  (``valid=False``) otherwise (its next state lies beyond the data: unknown).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

SIGNALS = ("click", "follow", "gift")
"""The progressive signals, densest first: one critic head each."""


@dataclass(frozen=True)
class PairTransitions:
    """The pair transitions of one user's L requests with k slots each (see module doc)."""

    valid: np.ndarray  # [L, k] bool: slot j of request t starts a pair transition
    rewards: np.ndarray  # [L, k, 3] float32: the author's click / follow / gift at t
    next_t: np.ndarray  # [L, k] int64: observation index of the next pair state (-1: none)
    next_slot: np.ndarray  # [L, k] int64: the author's slot at next_t (-1: item-free state)
    done: np.ndarray  # [L, k] bool: the pair has no future (target = reward only)
    authors: np.ndarray  # [L, k] int64: the author of each slot

    @property
    def count(self) -> int:
        return int(self.valid.sum())


def scri_transitions(
    authors: np.ndarray,
    shown: np.ndarray,
    signals: np.ndarray,
    terminated: bool,
    asa: bool = True,
) -> PairTransitions:
    """Pair transitions of one user's sequence: ``authors`` [L, k] (the author of each slot),
    ``shown`` [L, k] (slot really shown: not a duplicate), ``signals`` [L, k, 3] (click,
    follow, gift per slot), ``terminated``: the user left for good after request L - 1."""
    authors = np.asarray(authors, dtype=np.int64)
    shown = np.asarray(shown, dtype=bool)
    signals = np.asarray(signals)
    if authors.ndim != 2:
        raise ValueError(f"authors: expected [L, k], got shape {authors.shape}")
    n, k = authors.shape
    if shown.shape != (n, k):
        raise ValueError(f"shown: expected shape {(n, k)}, got {shown.shape}")
    if signals.shape != (n, k, len(SIGNALS)):
        raise ValueError(f"signals: expected shape {(n, k, len(SIGNALS))}, got {signals.shape}")
    if n and authors.min() < 0:
        raise ValueError("authors: negative author index")
    sig = signals.astype(np.float32) * shown[..., None]
    same = (authors[:, :, None] == authors[:, None, :]) & shown[:, :, None] & shown[:, None, :]
    # first shown slot of its author in the request; rewards pooled over the author's slots
    earlier = (same & np.tri(k, k, -1, dtype=bool)[None]).any(axis=2)
    first = shown & ~earlier
    rewards = np.einsum("tjl,tls->tjs", same.astype(np.float32), sig).clip(0.0, 1.0)
    rewards *= first[..., None]
    next_t = np.full((n, k), -1, dtype=np.int64)
    next_slot = np.full((n, k), -1, dtype=np.int64)
    done = np.zeros((n, k), dtype=bool)
    valid = first.copy()
    if asa:
        next_t[first] = np.broadcast_to(np.arange(1, n + 1)[:, None], (n, k))[first]
        if terminated and n:
            done[n - 1] = first[n - 1]
    else:
        upcoming: dict[int, tuple[int, int]] = {}  # author -> (request, slot) seen later
        for t in range(n - 1, -1, -1):
            slots = np.flatnonzero(first[t])
            for j in slots.tolist():
                hit = upcoming.get(int(authors[t, j]))
                if hit is not None:
                    next_t[t, j], next_slot[t, j] = hit
                elif terminated:
                    done[t, j] = True
                else:
                    valid[t, j] = False
            for j in slots.tolist():
                upcoming[int(authors[t, j])] = (t, j)
    rewards *= valid[..., None]
    return PairTransitions(valid, rewards.astype(np.float32), next_t, next_slot, done, authors)


# --------------------------------------------------------------------------- Parquet logs
def scri_from_trajectories(
    table: Any, item_creator: np.ndarray, asa: bool = True
) -> dict[str, np.ndarray]:
    """Pair transitions of a trajectory log (a pyarrow table with ``episode_id``, ``t``,
    ``item_index``, ``shown``, ``click``, ``follow``, ``gift``, ``terminated``): one entry
    per transition in columns ``episode_id``, ``t`` (the request's log step), ``slot``,
    ``author``, ``click``, ``follow``, ``gift``, ``next_t`` (log step of the next pair state;
    for ASA at the last request: -1 when done, else the request's own step + 1, the
    observation that followed it), ``next_slot``, ``done``, ``gap`` (requests between the
    transition and its next state). Rows of one episode are ordered by ``t``."""
    need = ("episode_id", "t", "item_index", "shown", "click", "follow", "gift", "terminated")
    missing = [c for c in need if c not in table.column_names]
    if missing:
        raise ValueError(f"trajectory table lacks columns {missing} (needs {list(need)})")
    item_creator = np.asarray(item_creator, dtype=np.int64)
    cols = {c: table.column(c).to_numpy(zero_copy_only=False) for c in need}
    slates = {c: np.stack(cols[c]) if len(cols[c]) else np.zeros((0, 1)) for c in need[2:7]}
    items = slates["item_index"].astype(np.int64)
    if items.size and (items.min() < 0 or items.max() >= len(item_creator)):
        raise ValueError(f"item_index outside the catalog [0, {len(item_creator)})")
    episode = cols["episode_id"].astype(np.int64)
    steps = cols["t"].astype(np.int64)
    order = np.lexsort((steps, episode))
    keys = ("episode_id", "t", "slot", "author", *SIGNALS, "next_t", "next_slot", "done", "gap")
    out: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    bounds = np.flatnonzero(np.r_[True, episode[order][1:] != episode[order][:-1], True])
    for start, stop in itertools.pairwise(bounds):
        rows = order[start:stop]
        if np.unique(steps[rows]).size != rows.size:
            raise ValueError(f"episode {episode[rows[0]]}: repeated log steps")
        sig = np.stack([slates[s][rows] for s in SIGNALS], axis=-1)
        tr = scri_transitions(
            item_creator[items[rows]], slates["shown"][rows].astype(bool), sig,
            bool(cols["terminated"][rows[-1]]), asa,
        )  # fmt: skip
        t_idx, j_idx = np.nonzero(tr.valid)
        log_t = steps[rows]
        nt = tr.next_t[t_idx, j_idx]
        has_next = (nt >= 0) & (nt < len(rows))
        next_log = np.where(has_next, log_t[np.minimum(nt, len(rows) - 1)], -1)
        last = (nt == len(rows)) & ~tr.done[t_idx, j_idx]  # ASA: the final observation
        next_log = np.where(last, log_t[t_idx] + 1, next_log)
        out["episode_id"].append(np.full(len(t_idx), episode[rows[0]], dtype=np.int64))
        out["t"].append(log_t[t_idx])
        out["slot"].append(j_idx.astype(np.int64))
        out["author"].append(tr.authors[t_idx, j_idx])
        for s, name in enumerate(SIGNALS):
            out[name].append(tr.rewards[t_idx, j_idx, s])
        out["next_t"].append(np.where(tr.done[t_idx, j_idx], -1, next_log))
        out["next_slot"].append(tr.next_slot[t_idx, j_idx])
        out["done"].append(tr.done[t_idx, j_idx])
        out["gap"].append(np.where(tr.done[t_idx, j_idx], 0, nt - t_idx))
    empty = {"done": bool, **dict.fromkeys(SIGNALS, np.float32)}
    return {
        key: np.concatenate(parts) if parts else np.zeros(0, empty.get(key, np.int64))
        for key, parts in out.items()
    }


# --------------------------------------------------------------------------- RLlib
SCRI_COLUMNS = (
    "scri_valid", "scri_rewards", "scri_done", "scri_next_user", "scri_next_history",
    "scri_next_instruction", "scri_next_counters", "scri_next_pair", "scri_next_item",
    "scri_next_has_item",
)  # fmt: skip
"""Per-timestep columns the connector adds (each with a slot axis of length k)."""


def pair_columns(candidate_dim: int) -> tuple[int, int]:
    """Indices of ``follows_creator`` and ``creator_clicks`` in a candidate feature row (the
    pair history the observation carries; ``recoworld.envs.observation``: they sit just
    before the source one-hot)."""
    from recoworld.catalog.candidates import SOURCES

    follows = candidate_dim - len(SOURCES) - 2
    return follows, follows + 1


def _make_connector_class() -> type:
    from ray.rllib.connectors.connector_v2 import ConnectorV2

    class SCRIConnector(ConnectorV2):
        """Learner connector: SCRI pair transitions of each episode chunk as ``scri_*``
        batch columns (see the module docstring). Runs after PPO's
        ``AddOneTsToEpisodesAndTruncate`` (RLlib prepends that one), so each chunk carries
        one artificial last timestep: its row gets ``scri_valid = False``."""

        def __init__(
            self,
            input_observation_space: Any = None,
            input_action_space: Any = None,
            *,
            item_creator: np.ndarray | list[int],
            asa: bool = True,
            **kwargs: Any,
        ) -> None:
            super().__init__(input_observation_space, input_action_space, **kwargs)
            self.item_creator = np.asarray(item_creator, dtype=np.int64)
            self.asa = asa

        def __call__(
            self,
            *,
            rl_module: Any,
            batch: dict[str, Any],
            episodes: list[Any],
            explore: bool | None = None,
            shared_data: dict | None = None,
            **kwargs: Any,
        ) -> Any:
            padded = bool((shared_data or {}).get("_added_loss_mask_for_valid_episode_ts"))
            for episode in self.single_agent_episode_iterator(
                episodes, agents_that_stepped_only=False
            ):
                columns = self.episode_columns(episode, padded)
                rows = len(episode)
                for key, value in columns.items():
                    self.add_n_batch_items(batch, key, value, rows, episode)
            return batch

        def episode_columns(self, episode: Any, padded: bool) -> dict[str, np.ndarray]:
            """The ``scri_*`` columns of one episode chunk (one row per timestep)."""
            rows = len(episode)
            n = rows - 1 if padded else rows  # real requests
            obs = episode.get_observations()
            actions = np.asarray(episode.get_actions(), dtype=np.int64)
            infos = episode.get_infos()
            cands, items = obs["candidates"], obs["candidate_ids"]
            k = actions.shape[1]
            real = actions[:n]
            slot_items = np.take_along_axis(items[:n], real, axis=1)
            authors = self.item_creator[slot_items]
            shown = np.stack([np.asarray(infos[t + 1]["shown"], bool) for t in range(n)]) \
                if n else np.zeros((0, k), bool)  # fmt: skip
            signals = np.stack([
                np.stack([np.asarray(infos[t + 1][s], np.float32) for s in SIGNALS], -1)
                for t in range(n)]) if n else np.zeros((0, k, 3), np.float32)  # fmt: skip
            # a padded chunk's last real step is terminal only if the episode terminated
            tr = scri_transitions(authors, shown, signals, bool(episode.is_terminated), self.asa)
            d = cands.shape[-1]
            fi, ci = pair_columns(d)
            valid = np.zeros((rows, k), bool)
            valid[:n] = tr.valid
            rewards = np.zeros((rows, k, 3), np.float32)
            rewards[:n] = tr.rewards
            done = np.zeros((rows, k), np.float32)
            done[:n] = tr.done
            nt = np.clip(np.where(tr.next_t >= 0, tr.next_t, 0), 0, len(items) - 1)
            ns = tr.next_slot
            out: dict[str, np.ndarray] = {}
            for key in ("user", "history", "instruction", "counters"):
                part = np.zeros((rows, k, obs[key].shape[-1]), np.float32)
                part[:n] = obs[key][nt]
                out[f"scri_next_{key}"] = part
            # next item (true co-occurrence) or the item-free pair state (ASA)
            has_item = (ns >= 0) & tr.valid
            cand_idx = np.zeros((n, k), np.int64)  # the next item's candidate index
            if has_item.any():
                cand_idx[has_item] = actions[nt[has_item], ns[has_item]]
            item_rows = cands[nt, cand_idx]  # [n, k, d]
            item = np.zeros((rows, k, d), np.float32)
            item[:n] = np.where(has_item[..., None], item_rows, 0.0)
            # pair history at the next state: from the next item's row when there is one,
            # else by the observation's own update rule from the pair at t (follows stay,
            # clicks on the creator add up, shown as clicks / 5 capped at 1)
            own = np.take_along_axis(cands[:n], real[..., None], axis=1)  # [n, k, d]
            follows_next = np.maximum(own[..., fi], tr.rewards[..., 1])
            clicks_next = np.minimum(own[..., ci] + 0.2 * self._author_clicks(tr, signals), 1.0)
            pair = np.zeros((rows, k, 2), np.float32)
            pair[:n, :, 0] = np.where(has_item, item_rows[..., fi], follows_next)
            pair[:n, :, 1] = np.where(has_item, item_rows[..., ci], clicks_next)
            has = np.zeros((rows, k), np.float32)
            has[:n] = has_item
            out.update(scri_valid=valid, scri_rewards=rewards, scri_done=done,
                       scri_next_pair=pair, scri_next_item=item,
                       scri_next_has_item=has)  # fmt: skip
            return out

        @staticmethod
        def _author_clicks(tr: PairTransitions, signals: np.ndarray) -> np.ndarray:
            """[n, k] clicks on each slot's author at its request (all of its slots)."""
            same = tr.authors[:, :, None] == tr.authors[:, None, :]
            return np.einsum("tjl,tl->tj", same.astype(np.float32), signals[..., 0])

    return SCRIConnector


_CONNECTOR: type | None = None


def scri_connector_class() -> type:
    """The ``SCRIConnector`` class (built on first use: importing this module does not
    import Ray)."""
    global _CONNECTOR
    if _CONNECTOR is None:
        _CONNECTOR = _make_connector_class()
    return _CONNECTOR


def make_scri_connector(
    input_observation_space: Any,
    input_action_space: Any,
    item_creator: list[int] | np.ndarray,
    asa: bool = True,
) -> Any:
    """A ``SCRIConnector`` (the ``learner_connector`` builder RLlib calls with the spaces)."""
    cls = scri_connector_class()
    return cls(input_observation_space, input_action_space, item_creator=item_creator, asa=asa)
