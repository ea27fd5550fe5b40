"""Hierarchical novelty-seeking RL on RLlib (after "Hierarchical Reinforcement Learning for
Modeling User Novelty-Seeking Intent in Recommender Systems", 2023).

Users' appetite for novelty has a static level and a session level drawn around it
(``recoworld.simulators.parametric.model``; both hidden). The policy here has two levels:

* **high** acts at every session start (and every ``goal_every`` steps when set): from the
  user's long-term history and session context — the observation's ``user``, ``history``
  and ``instruction`` plus the novelty-response features of ``recoworld.envs.novelty`` —
  it picks a novelty goal g, one of ``goal_levels`` values evenly spaced in
  [``goal_min``, ``goal_max``];
* **low** acts at every request: the slate RLModule (``slate_module.SlateScoringModule``)
  scores candidates from [user context; novelty features; one-hot g] and each candidate's
  novelty for the user (``candidate_novelty``), and samples a Plackett-Luce slate.

Rewards (λ = ``novelty_weight``, ``diversity_weight``; nov and ILD from
``recoworld.envs.novelty``, i.e. the evaluation metrics' own functions)::

    extrinsic  r = env reward (engagement, leave, return) + λ_nov nov(slate) + λ_div ILD(slate)
    low level  r - goal_weight * |nov(slate) - g|       (do what the goal asks)
    high level  sum of r over the goal's span (+1 when the user came back, high_reward='return')

``HierarchicalNoveltyEnv`` is the turn-based RLlib ``MultiAgentEnv`` (agents ``"high"`` and
``"low"``, one user; RLlib vectorises it with ``num_envs_per_env_runner``): after a reset
or a session boundary only ``high`` observes; its action sets g and ``low`` observes next.
A reward is handed to an agent together with its next observation (the sum since it last
acted), so no reward is left hanging. Both levels are trained jointly by PPO, each with its
own module (``policy_mapping_fn``: agent id = module id).

For comparison, ``NoveltyEnv`` is the flat single-agent env with the same observation
(without g) and either the same extrinsic reward (``mode='flat'``) or the env's engagement
reward alone (``mode='flat_engagement'``); ``TrainConfig.hrl.mode`` picks which one
``recoworld train --algo hrl`` trains.

``NoveltyRecommender`` runs any of the three as a batched ``Recommender`` in any world (the
hybrid and LLM worlds included): it keeps ``NoveltySignals`` for its B users from the
steps' infos (``update``), picks goals at session starts and fills the same observation
keys as the envs, with the same functions (``augment``, ``high_observation``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from recoworld.envs.config import WorldConfig
from recoworld.envs.novelty import FEATURES, NoveltySignals
from recoworld.envs.recoworld_env import build_world
from recoworld.envs.world import World
from recoworld.policies.base import batched, unbatch
from recoworld.rl.hrl.config import HRLSettings
from recoworld.rl.registry import AlgorithmSpec

HIGH, LOW = "high", "low"
NOVELTY_KEY, CAND_NOVELTY_KEY, GOAL_KEY = "novelty", "candidate_novelty", "goal"
HIGH_KEYS = ("user", "history", "instruction")


# ---------------------------------------------------------------------- observations
def goal_values(settings: HRLSettings) -> np.ndarray:
    """[L] the novelty goals the high level chooses from."""
    return np.linspace(settings.goal_min, settings.goal_max, settings.goal_levels)


def augmented_space(base: spaces.Dict, goal_levels: int | None) -> spaces.Dict:
    """``base`` (RecoWorld's single observation space) plus the novelty keys (and the goal
    one-hot when ``goal_levels``)."""
    m = base["candidate_ids"].shape[0]
    extra: dict[str, spaces.Space] = {
        NOVELTY_KEY: spaces.Box(0.0, 1.0, (len(FEATURES),), np.float32),
        CAND_NOVELTY_KEY: spaces.Box(0.0, 1.0, (m,), np.float32),
    }
    if goal_levels:
        extra[GOAL_KEY] = spaces.Box(0.0, 1.0, (goal_levels,), np.float32)
    return spaces.Dict({**base.spaces, **extra})


def high_space(base: spaces.Dict) -> spaces.Box:
    """The high level's flat observation: ``HIGH_KEYS`` of the observation + novelty."""
    dim = sum(int(base[k].shape[0]) for k in HIGH_KEYS) + len(FEATURES)
    return spaces.Box(-1.0, 1.0, (dim,), np.float32)


