"""Multi-agent PPO on the population env: one shared slate policy serves every user.

``PopulationEnv`` (``recoworld.envs.population``, a PettingZoo ``ParallelEnv``) makes each
user an agent with the spaces of ``RecoWorld-v0``. Here it becomes an RLlib
``MultiAgentEnv`` through RLlib's ``ParallelPettingZooEnv`` wrapper
(``make_population_rllib_env``, registered as ``"recoworld_population"``), and
``build_population_ppo_config`` maps every agent to one ``SlateScoringModule`` ("shared"),
so all users' steps train the same network (parameter sharing). The PPO hyper-parameters
and the module come from ``recoworld.rl.ppo.algorithm.build_algorithm_config``: the population
config only swaps the environment, the env runner settings and the module spec.

What RLlib's plain ``ParallelPettingZooEnv`` (Ray 2.60) gets wrong for a population whose
users join and leave, and ``PopulationRLlibEnv`` fixes:

- it takes ``agents``/``possible_agents`` and the spaces from the agents present after one
  ``reset()`` only: users who join later have no space (``get_observation_space`` falls
  back to the whole Dict of agents) and ``check_multiagent_environments`` rejects the
  step that brings them ("agent_ids that are not the names of the agents in the env").
  Here ``possible_agents`` are all ``capacity`` slots, with per-agent ``observation_spaces``
  and ``action_spaces``, and ``agents`` are the agents in the last returned dicts (those
  that acted, including the ones that just left with their last observation, and those
  that joined);
- it sets ``__all__`` to ``all(terminateds.values())``, while RLlib's ``MultiAgentEpisode``
  ends an episode as soon as every agent it has seen is done (some terminated, some
  truncated, or the last users leaving in the step a new one joins). The env would go on
  while the env runner starts a new episode on it and then sends actions for users who
  are gone. Here the episode ends (``__all__``) exactly when none of the users present
  before a step is present after it: ``truncateds["__all__"]`` when all of them were
  truncated (``max_cycles``, last allowed session), ``terminateds["__all__"]`` otherwise;
  users joining in that very step are dropped (the population is reset next);
- ``render()`` passes ``render_mode`` to PettingZoo's argument-less ``render``.

Metrics: RLlib's ``episode_return_mean`` is the population's total per (RLlib) episode;
``agent_episode_returns_mean`` is per agent ID, and as a slot holds one user per episode
(users never come back), its mean over slots is the mean return of a user's life,
reported as ``user_return_mean``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

from recoworld.envs.population.config import PopulationConfig
from recoworld.rl.common.config import ModelSettings
from recoworld.rl.common.recommender import SHARED_MODULE_SUBDIR
from recoworld.rl.config import TrainConfig
from recoworld.rl.ppo.config import PPOSettings
from recoworld.rl.runtime import ensure_ray

ENV_NAME = "recoworld_population"
SHARED = "shared"
MODULE_SUBDIR = SHARED_MODULE_SUBDIR  # where the shared module sits in a checkpoint


class PopulationRLlibEnv(ParallelPettingZooEnv):
    """``ParallelPettingZooEnv`` for agents that join and leave (see module docstring)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)  # resets ``env`` once
        self.possible_agents = list(env.possible_agents)
        self._agent_ids = set(self.possible_agents)
        self.observation_spaces = {a: env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: env.action_space(a) for a in self.possible_agents}
        # the old-API-stack Dict spaces, over every possible agent as well
        self.observation_space = gym.spaces.Dict(self.observation_spaces)
        self.action_space = gym.spaces.Dict(self.action_spaces)
        self.agents = list(env.agents)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, infos = super().reset(seed=seed, options=options)
        self.agents = list(obs)
        return obs, infos

    def step(self, action_dict: dict[str, Any]):
        before = list(self.par_env.agents)
        obs, rewards, terms, truncs, infos = self.par_env.step(action_dict)
        present = set(self.par_env.agents)
        over = not any(a in present for a in before)
        if over:
            keep = set(before)
            obs, rewards, terms, truncs, infos = (
                {a: v for a, v in d.items() if a in keep}
                for d in (obs, rewards, terms, truncs, infos)
            )
        truncated_all = over and all(truncs.get(a, False) for a in before)
        terms["__all__"] = over and not truncated_all
        truncs["__all__"] = truncated_all
        self.agents = list(obs)
        return obs, rewards, terms, truncs, infos

    def render(self) -> Any:
        return self.par_env.render()


