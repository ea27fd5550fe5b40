"""Slate Thompson sampling as an RLlib algorithm (``recoworld train --algo slate_ts``).

The Bayesian GRU slate model of Eide et al. (2021) (``recoworld.rl.slate_ts.model``) put
in RLlib's places (new API stack):

- **RLModule** ``SlateTSModule``: holds the model (its variational parameters).
  ``_forward_exploration`` picks slates by Thompson sampling — ``in_slate`` (one posterior
  draw per slot, interleaved rankings), ``plain`` (one draw per slate) or ``greedy`` (the
  posterior mean), per ``SlateTSSettings.exploration`` — and returns ``actions`` (k
  distinct candidate positions) with ``action_logp`` = 0 (a Thompson slate has no tractable
  probability; nothing here needs it). ``_forward_inference`` is always greedy.
  ``_forward_train`` computes -ELBO / data_size on a minibatch of logged slates.
- **Learner** ``SlateTSLearner``: the loss is the module's -ELBO; Adam at
  ``SlateTSSettings.lr``; the ELBO's parts are logged.
- **Algorithm** ``SlateTS.training_step``: sample ``steps_per_iteration`` env steps with
  the exploring module, turn the episodes into rows (click history = the observation's
  ``recent_ids``, slate = ``candidate_ids[action]``, the per-slot ``click``/``shown`` of the step
  info; one row per click, one "no click" row for a step without clicks), append them to
  a FIFO buffer of ``buffer_size`` rows (all data so far, by default), take
  ``updates_per_iteration`` gradient steps on minibatches drawn from the buffer (the ELBO
  scaled to the buffer's size: the posterior given all the data kept), and sync the new
  posterior to the env runners. The buffer is not part of a checkpoint: a resumed run keeps
  the posterior and refits it on the data it collects from then on.

The module is stateless for RLlib: the GRU is re-run each step over the observation's
``recent_ids`` (the user's last H clicked items, H = ``episode.recent_items``, kept across
the sessions of a user's life), so the user state covers the last H clicks, not the whole
life as in the paper's offline model.

It runs on the vector env (``train.vectorize='vector_entry_point'``), on gymnasium's
``SyncVectorEnv`` over single envs (``'sync'``) and on the population env
(``build_population_slate_ts_config``: every user served by one shared module).

Item groups of the hierarchical prior come from the catalog: the item's first topic
(``grouping='topic'``), the first code of its semantic ID (``'semantic_id'``), or one group.

Metrics per iteration (besides RLlib's): ``slate_ts/online_click_rate`` (clicks per step of
the exploring policy), ``online_slate_diversity`` (distinct item groups per slate / k),
``online_coverage`` (distinct items shown / catalog), ``buffer_rows``,
``posterior_item_scale`` (mean posterior std of the item vectors); the learner logs
``elbo_per_row``, ``loglik_per_row`` and ``kl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from recoworld.catalog import Catalog
from recoworld.envs.config import WorldConfig
from recoworld.envs.observation import IDS_VIEW
from recoworld.envs.population.config import PopulationConfig
from recoworld.policies.base import batched, unbatch
from recoworld.rl.registry import AlgorithmSpec
from recoworld.rl.slate_ts.config import SlateTSSettings
from recoworld.rl.slate_ts.model import ModelSpec, SlateTSModel

ROW_KEYS = ("hist", "slate", "shown", "target")


# ---------------------------------------------------------------------------- item groups
def item_groups(catalog: Catalog, grouping: str, world: WorldConfig | None = None) -> np.ndarray:
    """[N] int64 group id per catalog item for the hierarchical prior (contiguous ids)."""
    if grouping == "none":
        return np.zeros(catalog.n_items, dtype=np.int64)
    if grouping == "topic":
        topics = np.asarray(catalog.topics)
        raw = np.where(topics.any(1), np.argmax(topics > 0, axis=1), topics.shape[1])
    elif grouping == "semantic_id":
        from recoworld.catalog.embeddings import item_embeddings
        from recoworld.catalog.semantic_ids import semantic_ids

        cfg = (world or WorldConfig()).representations.semantic_id
        raw = semantic_ids(item_embeddings(catalog), cfg).codes[:, 0]
    else:
        raise ValueError(f"grouping: 'topic', 'semantic_id' or 'none'; got {grouping!r}")
    return np.unique(raw, return_inverse=True)[1].astype(np.int64)


def model_spec(groups: np.ndarray, settings: SlateTSSettings, max_slate: int) -> ModelSpec:
    """The model's sizes and priors from the settings and the catalog's item groups."""
    s = settings
    return ModelSpec(
        n_items=len(groups), item_group=tuple(int(g) for g in groups), item_dim=s.item_dim,
        hidden=s.hidden, max_slate=max_slate, score=s.score,  # type: ignore[arg-type]
        likelihood=s.likelihood,  # type: ignore[arg-type]
        prior_group_mean_scale=s.prior_group_mean_scale, prior_item_scale=s.prior_item_scale,
        prior_weight_scale=s.prior_weight_scale, prior_bias_scale=s.prior_bias_scale,
    )  # fmt: skip


# ---------------------------------------------------------------------------- RLModule
class SlateTSModule(TorchRLModule):
    """The slate model as an RLModule (see module docstring). ``model_config``: ``spec``
    (``ModelSpec.to_dict()``), ``exploration`` and ``samples`` (0: the slate size)."""

    def setup(self) -> None:
        obs = self.observation_space
        if not isinstance(obs, gym.spaces.Dict) or not {"candidate_ids", "recent_ids"} <= set(
            obs.spaces
        ):
            raise ValueError(
                "SlateTSModule needs the RecoWorld observation dict with 'candidate_ids' and "
                f"'recent_ids' (observation: features+ids), got {obs}"
            )
        act = self.action_space
        if not isinstance(act, gym.spaces.MultiDiscrete):
            raise ValueError(f"SlateTSModule needs a MultiDiscrete slate space, got {act}")
        cfg = dict(self.model_config or {})
        if "spec" not in cfg:
            raise ValueError("SlateTSModule: model_config needs 'spec' (ModelSpec.to_dict())")
        spec = ModelSpec.from_dict(cfg["spec"])
        n_items = int(np.asarray(obs["candidate_ids"].nvec).max())
        if n_items != spec.n_items:
            raise ValueError(
                f"SlateTSModule: the model has {spec.n_items} items but the observation's "
                f"catalog has {n_items}"
            )
        self.slate_size = len(act.nvec)
        self.exploration = str(cfg.get("exploration", "in_slate"))
        self.samples = int(cfg.get("samples", 0)) or self.slate_size
        self.model = SlateTSModel(spec)

    def slates(self, obs: dict[str, Any], mode: str) -> torch.Tensor:
        """[B, k] candidate positions for a batch of observations (torch tensors)."""
        return self.model.select(
            torch.as_tensor(obs["recent_ids"]), torch.as_tensor(obs["candidate_ids"]),
            self.slate_size, mode, samples=self.samples,  # type: ignore[arg-type]
        )  # fmt: skip

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTIONS: self.slates(batch[Columns.OBS], "greedy")}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        actions = self.slates(batch[Columns.OBS], self.exploration)
        return {
            Columns.ACTIONS: actions,
            Columns.ACTION_LOGP: torch.zeros(actions.shape[0], dtype=torch.float32),
        }

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data_size = float(batch["data_size"][0])
        rows = {k: batch[k] for k in ROW_KEYS}
        loss, parts = self.model.loss(rows, data_size)
        return {"loss": loss, **parts}


# ---------------------------------------------------------------------------- Learner
class SlateTSLearner(TorchLearner):
    """Minimises -ELBO / data_size (the module's ``_forward_train`` output)."""

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        for key in ("elbo_per_row", "loglik_per_row", "kl"):
            self.metrics.log_value((module_id, key), fwd_out[key].item(), window=1)
        return fwd_out["loss"]


# ---------------------------------------------------------------------------- data
class RowBuffer:
    """FIFO buffer of logged slate rows (numpy), the data the posterior is fitted on."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return 0 if not self.data else len(self.data["target"])

    def add(self, rows: dict[str, np.ndarray]) -> None:
        if not len(rows["target"]):
            return
        if not self.data:
            self.data = {k: v.copy() for k, v in rows.items()}
        else:
            self.data = {k: np.concatenate([self.data[k], rows[k]]) for k in self.data}
        if len(self) > self.capacity:
            self.data = {k: v[-self.capacity :] for k, v in self.data.items()}

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = rng.integers(0, len(self), size=n)
        return {k: v[idx] for k, v in self.data.items()}


def steps_to_rows(
    hist: np.ndarray, slate: np.ndarray, shown: np.ndarray, click: np.ndarray
) -> dict[str, np.ndarray]:
    """Rows of the slate likelihood from T steps: ``hist`` [T, H] (recent clicked items,
    newest first, -1 padded), ``slate`` [T, k] catalog indices, ``shown``/``click`` [T, k].
    One row per click (target = slot + 1), one row (target 0) per step without a click."""
    click = click.astype(bool) & shown.astype(bool)
    t_idx, slot = np.nonzero(click)
    none = np.flatnonzero(~click.any(1))
    steps = np.concatenate([t_idx, none])
    target = np.concatenate([slot + 1, np.zeros(len(none), np.int64)])
    return {
        "hist": hist[steps].astype(np.int64),
        "slate": slate[steps].astype(np.int64),
        "shown": shown[steps].astype(bool),
        "target": target.astype(np.int64),
    }


def episode_steps(episode: Any) -> dict[str, np.ndarray] | None:
    """(hist, slate, shown, click) arrays of a single-agent episode chunk's steps; None
    when it has no step with response info."""
    n = len(episode)
    if n == 0:
        return None
    obs = episode.get_observations()
    actions = np.asarray(episode.get_actions()).reshape(n, -1).astype(np.int64)
    infos = episode.get_infos()
    if isinstance(obs, list):  # not yet numpy-ized: a list of dicts
        obs = {k: np.stack([o[k] for o in obs]) for k in ("candidate_ids", "recent_ids")}
    keep, click, shown = [], [], []
    for t in range(n):
        info = infos[t + 1]
        if "click" not in info:
            continue
        keep.append(t)
        click.append(np.asarray(info["click"], bool))
        shown.append(np.asarray(info.get("shown", np.ones_like(click[-1])), bool))
    if not keep:
        return None
    t = np.asarray(keep)
    items = np.asarray(obs["candidate_ids"])[t]
    return {
        "hist": np.asarray(obs["recent_ids"])[t],
        "slate": np.take_along_axis(items, actions[t], axis=1),
        "shown": np.stack(shown),
        "click": np.stack(click),
    }


def episodes_to_steps(episodes: list[Any]) -> dict[str, dict[str, np.ndarray]]:
    """Steps per module id from single- or multi-agent episodes."""
    parts: dict[str, list[dict[str, np.ndarray]]] = {}
    for ep in episodes:
        if isinstance(ep, MultiAgentEpisode):
            pairs = [(sa.module_id or DEFAULT_MODULE_ID, sa) for sa in ep.agent_episodes.values()]
        else:
            pairs = [(DEFAULT_MODULE_ID, ep)]
        for mid, sa in pairs:
            steps = episode_steps(sa)
            if steps is not None:
                parts.setdefault(mid, []).append(steps)
    return {
        mid: {k: np.concatenate([p[k] for p in ps]) for k in ps[0]} for mid, ps in parts.items()
    }


# ---------------------------------------------------------------------------- Algorithm
class SlateTSConfig(AlgorithmConfig):
    """``AlgorithmConfig`` of ``SlateTS``; ``slate_ts(settings=...)`` takes a
    ``SlateTSSettings`` mapping."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or SlateTS)
        self.slate_ts_settings: dict[str, Any] = SlateTSSettings().model_dump()
        self.lr = self.slate_ts_settings["lr"]
        self.num_env_runners = 0
        self.rollout_fragment_length = "auto"

    def slate_ts(self, *, settings: dict[str, Any] | SlateTSSettings = NotProvided):  # type: ignore[assignment]
        if settings is not NotProvided:
            s = SlateTSSettings.model_validate(
                settings.model_dump() if isinstance(settings, SlateTSSettings) else settings
            )
            self.slate_ts_settings = s.model_dump()
            self.lr = s.lr
            self.train_batch_size_per_learner = s.steps_per_iteration
        return self

    @property
    def settings(self) -> SlateTSSettings:
        return SlateTSSettings.model_validate(self.slate_ts_settings)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=SlateTSModule)

    def get_default_learner_class(self) -> type:
        return SlateTSLearner