def augment(
    obs: dict[str, np.ndarray], signals: NoveltySignals, goal: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Batched observation + ``novelty`` [B, F], ``candidate_novelty`` [B, M] and (when
    ``goal`` [B, L] one-hot is given) ``goal``."""
    out = dict(obs)
    out[NOVELTY_KEY] = signals.features()
    out[CAND_NOVELTY_KEY] = signals.item_novelty(obs["candidate_ids"], obs["history"]).astype(
        np.float32
    )
    if goal is not None:
        out[GOAL_KEY] = goal.astype(np.float32)
    return out


def high_observation(obs: dict[str, np.ndarray], signals: NoveltySignals) -> np.ndarray:
    """[B, D] float32: ``HIGH_KEYS`` of the batched observation and the novelty features."""
    parts = [np.asarray(obs[k], np.float32) for k in HIGH_KEYS] + [signals.features()]
    return np.clip(np.concatenate(parts, axis=1), -1.0, 1.0)


def slate_measures(
    signals: NoveltySignals, obs: dict[str, np.ndarray], info: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """([B] slate novelty for the user, [B] topic ILD) of the step that produced ``info``
    from the pre-step observation ``obs``; also records the step in ``signals``."""
    items, shown = info["item_index"], np.asarray(info["shown"], bool)
    nov = signals.record(items, obs["history"], shown, info["click"])
    return nov, signals.slate_diversity(items, shown)


def _world(env_config: dict[str, Any]) -> tuple[World, HRLSettings]:
    world_cfg = WorldConfig.model_validate(env_config.get("config") or {})
    settings = HRLSettings.model_validate(env_config.get("hrl") or {})
    world = build_world(1, None, None, None, world_cfg, None, [])
    return world, settings


def _row(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v[0] for k, v in batch.items()}


def _session_start(obs: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(obs["counters"])[:, 1] == 0


# ---------------------------------------------------------------------- environments
class _NoveltyWorld:
    """One user's world (B = 1) with novelty signals and the extrinsic reward."""

    def __init__(self, env_config: dict[str, Any]) -> None:
        self.world, self.settings = _world(env_config or {})
        self.signals = NoveltySignals(self.world.catalog, 1)
        self.base_space: spaces.Dict = self.world.observation_space
        self.obs: dict[str, np.ndarray] = {}

    def reset(self, seed: int | None) -> dict[str, np.ndarray]:
        self.obs, _ = self.world.reset(seed=seed)
        self.signals.reset()
        return self.obs

    def step(self, slate: np.ndarray) -> tuple[float, float, float, bool, bool, dict[str, Any]]:
        """(env reward, extrinsic reward, slate novelty, terminated, truncated, info)."""
        prev = self.obs
        self.obs, reward, terminated, truncated, info = self.world.step(
            np.asarray(slate, dtype=np.int64).reshape(1, -1)
        )
        nov, ild = slate_measures(self.signals, prev, info)
        s = self.settings
        extrinsic = float(reward[0] + s.novelty_weight * nov[0] + s.diversity_weight * ild[0])
        if _session_start(self.obs)[0]:
            self.signals.start_session(slice(None))
        return float(reward[0]), extrinsic, float(nov[0]), bool(terminated[0]), \
            bool(truncated[0]), info  # fmt: skip


class NoveltyEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """The flat comparison: RecoWorld + novelty observation keys, one agent (see module
    docstring). ``env_config``: ``{"config": WorldConfig dict, "hrl": HRLSettings dict}``."""

    metadata = {"render_modes": []}

    def __init__(self, env_config: dict[str, Any] | None = None) -> None:
        self.core = _NoveltyWorld(env_config or {})
        if self.core.settings.mode == "hierarchical":
            raise ValueError("NoveltyEnv is the flat env: hrl.mode must be 'flat' or "
                             "'flat_engagement' (use HierarchicalNoveltyEnv)")  # fmt: skip
        self.observation_space = augmented_space(self.core.base_space, None)
        self.action_space = self.core.world.action_space

    def _obs(self) -> dict[str, np.ndarray]:
        return _row(augment(self.core.obs, self.core.signals, None))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.core.reset(seed)
        return self._obs(), {}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        reward, extrinsic, nov, terminated, truncated, _ = self.core.step(action)
        r = extrinsic if self.core.settings.mode == "flat" else reward
        return self._obs(), r, terminated, truncated, {"slate_novelty": nov}


class HierarchicalNoveltyEnv(MultiAgentEnv):
    """Turn-based two-level env for RLlib (see module docstring). ``env_config``:
    ``{"config": WorldConfig dict, "hrl": HRLSettings dict}``."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.core = _NoveltyWorld(config or {})
        s = self.core.settings
        self.goals = goal_values(s)
        self.agents = self.possible_agents = [HIGH, LOW]
        self.observation_spaces = {
            HIGH: high_space(self.core.base_space),
            LOW: augmented_space(self.core.base_space, s.goal_levels),
        }
        self.action_spaces = {
            HIGH: spaces.Discrete(s.goal_levels),
            LOW: self.core.world.action_space,
        }
        self.goal = np.zeros((1, s.goal_levels), np.float32)
        self.since_goal = 0
        self.pending = {HIGH: 0.0, LOW: 0.0}

    def _high_obs(self) -> np.ndarray:
        return high_observation(self.core.obs, self.core.signals)[0]

    def _low_obs(self) -> dict[str, np.ndarray]:
        return _row(augment(self.core.obs, self.core.signals, self.goal))

    def _hand(self, agents: list[str]) -> dict[str, float]:
        out = {a: self.pending[a] for a in agents}
        for a in agents:
            self.pending[a] = 0.0
        return out

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        self.core.reset(seed)
        self.pending = {HIGH: 0.0, LOW: 0.0}
        self.since_goal = 0
        return {HIGH: self._high_obs()}, {}

    def step(self, action_dict: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        done = {"__all__": False}
        if HIGH in action_dict:
            g = int(action_dict[HIGH])
            self.goal[:] = 0.0
            self.goal[0, g] = 1.0
            self.since_goal = 0
            return {LOW: self._low_obs()}, self._hand([LOW]), done, dict(done), {}
        if LOW not in action_dict:
            raise ValueError(f"HierarchicalNoveltyEnv.step: expected a '{HIGH}' or '{LOW}' "
                             f"action, got {sorted(action_dict)}")  # fmt: skip
        s = self.core.settings
        goal = float(self.goals[int(np.argmax(self.goal[0]))])
        _, extrinsic, nov, terminated, truncated, info = self.core.step(action_dict[LOW])
        self.since_goal += 1
        self.pending[LOW] += extrinsic - s.goal_weight * abs(nov - goal)
        self.pending[HIGH] += extrinsic + (
            1.0 if s.high_reward == "return" and bool(info["returned"][0]) else 0.0
        )
        infos = {LOW: {"slate_novelty": nov, "goal": goal}}
        if terminated or truncated:
            obs = {HIGH: self._high_obs(), LOW: self._low_obs()}
            return obs, self._hand([HIGH, LOW]), {"__all__": terminated}, \
                {"__all__": truncated}, infos  # fmt: skip
        repick = _session_start(self.core.obs)[0] or (
            s.goal_every > 0 and self.since_goal >= s.goal_every
        )
        if repick:
            return {HIGH: self._high_obs()}, self._hand([HIGH]), done, dict(done), infos
        return {LOW: self._low_obs()}, self._hand([LOW]), done, dict(done), infos


# ---------------------------------------------------------------------- RLlib configs
def _ppo_base(world: WorldConfig, cfg: Any, env: type, vectorize: str) -> Any:
    from recoworld.rl.ppo.algorithm import build_algorithm_config

    env_config = {"config": world.model_dump(mode="json"), "hrl": cfg.hrl.model_dump()}
    return (
        build_algorithm_config(world, cfg)
        .environment(env, env_config=env_config)
        .env_runners(gym_env_vectorize_mode=vectorize)
    )


def build_hrl_config(world: WorldConfig, cfg: Any) -> Any:
    """PPO for ``cfg.hrl.mode``: two modules on ``HierarchicalNoveltyEnv``, or the slate
    module on the flat ``NoveltyEnv``."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from recoworld.rl.common.slate_module import SlateScoringModule

    model = cfg.model.module_config(cfg.ppo.gamma)  # the same slate module options as PPO's
    if cfg.hrl.mode != "hierarchical":
        return _ppo_base(world, cfg, NoveltyEnv, "sync")
    high = cfg.hrl.high_hidden
    return (
        _ppo_base(world, cfg, HierarchicalNoveltyEnv, "sync")
        .multi_agent(
            policies={HIGH, LOW},
            policy_mapping_fn=lambda agent_id, episode, **kw: agent_id,
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                rl_module_specs={
                    HIGH: RLModuleSpec(
                        model_config={"fcnet_hiddens": high, "head_fcnet_hiddens": []}
                    ),
                    LOW: RLModuleSpec(module_class=SlateScoringModule, model_config=model),
                }
            )
        )
    )