def population_env_runner_cls() -> type:
    """RLlib's ``MultiAgentEnvRunner`` with one fix for users who come and go: counting steps
    per agent (``count_steps_by="agent_steps"``), PPO's sampling loop adds up the env
    runner's per-agent ``num_agent_steps_sampled`` counters with ``int()``, and in Ray 2.60
    the counter of an agent that took no step since the last reduce (a user who left) is
    NaN, so ``int()`` raises. ``get_metrics`` here drops those empty counters (the agent
    sampled nothing; dropping it is exact)."""
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
    from ray.rllib.utils.metrics import NUM_AGENT_STEPS_SAMPLED

    class PopulationEnvRunner(MultiAgentEnvRunner):
        def get_metrics(self) -> Any:
            metrics = super().get_metrics()
            per_agent = metrics.get(NUM_AGENT_STEPS_SAMPLED)
            if isinstance(per_agent, dict):
                metrics[NUM_AGENT_STEPS_SAMPLED] = {
                    aid: stat for aid, stat in per_agent.items() if np.isfinite(float(stat))
                }
            return metrics

    return PopulationEnvRunner


def make_population_rllib_env(env_config: dict[str, Any] | None = None) -> PopulationRLlibEnv:
    """The population (``env_config``: a ``PopulationConfig`` mapping; RLlib passes an
    ``EnvContext``, a dict) as an RLlib ``MultiAgentEnv``."""
    from recoworld.envs.population.population import parallel_env

    config = PopulationConfig.model_validate(dict(env_config or {}))
    return PopulationRLlibEnv(parallel_env(config=config))


def register_population_env(name: str = ENV_NAME) -> str:
    """Register ``make_population_rllib_env`` with Ray Tune under ``name``; returns it."""
    from ray.tune.registry import register_env

    register_env(name, make_population_rllib_env)
    return name