class SlateTS(Algorithm):
    """Collect slates with Thompson sampling, refit the posterior (module docstring)."""

    @classmethod
    def get_default_config(cls) -> SlateTSConfig:
        return SlateTSConfig()

    def setup(self, config: Any) -> None:
        super().setup(config)
        s = self.config.settings
        self._buffers: dict[str, RowBuffer] = {}
        self._rng = np.random.default_rng(self.config.seed)
        self._groups: np.ndarray | None = None
        self._settings = s

    def _item_groups(self, module_id: str) -> np.ndarray:
        if self._groups is None:
            module = self.learner_group._learner.module[module_id]  # num_learners=0
            self._groups = module.model.item_group.numpy()
        return self._groups

    def training_step(self) -> None:
        s = self._settings
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group,
                max_env_steps=s.steps_per_iteration,
                sample_timeout_s=self.config.sample_timeout_s,
                _uses_new_env_runners=True,
                _return_metrics=True,
            )
        self.metrics.aggregate(runner_results, key=ENV_RUNNER_RESULTS)
        if not episodes:
            return
        per_module = episodes_to_steps(episodes)
        batches = {}
        for mid, steps in per_module.items():
            self._log_online(mid, steps)
            buf = self._buffers.setdefault(mid, RowBuffer(s.buffer_size))
            buf.add(steps_to_rows(**steps))
            if not len(buf):
                continue
            rows = buf.sample(s.updates_per_iteration * s.minibatch_size, self._rng)
            rows["data_size"] = np.full(len(rows["target"]), float(len(buf)), np.float32)
            batches[mid] = SampleBatch(rows)
            self.metrics.log_value(("slate_ts", "buffer_rows"), len(buf), window=1)
        if not batches:
            return
        env_steps = sum(len(b) for b in batches.values())
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                batch=MultiAgentBatch(batches, env_steps=env_steps),
                minibatch_size=s.minibatch_size,
                num_epochs=1,
                shuffle_batch_per_epoch=False,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0
                    )
                },
            )
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        for mid in batches:
            module = self.learner_group._learner.module[mid]
            scale = float(module.model.items.scale.detach().mean())
            self.metrics.log_value(("slate_ts", "posterior_item_scale"), scale, window=1)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=list(batches),
                inference_only=True,
            )

    def _log_online(self, module_id: str, steps: dict[str, np.ndarray]) -> None:
        """Click rate, slate diversity and coverage of the slates just collected."""
        groups = self._item_groups(module_id)
        shown, slate = steps["shown"], steps["slate"]
        n = len(slate)
        clicks = float((steps["click"] & shown).sum()) / max(n, 1)
        k = slate.shape[1]
        g = np.where(shown, groups[slate], -1)
        distinct = np.array([len(set(r) - {-1}) for r in g.tolist()], dtype=np.float64)
        for key, value in (
            ("online_click_rate", clicks),
            ("online_slate_diversity", float(distinct.mean() / k) if n else 0.0),
            ("online_coverage", len(np.unique(slate[shown])) / len(groups)),
        ):
            self.metrics.log_value(("slate_ts", key), value, window=1)