# ---------------------------------------------------------------------- as a Recommender
class NoveltyRecommender:
    """A trained flat or hierarchical novelty policy as a batched ``OnlineRecommender``
    (see module docstring). ``high`` is None for the flat policies."""

    def __init__(
        self, low: Any, high: Any | None, settings: HRLSettings, catalog: Any, name: str = "hrl"
    ) -> None:
        self.low, self.high, self.settings, self.name = low, high, settings, name
        self.catalog = catalog
        self.signals: NoveltySignals | None = None
        self.goal: np.ndarray | None = None
        self.since_goal: np.ndarray | None = None
        self.last_goal: np.ndarray | None = None  # [B] goal values (analysis)

    def _ensure(self, b: int) -> NoveltySignals:
        if self.signals is None or self.signals.stats.shape[0] != b:
            self.signals = NoveltySignals(self.catalog, b)
            self.goal = np.zeros((b, self.settings.goal_levels), np.float32)
            self.since_goal = np.zeros(b, np.int64)
            self.last_goal = np.zeros(b)
        return self.signals

    def _pick_goals(self, obs: dict[str, np.ndarray], rows: np.ndarray) -> None:
        import torch
        from ray.rllib.core.columns import Columns

        assert self.signals is not None and self.goal is not None
        x = torch.as_tensor(high_observation(obs, self.signals)[rows])
        with torch.no_grad():
            logits = self.high.forward_inference({Columns.OBS: x})[Columns.ACTION_DIST_INPUTS]
        g = logits.argmax(-1).numpy()
        self.goal[rows] = 0.0
        self.goal[rows, g] = 1.0
        self.last_goal[rows] = goal_values(self.settings)[g]  # type: ignore[index]
        self.since_goal[rows] = 0  # type: ignore[index]

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        obs, single = batched(observation)
        signals = self._ensure(len(obs["candidate_ids"]))
        counters = np.asarray(obs["counters"])
        signals.reset(counters[:, 2] == 0)  # a new user (first step of a life)
        fresh = counters[:, 1] == 0
        signals.start_session(fresh)
        goal = None
        if self.high is not None:
            k = self.settings.goal_every
            due = fresh | ((self.since_goal >= k) if k > 0 else False)  # type: ignore[operator]
            rows = np.flatnonzero(due)
            if rows.size:
                self._pick_goals(obs, rows)
            goal = self.goal
        aug = augment(obs, signals, goal)
        with torch.no_grad():
            scores = self.low.scores({k: torch.as_tensor(np.asarray(v)) for k, v in aug.items()})
        slate = torch.topk(scores, self.low.slate_size, dim=-1).indices.numpy()
        return unbatch(slate, single)

    def update(
        self,
        observation: dict[str, np.ndarray],
        slate: np.ndarray,
        reward: np.ndarray,
        next_observation: dict[str, np.ndarray],
        done: np.ndarray,
        info: dict[str, Any],
    ) -> None:
        obs, _ = batched(observation)
        signals = self._ensure(len(obs["candidate_ids"]))
        stepped = np.asarray(info.get("_click", np.ones(len(obs["candidate_ids"]), bool)))
        if stepped.ndim > 1:
            stepped = stepped.any(axis=1)
        items = np.asarray(info["item_index"]).reshape(len(obs["candidate_ids"]), -1)
        shown = np.asarray(info["shown"], bool).reshape(items.shape)
        click = np.asarray(info["click"]).reshape(items.shape)
        signals.record(items, obs["history"], shown, click, rows=stepped)
        if self.since_goal is not None:
            self.since_goal += stepped