def shared_policy(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    """The policy mapping: every user is served by the one shared module."""
    return SHARED


def build_population_ppo_config(
    pop_config: PopulationConfig, ppo: PPOSettings, model: ModelSettings, seed: int
) -> Any:
    """Multi-agent ``PPOConfig``: the population env, every agent mapped to one shared
    ``SlateScoringModule``, ``num_env_runners=0`` (sampling in the driver), torch.

    The PPO settings and the module class/model config come from ``build_algorithm_config``
    (the single-agent config); the spaces are inferred by RLlib from the env's per-agent
    spaces (all agents share RecoWorld-v0's). Steps are counted per agent
    (``count_steps_by="agent_steps"``): ``ppo.train_batch_size`` is user steps per
    iteration, the unit of single-user PPO (where an env step is one user's step), so a
    population of 256 users samples about ``train_batch_size / 256`` population steps per
    iteration and budgets compare across the single-user and population tasks."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from recoworld.rl.ppo.algorithm import build_algorithm_config

    single = build_algorithm_config(
        pop_config.world, TrainConfig(seed=seed, ppo=ppo, model=model, num_envs=1)
    )
    # the module spec build_algorithm_config set (``rl_module_spec``, the public property,
    # would merge in PPO's default catalog)
    module_spec = single._rl_module_spec
    if not isinstance(module_spec, RLModuleSpec):
        raise TypeError(f"build_algorithm_config set {module_spec!r}, not an RLModuleSpec")
    single.env_config = {}  # ``environment(env_config=...)`` merges into the old mapping
    return (
        single.environment(register_population_env(), env_config=pop_config.model_dump(mode="json"))
        .env_runners(
            env_runner_cls=population_env_runner_cls(),
            num_env_runners=0,
            num_envs_per_env_runner=1,
            gym_env_vectorize_mode="sync",  # RLlib vectorizes MultiAgentEnvs only this way
        )
        .multi_agent(
            policies={SHARED},
            policy_mapping_fn=shared_policy,
            policies_to_train=[SHARED],
            count_steps_by="agent_steps",  # train_batch_size counts user steps
        )
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={SHARED: module_spec}))
    )


def _num(value: Any) -> float | None:
    """A finite number as float; None otherwise (RLlib reports NaN before the first
    episode ends); a per-agent dict is summed."""
    if isinstance(value, dict):
        value = sum(v for v in map(_num, value.values()) if v is not None)
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value) if np.isfinite(value) else None
    return None


def summarize_result(result: dict[str, Any]) -> dict[str, Any]:
    """The main scalars of one ``Algorithm.train`` result (None where RLlib has no value
    yet, e.g. before the first episode ended)."""
    runners = result.get("env_runners", {}) or {}
    learner = (result.get("learners", {}) or {}).get(SHARED, {}) or {}
    per_agent = runners.get("agent_episode_returns_mean") or {}
    values = [v for v in (_num(x) for x in per_agent.values()) if v is not None]
    return {
        "iteration": int(result.get("training_iteration", 0)),
        "user_return_mean": float(np.mean(values)) if values else None,
        "episode_return_mean": _num(runners.get("episode_return_mean")),
        "episode_len_mean": _num(runners.get("episode_len_mean")),
        "num_episodes_lifetime": _num(runners.get("num_episodes_lifetime")),
        "num_env_steps_sampled_lifetime": _num(runners.get("num_env_steps_sampled_lifetime")),
        "num_agent_steps_sampled_lifetime": _num(runners.get("num_agent_steps_sampled_lifetime")),
        "policy_loss": _num(learner.get("policy_loss")),
        "vf_loss": _num(learner.get("vf_loss")),
        "entropy": _num(learner.get("entropy")),
    }


def train_population(
    pop_config: PopulationConfig,
    iterations: int,
    out_dir: str | Path,
    seed: int = 0,
    ppo: PPOSettings | None = None,
    model: ModelSettings | None = None,
    num_cpus: int = 2,
    torch_threads: int = 1,
    show_progress: bool = True,
    on_iteration: Any = None,
) -> dict[str, Any]:
    """Train the shared policy for ``iterations`` PPO iterations.

    Writes ``result.json`` (one RLlib result dict per line) and ``checkpoint/`` (absolute
    path; the module alone is ``checkpoint/learner_group/learner/rl_module/shared``) under
    ``out_dir``. ``on_iteration(summary)`` is called after each iteration. Returns the last
    ``summarize_result`` plus ``checkpoint`` (its absolute path)."""
    import torch

    from recoworld.core.progress import progress_bar
    from recoworld.rl.runtime import save_checkpoint

    torch.set_num_threads(torch_threads)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ensure_ray(num_cpus)
    config = build_population_ppo_config(
        pop_config, ppo or PPOSettings(), model or ModelSettings(), seed
    )
    algo = config.build_algo()
    summary: dict[str, Any] = {}
    try:
        with (
            progress_bar(show_progress) as progress,
            (out / "result.json").open("a") as results,
        ):
            task = progress.add_task("population PPO", total=iterations)
            for _ in range(iterations):
                result = algo.train()
                results.write(json.dumps(result, default=str) + "\n")
                results.flush()
                summary = summarize_result(result)
                if on_iteration is not None:
                    on_iteration(summary)
                ret = summary["user_return_mean"]
                shown = "n/a" if ret is None else f"{ret:.2f}"
                text = f"iter {summary['iteration']}: user return {shown}"
                progress.update(task, advance=1, description=text)
            summary["checkpoint"] = str(save_checkpoint(algo, out / "checkpoint"))
    finally:
        algo.stop()
    return summary
