"""RLIV-UA on RLlib: ``recoworld train --algo rliv_ua`` (lifelong user-author value).

The algorithm is PPO with the slate module whose candidate scores get a user-author value
bonus from multi-task critics (``rliv_ua_module``) learned on SCRI pair transitions
(``scri``). Its parts sit where RLlib's new API stack puts them:

- model: ``RLIVUAModule`` (PPO actor + user-level value head + pair critics);
- data plumbing: ``SCRIConnector``, a learner connector that turns each batch's episodes
  into pair transitions (ASA or true next co-occurrence);
- loss: ``RLIVUATorchLearner`` (PPO's loss + one TD loss per head + auxiliary BCE);
- loop: PPO's ``training_step`` unchanged.

``RLIV_UA_SPEC`` registers it (``recoworld.rl.registry``). ``evaluate_user_author`` runs a
policy on fixed evaluation users and reports what the paper cares about: follows and gifts
per user and per creator, retention and engagement, and the creator exposure Gini.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from recoworld.envs.observation import IDS_VIEW
from recoworld.rl.common.recommender import module_from_checkpoint, module_recommender
from recoworld.rl.registry import AlgorithmSpec
from recoworld.rl.rliv_ua.config import RLIVUASettings
from recoworld.rl.rliv_ua.scri import SIGNALS

if TYPE_CHECKING:
    from recoworld.envs.config import WorldConfig
    from recoworld.rl.config import TrainConfig


def item_creators(world: WorldConfig) -> tuple[np.ndarray, int]:
    """([N] creator of each catalog item, number of creators) of the world's catalog."""
    from recoworld.catalog import load_catalog

    catalog, _ = load_catalog(world.catalog)
    return np.asarray(catalog.creator, dtype=np.int64), int(catalog.n_creators)