def _catalog_of_run(path: Path) -> Any:
    from recoworld.catalog import load_catalog
    from recoworld.rl.registry import run_config

    config = run_config(path)
    if config is None:
        raise FileNotFoundError(f"{path}: no manifest.json in its run directory (needed for "
                                "the catalog and the hrl settings)")  # fmt: skip
    world = WorldConfig.model_validate(config.get("world") or {})
    return load_catalog(world.catalog)[0], config.get("train") or {}


def recommender_from_algo(algo: Any, name: str) -> NoveltyRecommender:
    """The greedy policy of a running HRL algorithm (for the evaluation curve)."""
    env_config = algo.config.env_config
    world = WorldConfig.model_validate(env_config["config"])
    settings = HRLSettings.model_validate(env_config["hrl"])
    from recoworld.catalog import load_catalog

    catalog = load_catalog(world.catalog)[0]
    if settings.mode == "hierarchical":
        return NoveltyRecommender(algo.get_module(LOW), algo.get_module(HIGH), settings,
                                  catalog, name)  # fmt: skip
    return NoveltyRecommender(algo.get_module(), None, settings, catalog, name)


def recommender_from_checkpoint(path: Path, name: str) -> NoveltyRecommender:
    """A trained policy from ``recoworld train --algo hrl`` output (no Ray runtime)."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = Path(path).resolve()
    catalog, train = _catalog_of_run(path)
    settings = HRLSettings.model_validate(train.get("hrl") or {})
    modules = path / "learner_group" / "learner" / "rl_module"
    if settings.mode == "hierarchical":
        low = RLModule.from_checkpoint(modules / LOW)
        high = RLModule.from_checkpoint(modules / HIGH)
        high.eval()
    else:
        low, high = RLModule.from_checkpoint(modules / "default_policy"), None
    low.eval()
    return NoveltyRecommender(low, high, settings, catalog, name)


HRL_SPEC = AlgorithmSpec(
    build_config=build_hrl_config,
    recommender=recommender_from_algo,
    from_checkpoint=recommender_from_checkpoint,
    settings=HRLSettings,
)
