"""Policy-ranking agreement of the fidelity card: do the simulated MovieLens users rank
recommenders the way held-out real MovieLens interactions do?

Owns the two rankings, their rank correlations with bootstrap CIs, and the simulated user
lives that the behaviour statistics (``recoworld.evaluation.fidelity_behaviour``) read.

**The world** is the MovieLens task's world config (``MovieLens-v1`` unless the card names
``MovieLens-v0``) with its MovieLens data replaced by the card's training view
(``catalog.splits.training_view`` of the card's train split): the same fitted user as the
card's discrimination section, and its users drawn only from the card's scored
(evaluation) users. The task as shipped fits its users on every MovieLens rating, test
split included, which would let the simulator see the ground truth.

**Policies** (one object per policy, used on both sides): random, popular, item-kNN and MF
(``policies``; the fitted two on the liked ratings of the train split, the world's own
``make_baseline`` default on that world), LinUCB, a content baseline ``genre-match``
(defined here), and a trained PPO when a checkpoint is given. LinUCB is an online learner:
cold, it has nothing to rank offline with, so it is warmed first on real data no scored
user holds: the held-out lists of the calibration users (every candidate shown, a click =
a held-out film). Offline it stays frozen at that warm start; in the world it starts from
it and keeps learning, as it would online.

**Simulated ranking**: every policy runs the same user lives (the same seeds: common
random numbers); per policy, the mean return per life and the return rate (returns per
session end), pooled over the lives of every seed.

**Offline ranking** (slate replay): each scored user gets ``lists`` lists of 20 films
(the world's candidate count): 5 from its held-out valid ∪ test films and 15 it never
rated (uniform, or popularity-matched: ``fidelity_protocol.discrimination_lists`` at 1:3).
The observation is what the world would show for this user after its train-split history
(recent films, click-topic history, clicked-before flags, all from train ratings in time
order); every policy picks its slate of 3 with its own ``act``. Metrics per user:
precision@3 (held-out films in the slate / 3) and NDCG@3 (binary gains, slate order).

**Agreement**: Spearman and Kendall (tau-b, ``scipy.stats``) between the two rankings,
with percentile bootstrap CIs: each resample draws lives (all policies together) and
scored users (all policies together) independently and recomputes both rankings. With n
policies a rank correlation takes few values; the exact permutation p-value is given
beside it.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import kendalltau, rankdata

from recoworld.catalog.movielens import MovieLensData
from recoworld.core.stats import percentile_interval, resample_weights
from recoworld.envs.observation import EMA, IDS_VIEW, PlatformState
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.envs.world import World
from recoworld.evaluation.fidelity_protocol import CardSplit, Lists, discrimination_lists
from recoworld.policies.base import Recommender, batched, top_k, unbatch
from recoworld.policies.baselines import make_baseline
from recoworld.policies.linucb import LinUCBRecommender
from recoworld.policies.rollout import step_policy
from recoworld.tasks.spec import load_task

TASK = "MovieLens-v1"
SIMULATOR_METRICS = ("mean_return", "return_rate")
OFFLINE_METRICS = ("precision@3 uniform", "ndcg@3 uniform", "precision@3 popularity")
PRIMARY = ("mean_return", "precision@3 uniform")
SIMUSER_SPEARMAN = 0.72
SIMUSER_NOTE = (
    "SimUSER (ACL 2025) reports Spearman 0.72 between simulated and real outcomes of 55 "
    "online A/B tests (private). We have no online A/B tests: our ground truth is offline "
    "held-out MovieLens interactions, a different and weaker yardstick."
)


# --------------------------------------------------------------------------- arithmetic


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (Pearson correlation of mid-ranks; NaN when a side is constant)."""
    return float(_spearman_rows(np.asarray(x)[None], np.asarray(y)[None])[0])


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Spearman's rho of [R, P] arrays."""
    rx = rankdata(x, axis=1) - (x.shape[1] + 1) / 2
    ry = rankdata(y, axis=1) - (y.shape[1] + 1) / 2
    den = np.sqrt((rx**2).sum(1) * (ry**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(1) / np.where(den > 0, den, 1.0), np.nan)


def kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b (``scipy.stats.kendalltau``; NaN when a side is constant)."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(kendalltau(x, y).statistic)


def spearman_null_p(rho: float, n: int) -> float | None:
    """P(Spearman >= rho) when one ranking of n distinct items is a uniformly random
    permutation of the other (exact enumeration; None for n > 8)."""
    if n > 8 or n < 2 or not np.isfinite(rho):
        return None
    base = np.arange(n, dtype=np.float64)
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.float64)
    rhos = _spearman_rows(np.broadcast_to(base, perms.shape), perms)
    return float((rhos >= rho - 1e-12).mean())