def build_rliv_ua_config(world: WorldConfig, cfg: TrainConfig) -> Any:
    """PPO's config for the slate module (``train.build_algorithm_config``) with RLIV-UA's
    module, learner and learner connector."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from recoworld.rl.ppo.algorithm import build_algorithm_config
    from recoworld.rl.rliv_ua.module import RLIVUAModule, RLIVUATorchLearner
    from recoworld.rl.rliv_ua.scri import make_scri_connector

    s = cfg.rliv_ua
    bad = {k: g for k, g in s.gammas.items() if not 0.0 <= g <= 1.0}
    if bad:
        raise ValueError(f"rliv_ua.gammas must lie in [0, 1], got {bad}")
    creators, n_creators = item_creators(world)
    model_config = {
        **cfg.model.module_config(cfg.ppo.gamma),  # the same slate module options as PPO's
        "item_creator": creators.tolist(),
        "n_creators": n_creators,
        "critic_hidden": s.critic_hidden,
        "author_dim": s.author_dim,
        "head_weights": dict(s.head_weights),
        "critic_scale": s.critic_scale,
        "critic_norm": s.critic_norm,
        "conditioning": s.conditioning,
    }
    connector = functools.partial(make_scri_connector, item_creator=creators, asa=s.asa)
    # the critics read item ids (authors) and the counters: the features+ids view
    world = world.model_copy(update={"observation": IDS_VIEW})
    return (
        build_algorithm_config(world, cfg)
        .learners(
            learner_class=RLIVUATorchLearner,
            learner_connector=connector,
            learner_config_dict={"rliv_ua": s.model_dump(mode="json")},
        )
        .rl_module(
            rl_module_spec=RLModuleSpec(module_class=RLIVUAModule, model_config=model_config)
        )
    )


RLIV_UA_SPEC = AlgorithmSpec(
    build_config=build_rliv_ua_config,
    recommender=module_recommender,  # the RLIV-UA module is a slate module
    from_checkpoint=module_from_checkpoint,
    settings=RLIVUASettings,
)


# --------------------------------------------------------------------------- evaluation
USER_AUTHOR_METRICS = (
    "follows_per_user", "gifts_per_user", "follows_per_creator", "gifts_per_creator",
    "creators_followed_share", "return_rate", "sessions_per_user", "session_depth",
    "click_rate", "mean_return", "exposure_gini", "scri_pair_transitions_per_user",
    "scri_true_next_share",
)  # fmt: skip


def user_author_metrics(
    table: Any, item_creator: np.ndarray, n_creators: int, lives: int
) -> dict[str, float]:
    """User-author metrics of a trajectory log (``recoworld.envs.trajectory``) restricted to the
    first ``lives`` user lives (episode ids below it): follows and gifts per user life and
    per creator (over all creators of the catalog), the share of creators followed by at
    least one user, creator exposure Gini (shown slots per creator), and the SCRI sample
    density (pair transitions per user; share of them with a true next co-occurrence)."""
    import pyarrow.compute as pc

    from recoworld.metrics import gini
    from recoworld.rl.rliv_ua.scri import scri_from_trajectories

    table = table.filter(pc.less(table.column("episode_id"), lives))
    items = np.stack(table.column("item_index").to_numpy(zero_copy_only=False)).astype(np.int64)
    shown = np.stack(table.column("shown").to_numpy(zero_copy_only=False)).astype(bool)
    creators = np.asarray(item_creator)[items]
    per = {s: np.stack(table.column(s).to_numpy(zero_copy_only=False)).astype(bool) & shown
           for s in ("follow", "gift", "click")}  # fmt: skip
    exposure = np.bincount(creators[shown], minlength=n_creators)
    follows_c = np.bincount(creators[per["follow"]], minlength=n_creators)
    gifts_c = np.bincount(creators[per["gift"]], minlength=n_creators)
    steps = len(table)
    session_end = table.column("session_end").to_numpy()
    returned = table.column("returned").to_numpy()
    episode = table.column("episode_id").to_numpy()
    session = table.column("session").to_numpy()
    n_users = len(np.unique(episode))
    sessions = {int(e): int(s) + 1 for e, s in zip(episode, session, strict=True)}
    asa = scri_from_trajectories(table, item_creator, asa=True)
    true = scri_from_trajectories(table, item_creator, asa=False)
    return {
        "follows_per_user": float(per["follow"].sum() / n_users),
        "gifts_per_user": float(per["gift"].sum() / n_users),
        "follows_per_creator": float(follows_c.sum() / n_creators),
        "gifts_per_creator": float(gifts_c.sum() / n_creators),
        "creators_followed_share": float((follows_c > 0).mean()),
        "return_rate": float(returned.sum() / max(session_end.sum(), 1)),
        "sessions_per_user": float(np.mean(list(sessions.values()))),
        "session_depth": float(steps / max(session_end.sum(), 1)),
        "click_rate": float(per["click"].sum() / max(steps, 1)),
        "mean_return": float(table.column("reward").to_numpy().sum() / n_users),
        "exposure_gini": float(gini(exposure.astype(np.float64))),
        "scri_pair_transitions_per_user": float(len(asa["t"]) / n_users),
        "scri_true_next_share": float((true["next_slot"] >= 0).sum() / max(len(asa["t"]), 1)),
    }


def evaluate_user_author(
    world: WorldConfig, policy: Any, users: int, lives: int, seed: int
) -> dict[str, float]:
    """Run ``policy`` (a baseline name or a ``Recommender``) until the first ``lives`` user
    lives have ended (``recoworld.policies.rollout.run_policy``, evaluation seed ``seed``: common
    random numbers across policies) and compute ``user_author_metrics`` from its log."""
    from recoworld.envs.trajectory import TrajectoryLog
    from recoworld.policies.rollout import SimulateConfig, run_policy

    creators, n_creators = item_creators(world)
    log = TrajectoryLog()
    run_policy(world, policy, SimulateConfig(users=users, episodes=lives, seed=seed), log)
    return user_author_metrics(log.to_table(), creators, n_creators, lives)


__all__ = [
    "RLIV_UA_SPEC",
    "SIGNALS",
    "USER_AUTHOR_METRICS",
    "build_rliv_ua_config",
    "evaluate_user_author",
    "item_creators",
    "user_author_metrics",
]