# ---------------------------------------------------------------------------- configs
def _catalog(world: WorldConfig, reserve: int = 0) -> Catalog:
    from recoworld.catalog import load_catalog

    catalog, movielens = load_catalog(world.catalog)
    if reserve:
        from recoworld.envs.population.population import hold_back_newest

        catalog, _ = hold_back_newest(catalog, movielens, reserve)
    return catalog


def _module_spec(world: WorldConfig, settings: SlateTSSettings, catalog: Catalog) -> RLModuleSpec:
    groups = item_groups(catalog, settings.grouping, world)
    spec = model_spec(groups, settings, max_slate=world.episode.slate_size)
    return RLModuleSpec(
        module_class=SlateTSModule,
        model_config={
            "spec": spec.to_dict(),
            "exploration": settings.exploration,
            "samples": settings.samples,
        },
    )


def build_slate_ts_config(world: WorldConfig, cfg: Any) -> SlateTSConfig:
    """The ``SlateTSConfig`` for RecoWorld's vector env (``cfg``: a ``TrainConfig``)."""
    from recoworld.rl.runtime import on_recoworld_env

    settings: SlateTSSettings = cfg.slate_ts
    world = world.model_copy(update={"observation": IDS_VIEW})  # the GRU reads item ids
    return (
        on_recoworld_env(SlateTSConfig(), world, cfg)
        .slate_ts(settings=settings)
        .rl_module(rl_module_spec=_module_spec(world, settings, _catalog(world)))
    )