def resampled_means(
    num: np.ndarray, den: np.ndarray | None, n_boot: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per column (policy) of ``num`` [n_units, P]: the point estimate sum(num) / sum(den)
    (``den`` None: the mean over units) and its ``n_boot`` bootstrap values [n_boot, P],
    units resampled jointly for every column (``resample_weights``)."""
    num = np.asarray(num, dtype=np.float64)
    d = np.ones_like(num) if den is None else np.asarray(den, dtype=np.float64)
    w = resample_weights(num.shape[0], n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num.sum(0) / d.sum(0), (w @ num) / (w @ d)


def agreement(
    sim_point: np.ndarray, sim_boot: np.ndarray, off_point: np.ndarray, off_boot: np.ndarray
) -> dict[str, Any]:
    """Spearman and Kendall between the simulated and offline values of the policies, with
    percentile CIs over the paired resamples (row b of ``sim_boot`` with row b of
    ``off_boot``), the exact permutation p-value of the point Spearman, and each side's
    ranking (1 = best)."""
    rho = spearman(sim_point, off_point)
    taus = np.array([kendall(a, b) for a, b in zip(sim_boot, off_boot, strict=True)])
    rhos = _spearman_rows(sim_boot, off_boot)
    out: dict[str, Any] = {}
    for name, point, boot in (("spearman", rho, rhos), ("kendall", kendall(sim_point, off_point),
                                                         taus)):  # fmt: skip
        lo, hi = percentile_interval(boot)
        out[name] = {"mean": point, "lo": lo, "hi": hi, "n": len(sim_point)}
    out["spearman_null_p"] = spearman_null_p(rho, len(sim_point))
    out["sim_rank"] = rankdata(-np.asarray(sim_point), method="min").astype(int).tolist()
    out["offline_rank"] = rankdata(-np.asarray(off_point), method="min").astype(int).tolist()
    return out


def slate_metrics(slate: np.ndarray, label: np.ndarray) -> dict[str, np.ndarray]:
    """Per row: precision@k (held-out films among the k picked) and NDCG@k (binary gains in
    slate order, ideal = min(k, positives) hits on top) of ``slate`` [B, k] (candidate
    indices) against ``label`` [B, M]."""
    slate = np.asarray(slate, dtype=np.int64)
    label = np.asarray(label, dtype=bool)
    k = slate.shape[1]
    hit = np.take_along_axis(label, slate, axis=1).astype(np.float64)
    disc = 1.0 / np.log2(np.arange(k) + 2.0)
    ideal = np.array([disc[: min(k, int(p))].sum() for p in label.sum(1)])
    return {"precision": hit.mean(1), "ndcg": (hit @ disc) / np.maximum(ideal, 1e-12)}


# --------------------------------------------------------------------------- policies


class GenreMatchRecommender:
    """Content baseline: candidates whose genres match the user's click-topic history
    (``history``, the observed decayed genre distribution) first; the popularity feature
    breaks ties and is the whole score without history; films clicked before go last."""

    name = "genre-match"

    def __init__(self, slate_size: int, feature_names: list[str]) -> None:
        self.slate_size = slate_size
        self.topics = [i for i, n in enumerate(feature_names) if n.startswith("topic:")]
        self.popularity = feature_names.index("popularity")
        self.clicked = feature_names.index("clicked_before")

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        cand = np.asarray(obs["candidates"], dtype=np.float64)
        topics = cand[..., self.topics]
        topics = topics / np.maximum(topics.sum(-1, keepdims=True), 1e-12)
        history = np.asarray(obs["history"], dtype=np.float64)[:, None, : len(self.topics)]
        score = (topics * history).sum(-1) + 1e-3 * cand[..., self.popularity]
        score -= cand[..., self.clicked]
        return unbatch(top_k(score, self.slate_size), single)


def ranking_world(
    view: MovieLensData, users: np.ndarray, n_slots: int, task: str = TASK
) -> tuple[RecoWorldVectorEnv, np.ndarray]:
    """A vector env of the MovieLens ``task``'s world whose MovieLens data is ``view`` (the
    card's training view: users, weights, popularity, quality and latent factors from train
    only, fitted the task's way), with new users drawn from the rows ``users`` only.
    Returns (env, users): a life's ``population_row`` p is real user row ``users[p]``."""
    cfg = load_task(task).world_config()
    if view.latent_method != cfg.catalog.movielens.latent:
        raise ValueError(
            f"ranking world: the view's latent factors are {view.latent_method!r}; task "
            f"{task} fits them by {cfg.catalog.movielens.latent!r}"
        )
    env = RecoWorldVectorEnv(num_envs=n_slots, config=cfg, observation=IDS_VIEW)
    env.world.close()
    world = World(cfg, n_slots, catalog=view.catalog, movielens=view)
    sim = world.simulator
    pop = sim.population
    assert pop is not None
    rows = np.asarray(users, dtype=np.int64)
    sim.population = dataclasses.replace(
        pop,
        interest=pop.interest[rows],
        latent=pop.latent[rows],
        novelty_static=pop.novelty_static[rows],
        patience=pop.patience[rows],
        era=None if pop.era is None else pop.era[rows],
    )
    if world.observation_space != env.world.observation_space:
        raise RuntimeError("ranking world: observation space differs from the task's")
    env.world = world
    return env, rows


def real_observations(
    world: World, data: MovieLensData, train: np.ndarray, users: np.ndarray, items: np.ndarray
) -> dict[str, np.ndarray]:
    """The observation ``world`` would show user row ``users[b]`` with candidates
    ``items[b]`` [B, M] (M: the world's candidate count) at the start of a session after its
    train-split ratings, taken as
    clicks in time order: recent films, decayed click-topic history, clicked-before flags,
    clicks per creator; one click per logged step."""
    cat = world.catalog
    b, n = len(users), cat.n_items
    h = world.config.episode.recent_items
    decay = world.config.episode.history_decay
    platform = PlatformState.zeros(b, cat.n_topics, h)
    consumed = np.zeros((b, n), dtype=bool)
    creator_clicks = np.zeros((b, cat.n_creators), dtype=np.float32)
    mask = np.asarray(train, dtype=bool)
    for j, u in enumerate(users):
        rows = np.flatnonzero(mask & (data.user_index == u))
        rows = rows[np.lexsort((rows, data.timestamp[rows]))]
        its = data.item_index[rows]
        m = len(its)
        weights = decay ** np.arange(m - 1, -1, -1, dtype=np.float64)
        platform.topic_history[j] = weights @ cat.topics_normalized[its]
        newest = its[::-1][:h]
        platform.recent_items[j, : len(newest)] = newest
        consumed[j, its] = True
        np.add.at(creator_clicks[j], cat.creator[its], 1.0)
        ema = 1.0 - EMA**m
        platform.ema_click[j] = platform.ema_watch[j] = ema
        platform.total_clicks[j] = platform.total_steps[j] = m
    bits = np.packbits(consumed, axis=1, bitorder="little")
    zeros = np.zeros(b, dtype=np.int32)
    follows = np.zeros((b, cat.n_creators), dtype=bool)
    return world.encoder.encode(np.asarray(items, dtype=np.int64), platform, bits, bits,
                                follows, creator_clicks, zeros, zeros)  # fmt: skip


def warm_linucb(
    rec: LinUCBRecommender, world: World, data: MovieLensData, split: CardSplit, lists: list[Lists]
) -> dict[str, int]:
    """Warm ``rec`` on ``lists`` (calibration users' lists): every candidate shown, a click
    = a held-out film of the user. Returns what it learned from."""
    for lst in lists:
        obs = real_observations(world, data, split.train, lst.users, lst.items)
        slate = np.broadcast_to(np.arange(lst.items.shape[1]), lst.items.shape)
        info = {"click": lst.label.astype(np.float64), "shown": np.ones(lst.items.shape, bool)}
        rec.update(obs, slate, np.zeros(len(slate)), obs, np.zeros(len(slate), bool), info)
    return {"slots": rec.n_updates, "lists": sum(len(x.users) for x in lists)}


# --------------------------------------------------------------------------- rollouts


@dataclasses.dataclass
class Lives:
    """Per-life logs of one policy's simulated lives (pooled over seeds, ordered by seed
    then episode id, so two policies' lives pair up)."""

    ret: np.ndarray  # [L] return
    returns: np.ndarray  # [L] returns to a new session
    session_ends: np.ndarray  # [L]
    clicks: np.ndarray  # [L] clicked items
    steps: np.ndarray  # [L]
    topic_mass: np.ndarray  # [L, T] clicked films' normalised genres, summed
    user: np.ndarray  # [L] real user row of the life
    gaps: np.ndarray  # pooled gap hours before each return


def run_lives(
    env: RecoWorldVectorEnv,
    rec: Recommender,
    users: np.ndarray,
    seeds: list[int],
    n_lives: int,
    max_steps: int = 100_000,
) -> Lives:
    """Run ``rec`` until the first ``n_lives`` lives (by episode id) of each seed have
    ended, as ``policies.rollout.run_policy`` does, logging what ``Lives`` holds."""
    topics = env.world.catalog.topics_normalized
    parts: list[dict[str, np.ndarray]] = []
    gaps: list[np.ndarray] = []
    b = env.num_envs
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        acc = {k: np.zeros(b) for k in ("ret", "returns", "session_ends", "clicks", "steps")}
        mass = np.zeros((b, topics.shape[1]))
        slot_gaps: list[list[float]] = [[] for _ in range(b)]
        done_lives: dict[int, dict[str, Any]] = {}
        for _ in range(max_steps):
            obs, reward, terminated, truncated, info = step_policy(env, rec, obs)
            live = info["_click"] & (info["episode_id"] < n_lives)
            click = np.asarray(info["click"], dtype=bool) & np.asarray(info["shown"], bool)
            acc["ret"] += np.where(live, reward, 0.0)
            acc["steps"] += live
            acc["clicks"] += np.where(live, click.sum(1), 0)
            acc["returns"] += live & np.asarray(info["returned"], bool)
            acc["session_ends"] += live & np.asarray(info["session_end"], bool)
            mass += live[:, None] * np.einsum("bk,bkt->bt", click, topics[info["item_index"]])
            for i in np.flatnonzero(live & np.asarray(info["returned"], bool)):
                slot_gaps[i].append(float(info["gap_hours"][i]))
            ended = terminated | truncated
            state = env.world.state
            assert state is not None
            for i in np.flatnonzero(ended & live):
                done_lives[int(info["episode_id"][i])] = {
                    **{k: float(v[i]) for k, v in acc.items()},
                    "mass": mass[i].copy(),
                    "user": int(users[state.population_row[i]]),
                    "gaps": np.array(slot_gaps[i]),
                }
            for i in np.flatnonzero(ended):
                for v in acc.values():
                    v[i] = 0.0
                mass[i] = 0.0
                slot_gaps[i] = []
            if len(done_lives) >= n_lives:
                break
        else:
            raise RuntimeError(f"only {len(done_lives)} of {n_lives} lives ended")
        for e in sorted(done_lives):
            parts.append(done_lives[e])
            gaps.append(done_lives[e]["gaps"])
    return Lives(
        ret=np.array([p["ret"] for p in parts]),
        returns=np.array([p["returns"] for p in parts]),
        session_ends=np.array([p["session_ends"] for p in parts]),
        clicks=np.array([p["clicks"] for p in parts]),
        steps=np.array([p["steps"] for p in parts]),
        topic_mass=np.array([p["mass"] for p in parts]),
        user=np.array([p["user"] for p in parts], dtype=np.int64),
        gaps=np.concatenate(gaps) if gaps else np.zeros(0),
    )


# --------------------------------------------------------------------------- the section


def build_policies(
    env: RecoWorldVectorEnv,
    names: list[str],
    seed: int,
    ppo: Recommender | None = None,
) -> dict[str, Callable[[], Recommender]]:
    """name -> a factory of a fresh (or stateless, shared) policy for one run. Fitted
    policies (item-kNN, MF) are fitted once, on the world's MovieLens data: the train
    split's liked ratings."""
    world = env.world
    out: dict[str, Callable[[], Recommender]] = {}
    for name in names:
        if name == "random":
            out[name] = lambda: make_baseline("random", world, seed=seed)
        elif name == "genre-match":
            feats = list(world.encoder.candidate_feature_names)
            out[name] = lambda feats=feats: GenreMatchRecommender(world.slate_size, feats)
        elif name == "linucb":
            warm = make_baseline("linucb", world, seed=seed)
            out[name] = lambda warm=warm: copy.deepcopy(warm)
        else:
            fitted = make_baseline(name, world, seed=seed)
            out[name] = lambda fitted=fitted: fitted
    if ppo is not None:
        out["ppo"] = lambda: ppo
    return out


def policy_ranking(
    data: MovieLensData,
    split: CardSplit,
    view: MovieLensData,
    names: list[str],
    seeds: list[int],
    n_lives: int,
    n_slots: int,
    n_lists: int,
    n_boot: int,
    seed: int,
    bins: np.ndarray,
    ppo: Recommender | None = None,
    task: str = TASK,
) -> tuple[dict[str, Any], dict[str, Lives], World]:
    """The ranking section (module docstring): (results, lives per policy, the world of the
    MovieLens ``task``). ``bins``: popularity bins of the card's popularity-matched lists."""
    env, users = ranking_world(view, split.evaluation, n_slots, task)
    try:
        world = env.world
        factories = build_policies(env, names, seed, ppo)
        policies = list(factories)
        # LinUCB warm start: calibration users' 1:3 lists, both negative kinds
        warm_info = None
        if "linucb" in factories:
            rec = factories["linucb"]()
            assert isinstance(rec, LinUCBRecommender)
            warm_lists = [
                discrimination_lists(data.user_index, data.item_index, split, 3, kind, 20,
                                     bins, seed + 1000 * r).take(split.calibration)
                for r in range(n_lists) for kind in ("uniform", "popularity")
            ]  # fmt: skip
            warm_info = warm_linucb(rec, world, data, split, warm_lists)
            factories["linucb"] = lambda rec=rec: copy.deepcopy(rec)
        # offline slate replay on the scored users' lists
        offline: dict[str, np.ndarray] = {}
        for kind in ("uniform", "popularity"):
            per = {p: {"precision": [], "ndcg": []} for p in policies}
            for r in range(n_lists):
                lst = discrimination_lists(data.user_index, data.item_index, split, 3, kind, 20,
                                           bins, seed + 1000 * r)  # fmt: skip
                lst = lst.take(split.evaluation)
                obs = real_observations(world, data, split.train, lst.users, lst.items)
                for p in policies:
                    m = slate_metrics(factories[p]().act(obs), lst.label)
                    per[p]["precision"].append(m["precision"])
                    per[p]["ndcg"].append(m["ndcg"])
            offline[f"precision@3 {kind}"] = np.stack(
                [np.mean(per[p]["precision"], axis=0) for p in policies], axis=1
            )
            if kind == "uniform":
                offline["ndcg@3 uniform"] = np.stack(
                    [np.mean(per[p]["ndcg"], axis=0) for p in policies], axis=1
                )
        # simulated lives, the same seeds for every policy
        lives = {p: run_lives(env, factories[p](), users, seeds, n_lives) for p in policies}
    finally:
        env.close()
    sim_num = {
        "mean_return": (np.stack([lives[p].ret for p in policies], 1), None),
        "return_rate": (
            np.stack([lives[p].returns for p in policies], 1),
            np.stack([lives[p].session_ends for p in policies], 1),
        ),
    }
    sim = {m: resampled_means(num, den, n_boot, seed) for m, (num, den) in sim_num.items()}
    off = {m: resampled_means(v, None, n_boot, seed + 1) for m, v in offline.items()}
    table = {
        p: {
            **{m: _ci(sim[m], j) for m in SIMULATOR_METRICS},
            **{m: _ci(off[m], j) for m in OFFLINE_METRICS},
        }
        for j, p in enumerate(policies)
    }
    pairs = {
        f"{s} vs {o}": agreement(sim[s][0], sim[s][1], off[o][0], off[o][1])
        for s in SIMULATOR_METRICS
        for o in OFFLINE_METRICS
    }
    results = {
        "task": task,
        "policies": policies,
        "per_policy": table,
        "agreement": pairs,
        "primary": f"{PRIMARY[0]} vs {PRIMARY[1]}",
        "simuser": {"spearman": SIMUSER_SPEARMAN, "note": SIMUSER_NOTE},
        "lives": {"seeds": seeds, "per_seed": n_lives, "total": len(lives[policies[0]].ret),
                  "distinct_users": len(np.unique(lives[policies[0]].user))},
        "offline_users": len(split.evaluation),
        "offline_lists_per_user": n_lists,
        "linucb_warm_start": warm_info,
        "fair": FAIRNESS,
    }  # fmt: skip
    return results, lives, world


FAIRNESS = {
    "random": "fair on both sides (no fit).",
    "popular": "fair on both sides: train-split popularity (the world's catalog is the "
    "training view).",
    "knn": "fair: fitted on train-split liked ratings; offline it folds in the user's last "
    "10 train films, in the world its last 10 clicks.",
    "mf": "fair, as item-kNN (implicit ALS, fold-in of recent films).",
    "genre-match": "fair: reads only the observation (genre history, popularity).",
    "linucb": "warmed on the calibration users' held-out lists (never scored); frozen "
    "offline, still learning in the world. Offline it is ranked as that warm start, not as "
    "what it becomes after learning online.",
    "ppo": "trained in a simulator, never on the held-out split; offline it sees a real "
    "user's history in the world's observation format, which it never met in training.",
}


def _ci(pair: tuple[np.ndarray, np.ndarray], j: int) -> dict[str, Any]:
    point, boot = pair
    lo, hi = percentile_interval(boot[:, j])
    return {"mean": float(point[j]), "lo": lo, "hi": hi}


__all__ = [
    "GenreMatchRecommender",
    "Lives",
    "agreement",
    "kendall",
    "policy_ranking",
    "real_observations",
    "resampled_means",
    "slate_metrics",
    "spearman",
    "spearman_null_p",
]