def build_population_slate_ts_config(
    pop_config: PopulationConfig, settings: SlateTSSettings, seed: int = 0
) -> SlateTSConfig:
    """Slate TS on the population env: every user is an agent served by one shared module
    (``recoworld.rl.population.algorithm``'s env and mapping)."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec

    from recoworld.rl.population.algorithm import SHARED, register_population_env, shared_policy

    world = pop_config.world.model_copy(update={"observation": IDS_VIEW})  # item ids
    pop_config = pop_config.model_copy(update={"world": world})
    catalog = _catalog(world, pop_config.publishing.reserve)
    return (
        SlateTSConfig()
        .environment(register_population_env(), env_config=pop_config.model_dump(mode="json"))
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, gym_env_vectorize_mode="sync")
        .learners(num_learners=0)
        .slate_ts(settings=settings)
        .multi_agent(policies={SHARED}, policy_mapping_fn=shared_policy, policies_to_train=[SHARED])
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                rl_module_specs={SHARED: _module_spec(world, settings, catalog)}
            )
        )
        .debugging(seed=seed)
    )


# ---------------------------------------------------------------------------- Recommender
class SlateTSRecommender:
    """A slate TS module as a ``Recommender``: ``mode`` 'greedy' (posterior mean), 'plain'
    or 'in_slate' Thompson sampling (``seed`` fixes the posterior draws)."""

    def __init__(
        self, module: SlateTSModule, name: str = "slate_ts", mode: str = "greedy",
        seed: int | None = None,
    ) -> None:  # fmt: skip
        if mode not in ("greedy", "plain", "in_slate"):
            raise ValueError(f"mode: 'greedy', 'plain' or 'in_slate'; got {mode!r}")
        self.module = module
        self.name = name
        self.mode = mode
        self.generator = torch.Generator().manual_seed(seed or 0)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, name: str = "slate_ts", mode: str = "greedy"
    ) -> SlateTSRecommender:
        from ray.rllib.core.rl_module.rl_module import RLModule

        from recoworld.rl.common.recommender import module_checkpoint_dir

        module = RLModule.from_checkpoint(module_checkpoint_dir(path))
        if not isinstance(module, SlateTSModule):
            raise ValueError(f"{path}: not a slate_ts checkpoint ({type(module).__name__})")
        module.eval()
        return cls(module, name=name, mode=mode)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        for key in ("candidate_ids", "recent_ids"):
            if key not in obs:
                raise ValueError(f"SlateTSRecommender: the observation lacks {key!r}")
        m = self.module
        slate = m.model.select(
            torch.as_tensor(np.asarray(obs["recent_ids"])),
            torch.as_tensor(np.asarray(obs["candidate_ids"])), m.slate_size,
            self.mode, samples=m.samples, generator=self.generator,  # type: ignore[arg-type]
        )  # fmt: skip
        return unbatch(slate.numpy().astype(np.int64), single)


def _recommender(algo: Any, name: str) -> SlateTSRecommender:
    module = algo.get_module()
    return SlateTSRecommender(module, name=name, mode="greedy")


def _from_checkpoint(path: Path, name: str) -> SlateTSRecommender:
    return SlateTSRecommender.from_checkpoint(path, name=name)


SLATE_TS_SPEC = AlgorithmSpec(
    build_config=build_slate_ts_config,
    recommender=_recommender,
    from_checkpoint=_from_checkpoint,
    settings=SlateTSSettings,
)
