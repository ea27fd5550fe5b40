"""Offline RL from logged RecoWorld experience: record in RLlib's columnar layout, train
behaviour cloning (BC) or MARWIL with the slate module, evaluate the learned policy.

Recording
---------
``record_offline(world, policy, out_dir)`` runs any ``Recommender`` (a baseline by name, an
``EpsilonMixture`` of one, a trained module) in a ``RecoWorldVectorEnv`` until the first
``episodes`` user lives (by episode id, as ``simulate.run_policy`` counts them) have ended,
and writes, atomically (``recoworld.core.atomic``):

- ``<out>/data/part-00000.parquet``: one row per user-step of those lives, in the columns
  RLlib 2.60's offline API reads by default (``config.offline_data(input_=[<out>/data])``,
  no ``input_read_schema`` needed):

  ============== ===================== ====================================================
  column         type                  content
  ============== ===================== ====================================================
  eps_id         int64                 the user life (the world's ``episode_id``)
  agent_id       string (null)         single-agent (RLlib's writer stores None too)
  module_id      string                ``default_policy``
  obs            string                the observation dict, packed (see below)
  actions        fixed_size_list<int64> the slate: k distinct candidate indices
  rewards        float32               the step's reward
  new_obs        string                the next observation dict, packed
  terminateds    bool                  the life ended (user churned)
  truncateds     bool                  the life hit ``episode.max_sessions``
  t              int64                 step index within the life
  action_logp    float32               log-probability of the slate under the behaviour
                                       policy (only when it is known, see
                                       ``act_with_logp``)
  returns_to_go  float32               discounted return from this step to the end of the
                                       life (``gamma`` in the file metadata); what MARWIL
                                       regresses its value function on
  ============== ===================== ====================================================

- ``<out>/manifest.json``: world + recording config, seed, versions, git commit, dataset
  statistics (``recoworld.core.manifest.write_manifest``);
- optionally ``<out>/trajectories.parquet``: the ``recoworld.envs.trajectory`` log (per-slot
  clicks, watch time, reward terms, ...) of exactly the same user-steps, row for row.

Why observations are packed strings: RLlib's column reader (``OfflinePreLearner.
_map_to_episodes``) turns each row into a one-step ``SingleAgentEpisode`` and applies only
``unpack_if_needed`` to the ``obs`` / ``new_obs`` values (both are in the default
``input_compress_columns``); there is no schema-driven rebuild of a Dict observation from
flattened or struct columns (a struct column reaches the episode as Python lists, with the
wrong dtypes and nesting). A value packed with ``ray.rllib.utils.compression.pack``
(cloudpickle + LZ4 + base64, what RLlib's own ``OfflineEnvRunner`` writes for compressed
columns) is unpacked into exactly the dict of numpy arrays the env produced — every key
(extra keys such as ``candidate_ids`` / ``recent_ids`` included) with its dtype and shape — so the
slate module reads logged and live observations alike. ``decode_obs`` unpacks one value
outside RLlib. Extra columns of the file become RLlib ``extra_model_outputs`` (so
``action_logp`` and ``returns_to_go`` reach the training batch); that is why the
trajectory log lives in its own file. The alternative format, whole episodes
(``input_read_episodes=True``, msgpack of ``SingleAgentEpisode.get_state()``), is not the
columnar layout and ties the file to RLlib's episode internals.

Training
--------
``train_offline(data, cfg, out_dir)`` builds RLlib's ``BCConfig`` (or MARWIL, below) with
the slate module (``RLModuleSpec(module_class=SlateScoringModule)``): the learner maximises
the exact Plackett-Luce log-probability of the logged slates. It writes ``progress.csv``,
``result.json``, ``eval.json``, ``checkpoint/`` (an algorithm checkpoint that
``ModuleRecommender.from_checkpoint`` loads) and ``manifest.json``, and evaluates the
greedy policy with ``recoworld.policies.rollout.run_policy``.

MARWIL: RLlib's MARWIL computes value targets with GAE over each episode, but the column
reader makes every row a one-step episode and maps the data with the module as it was at
the first batch (MARWIL's ``materialize_mapped_data=False`` notwithstanding, the
pre-learner never receives new weights), so its targets would be ``r + gamma V_0(s')`` with
the initial, untrained value function. ``LoggedReturnMARWILConfig`` replaces GAE by the
logged ``returns_to_go`` (the Monte-Carlo return of the original MARWIL paper, Wang et al.
2018); the MARWIL loss itself (exponentially advantage-weighted log-likelihood + value
regression) is RLlib's, unchanged.

Ray must be running (``train.ensure_ray``); with 2 CPUs the data pipeline is given
``map_batches_kwargs={"concurrency": 1, "zero_copy_batch": True}`` (it deadlocks
otherwise, docs/platform.md#rllib-notes).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from pydantic import Field
from ray.rllib.algorithms.marwil import MARWILConfig
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.utils.compression import pack, unpack

from recoworld.core.atomic import atomic_write_json, atomic_write_parquet, atomic_write_text
from recoworld.core.config import StrictModel
from recoworld.core.manifest import write_manifest
from recoworld.envs.config import WorldConfig
from recoworld.envs.observation import IDS_VIEW
from recoworld.envs.trajectory import TrajectoryLog
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.policies.base import OnlineRecommender, Recommender, batched, top_k, unbatch
from recoworld.policies.baselines import MostPopularRecommender, RandomRecommender, make_baseline
from recoworld.policies.rollout import SimulateConfig, run_policy, summarize
from recoworld.rl.common.config import ModelSettings
from recoworld.rl.runtime import ensure_ray, save_checkpoint

FORMAT = "recoworld-rllib-columns/1"
DATA_SUBDIR = "data"
DATA_FILE = "part-00000.parquet"
OBS_ENCODING = "ray.rllib.utils.compression.pack (cloudpickle + lz4 + base64) of the obs dict"
RLLIB_COLUMNS = (
    Columns.EPS_ID, Columns.AGENT_ID, Columns.MODULE_ID, Columns.OBS, Columns.ACTIONS,
    Columns.REWARDS, Columns.NEXT_OBS, Columns.TERMINATEDS, Columns.TRUNCATEDS, Columns.T,
)  # fmt: skip
"""The columns RLlib's default offline schema names (``OfflinePreLearner.SCHEMA``)."""
REQUIRED_COLUMNS = (Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.NEXT_OBS,
                    Columns.TERMINATEDS, Columns.TRUNCATEDS)  # fmt: skip


# --------------------------------------------------------------------------- behaviour


def _log_n_slates(m: int, k: int) -> float:
    """log of the number of ordered slates of k distinct items out of m."""
    return float(sum(math.log(m - j) for j in range(k)))


class EpsilonMixture:
    """With probability ``epsilon`` a uniformly random slate, else ``base``'s slate.

    ``act_with_logp`` also returns the exact log-probability of each slate, assuming
    ``base`` is deterministic given the observation (most-popular, the instruction
    heuristic, a greedy module; an online learner between its updates):
    ``p = epsilon / (M (M-1) ... (M-k+1)) + (1 - epsilon) [slate == base slate]``.
    ``update`` is forwarded to an online ``base`` (e.g. LinUCB keeps learning)."""

    def __init__(
        self,
        base: Recommender,
        epsilon: float,
        slate_size: int,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.base = base
        self.epsilon = float(epsilon)
        self.slate_size = slate_size
        self.rng = np.random.default_rng(seed)
        self.name = name or f"{getattr(base, 'name', type(base).__name__)}+eps{epsilon:g}"

    def act_with_logp(self, observation: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        obs, single = batched(observation)
        b, m = obs["candidates"].shape[:2]
        base = np.asarray(self.base.act(obs)).reshape(b, self.slate_size)
        rand = top_k(self.rng.random((b, m)), self.slate_size)
        explore = self.rng.random(b) < self.epsilon
        slate = np.where(explore[:, None], rand, base).astype(np.int64)
        uniform = math.exp(-_log_n_slates(m, self.slate_size))
        if isinstance(self.base, RandomRecommender):  # a mixture of two uniform policies
            p = np.full(b, uniform)
        else:
            same = (slate == base).all(axis=1)
            p = self.epsilon * uniform + (1 - self.epsilon) * same
        logp = np.log(p).astype(np.float32)
        return unbatch(slate, single), (logp[0] if single else logp)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return self.act_with_logp(observation)[0]

    def update(self, observation, slate, reward, next_observation, done, info) -> None:
        if callable(getattr(self.base, "update", None)):
            self.base.update(observation, slate, reward, next_observation, done, info)


def act_with_logp(rec: Recommender, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, Any]:
    """(slates [B, k], behaviour log-probabilities [B] or None when unknown).

    Known: a recommender with its own ``act_with_logp`` (``EpsilonMixture``), uniform random
    slates, most-popular (deterministic: log p = 0). Others: None."""
    if callable(getattr(rec, "act_with_logp", None)):
        slate, logp = rec.act_with_logp(obs)
        return np.asarray(slate), np.asarray(logp, dtype=np.float32)
    slate = np.asarray(rec.act(obs))
    b, m = obs["candidates"].shape[:2]
    if isinstance(rec, RandomRecommender):
        return slate, np.full(b, -_log_n_slates(m, slate.shape[-1]), np.float32)
    if isinstance(rec, MostPopularRecommender):
        return slate, np.zeros(b, np.float32)
    return slate, None


def make_behaviour(
    policy: str | Recommender, world: Any, epsilon: float = 0.0, seed: int | None = None
) -> Recommender:
    """A baseline by name (or ``policy`` itself), mixed with random slates if epsilon > 0."""
    rec = make_baseline(policy, world, seed=seed) if isinstance(policy, str) else policy
    if epsilon > 0:
        rec = EpsilonMixture(rec, epsilon, world.slate_size, seed=seed)
    return rec


# --------------------------------------------------------------------------- recording


def decode_obs(value: str | bytes) -> dict[str, np.ndarray]:
    """One packed ``obs`` / ``new_obs`` value back to the observation dict."""
    return unpack(value)


def _pack_rows(obs: dict[str, np.ndarray]) -> list[str]:
    n = len(next(iter(obs.values())))
    return [pack({k: v[i] for k, v in obs.items()}) for i in range(n)]


def returns_to_go(
    eps_id: np.ndarray, t: np.ndarray, rewards: np.ndarray, gamma: float
) -> np.ndarray:
    """Discounted return from each row to the end of its life (rows in any order)."""
    order = np.lexsort((t, eps_id))
    out = np.zeros(len(rewards), np.float64)
    g, prev = 0.0, None
    for i in order[::-1]:
        if eps_id[i] != prev:
            g, prev = 0.0, eps_id[i]
        g = float(rewards[i]) + gamma * g
        out[i] = g
    return out.astype(np.float32)


class OfflineRecorder:
    """Collects transitions (batched steps, masked rows) and builds the RLlib table."""

    def __init__(self, gamma: float = 0.97, metadata: dict[str, str] | None = None) -> None:
        self.gamma = gamma
        self.metadata = dict(metadata or {})
        self._chunks: list[dict[str, Any]] = []
        self.n_rows = 0
        self.logp_known = True

    def record(
        self,
        rows: np.ndarray,
        eps_id: np.ndarray,
        t: np.ndarray,
        obs: dict[str, np.ndarray],
        slate: np.ndarray,
        reward: np.ndarray,
        next_obs: dict[str, np.ndarray],
        terminated: np.ndarray,
        truncated: np.ndarray,
        logp: np.ndarray | None,
    ) -> None:
        """Keep batch rows ``rows`` of one step (arrays indexed by slot)."""
        if rows.size == 0:
            return
        if logp is None:
            self.logp_known = False
        self._chunks.append({
            Columns.EPS_ID: np.asarray(eps_id)[rows].astype(np.int64),
            Columns.T: np.asarray(t)[rows].astype(np.int64),
            Columns.OBS: _pack_rows({k: np.asarray(v)[rows] for k, v in obs.items()}),
            Columns.ACTIONS: np.asarray(slate)[rows].astype(np.int64),
            Columns.REWARDS: np.asarray(reward)[rows].astype(np.float32),
            Columns.NEXT_OBS: _pack_rows({k: np.asarray(v)[rows] for k, v in next_obs.items()}),
            Columns.TERMINATEDS: np.asarray(terminated)[rows].astype(bool),
            Columns.TRUNCATEDS: np.asarray(truncated)[rows].astype(bool),
            Columns.ACTION_LOGP: None if logp is None else np.asarray(logp)[rows],
        })  # fmt: skip
        self.n_rows += rows.size

    def to_table(self) -> pa.Table:
        if not self._chunks:
            raise ValueError("OfflineRecorder: nothing recorded")

        def cat(key: str) -> np.ndarray:
            return np.concatenate([c[key] for c in self._chunks])

        def strings(key: str) -> pa.Array:
            return pa.array([s for c in self._chunks for s in c[key]], pa.string())

        eps_id, t, rewards = cat(Columns.EPS_ID), cat(Columns.T), cat(Columns.REWARDS)
        actions = cat(Columns.ACTIONS)
        n, k = actions.shape
        columns: dict[str, pa.Array] = {
            Columns.EPS_ID: pa.array(eps_id),
            Columns.AGENT_ID: pa.nulls(n, pa.string()),
            Columns.MODULE_ID: pa.array([DEFAULT_MODULE_ID] * n, pa.string()),
            Columns.OBS: strings(Columns.OBS),
            Columns.ACTIONS: pa.FixedSizeListArray.from_arrays(pa.array(actions.ravel()), k),
            Columns.REWARDS: pa.array(rewards),
            Columns.NEXT_OBS: strings(Columns.NEXT_OBS),
            Columns.TERMINATEDS: pa.array(cat(Columns.TERMINATEDS)),
            Columns.TRUNCATEDS: pa.array(cat(Columns.TRUNCATEDS)),
            Columns.T: pa.array(t),
        }
        if self.logp_known:
            columns[Columns.ACTION_LOGP] = pa.array(cat(Columns.ACTION_LOGP).astype(np.float32))
        columns[Columns.RETURNS_TO_GO] = pa.array(returns_to_go(eps_id, t, rewards, self.gamma))
        meta = {"format": FORMAT, "obs_encoding": OBS_ENCODING, "gamma": repr(self.gamma),
                **self.metadata}  # fmt: skip
        return pa.table(columns).replace_schema_metadata({k.encode(): str(v).encode()
                                                         for k, v in meta.items()})  # fmt: skip


def record_offline(
    world: WorldConfig,
    policy: str | Recommender,
    out_dir: str | Path,
    *,
    episodes: int = 1000,
    users: int = 64,
    seed: int = 0,
    epsilon: float = 0.0,
    gamma: float = 0.97,
    max_steps: int = 1_000_000,
    trajectories: bool = False,
) -> dict[str, Any]:
    """Log the first ``episodes`` user lives of ``policy`` (mixed with ``epsilon`` random
    slates) in RLlib's column layout under ``out_dir`` (see the module docstring). Returns
    the dataset statistics and the behaviour's summary on those lives (``simulate.
    summarize``)."""
    out = Path(out_dir)
    env = RecoWorldVectorEnv(num_envs=users, config=world, observation=IDS_VIEW)
    try:
        rec = make_behaviour(policy, env.world, epsilon, seed)
        name = getattr(rec, "name", type(rec).__name__)
        recorder = OfflineRecorder(gamma, {"behaviour": name, "seed": str(seed)})
        log = TrajectoryLog({"policy": name, "seed": str(seed)}) if trajectories else None
        obs, _ = env.reset(seed=seed)
        t_life = np.zeros(users, np.int64)
        ep_return = np.zeros(users)
        returns: list[float] = []
        lengths: list[int] = []
        sessions: list[int] = []
        keys = ("steps", "clicks", "watch", "likes", "follows", "gifts", "instructions",
                "returns", "session_ends")  # fmt: skip
        totals = dict.fromkeys(keys, 0.0)
        for step in range(max_steps):
            slate, logp = act_with_logp(rec, obs)
            next_obs, reward, terminated, truncated, info = env.step(slate)
            if isinstance(rec, OnlineRecommender):
                rec.update(obs, slate, reward, next_obs, terminated | truncated, info)
            stepped = np.asarray(info["_click"], dtype=bool)
            keep = stepped & (info["episode_id"] < episodes)
            rows = np.flatnonzero(keep)
            recorder.record(rows, info["episode_id"], t_life, obs, slate, reward, next_obs,
                            terminated, truncated, logp)  # fmt: skip
            if log is not None:
                log.record(step, {**info, "_click": keep}, reward, terminated, truncated)
            _tally(totals, info, keep)
            ep_return += np.where(keep, reward, 0.0)
            for i in np.flatnonzero((terminated | truncated) & keep):
                returns.append(float(ep_return[i]))
                lengths.append(int(t_life[i]) + 1)
                sessions.append(int(info["session"][i]) + 1)
            ep_return[terminated | truncated] = 0.0
            t_life = np.where(stepped, t_life + 1, 0)
            obs = next_obs
            if len(returns) >= episodes:
                break
        else:
            raise RuntimeError(
                f"only {len(returns)} of {episodes} lives ended in {max_steps} steps"
            )
    finally:
        env.close()
    table = recorder.to_table()
    data_path = atomic_write_parquet(table, out / DATA_SUBDIR / DATA_FILE)
    if log is not None:
        log.metadata["status"] = "complete"
        log.write(out / "trajectories.parquet")
    behaviour = summarize(returns, lengths, sessions, totals)
    stats = {
        "path": str(data_path),
        "rows": table.num_rows,
        "lives": len(returns),
        "behaviour": name,
        "epsilon": epsilon,
        "gamma": gamma,
        "columns": table.column_names,
        "action_logp": recorder.logp_known,
        "bytes": data_path.stat().st_size,
        "behaviour_summary": {k: v for k, v in behaviour.items() if not isinstance(v, list)},
    }
    record_cfg = {"policy": name, "episodes": episodes, "users": users, "seed": seed,
                  "epsilon": epsilon, "gamma": gamma}  # fmt: skip
    write_manifest(out, {"world": world.model_dump(mode="json"), "record": record_cfg}, seed,
                   dataset=stats)  # fmt: skip
    return stats


def _tally(totals: dict[str, float], info: dict[str, Any], live: np.ndarray) -> None:
    totals["steps"] += int(live.sum())
    for key, col in (("clicks", "click"), ("likes", "like"), ("follows", "follow"),
                     ("gifts", "gift")):  # fmt: skip
        totals[key] += int(np.asarray(info[col])[live].sum())
    totals["watch"] += float(np.asarray(info["watch"])[live].sum())
    totals["instructions"] += int(np.asarray(info["instructed"])[live].sum())
    totals["returns"] += int(np.asarray(info["returned"])[live].sum())
    totals["session_ends"] += int(np.asarray(info["session_end"])[live].sum())


# --------------------------------------------------------------------------- reading


def offline_data_dir(path: str | Path) -> Path:
    """The directory of Parquet files RLlib should read: ``path/data`` (as written by
    ``record_offline``) or ``path`` itself; a clear error when there is none."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"offline dataset not found: {path} (record one with recoworld.rl.offline.algorithm."
            "record_offline or experiments/train_offline.py)"
        )
    data = path / DATA_SUBDIR if (path / DATA_SUBDIR).is_dir() else path
    files = sorted(data.glob("*.parquet")) if data.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"{path}: no Parquet files (expected {DATA_SUBDIR}/{DATA_FILE} written by "
            "record_offline)"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in pq.read_schema(files[0]).names]
    if missing:
        raise ValueError(f"{files[0]}: not an RLlib offline table, it lacks columns {missing}")
    return data


def read_offline(path: str | Path) -> pa.Table:
    """The whole dataset as one Arrow table (obs still packed: see ``decode_obs``)."""
    return pq.read_table(offline_data_dir(path))


def dataset_world(path: str | Path) -> WorldConfig:
    """The world a dataset was recorded in (from its ``manifest.json``)."""
    data = offline_data_dir(path)
    for where in (data, data.parent):
        manifest = where / "manifest.json"
        if manifest.is_file():
            return WorldConfig.model_validate(json.loads(manifest.read_text())["config"]["world"])
    raise FileNotFoundError(f"{path}: no manifest.json with the world config; pass world=")


def dataset_gamma(path: str | Path) -> float | None:
    data = offline_data_dir(path)
    meta = pq.read_schema(sorted(data.glob("*.parquet"))[0]).metadata or {}
    return float(meta[b"gamma"]) if b"gamma" in meta else None


# --------------------------------------------------------------------------- training


class LoggedReturnsAsValueTargets(ConnectorV2):
    """Learner connector piece: MARWIL's value targets := the logged ``returns_to_go``."""

    def __call__(self, *, rl_module: Any, batch: dict[str, Any], episodes: Any,
                 **kwargs: Any) -> Any:  # fmt: skip
        for module_id, data in batch.items():
            if Columns.RETURNS_TO_GO not in data:
                raise ValueError(
                    f"module {module_id}: the offline batch has no {Columns.RETURNS_TO_GO!r} "
                    "column (record the data with recoworld.rl.offline.algorithm.record_offline)"
                )
            data[Columns.VALUE_TARGETS] = torch.as_tensor(data[Columns.RETURNS_TO_GO],
                                                          dtype=torch.float32)  # fmt: skip
        return batch


class LoggedReturnMARWILConfig(MARWILConfig):
    """RLlib's MARWIL with the logged Monte-Carlo returns as value targets (see module
    docstring); the pipeline is then stateless, so mapped data is materialised."""

    def __init__(self, algo_class: Any = None) -> None:
        super().__init__(algo_class=algo_class)
        self.materialize_data = False
        self.materialize_mapped_data = True

    def build_learner_connector(self, input_observation_space, input_action_space, device=None):
        pipeline = super().build_learner_connector(
            input_observation_space=input_observation_space,
            input_action_space=input_action_space,
            device=device,
        )
        for name in ("AddOneTsToEpisodesAndTruncate", "GeneralAdvantageEstimation",
                     "AddNextObservationsFromEpisodesToTrainBatch"):  # fmt: skip
            pipeline.remove(name)
        pipeline.append(LoggedReturnsAsValueTargets())
        return pipeline


class OfflineTrainConfig(StrictModel):
    """Offline training of the slate module (``train_offline``)."""

    algo: Literal["bc", "marwil"] = "bc"
    iterations: int = Field(20, ge=1)
    updates_per_iteration: int = Field(50, ge=1, description="Minibatch updates per iteration.")
    minibatch_size: int = Field(256, ge=1, description="Logged user-steps per update.")
    lr: float = Field(3e-3, gt=0)
    grad_clip: float | None = Field(None, gt=0)
    beta: float = Field(1.0, ge=0, le=1, description="MARWIL advantage temperature.")
    vf_coeff: float = Field(1.0, ge=0, description="MARWIL value-loss weight.")
    adv_norm_update_rate: float = Field(
        1e-2, gt=0, le=1, description="MARWIL: rate of the running mean of squared advantages."
    )
    adv_norm_start: float = Field(10.0, gt=0, description="MARWIL: its initial value.")
    seed: int = 0
    model: ModelSettings = Field(default_factory=ModelSettings)
    eval_episodes: int = Field(200, ge=1)
    eval_users: int = Field(64, ge=1)
    eval_seed: int = 10_000
    num_cpus: int = Field(2, ge=1)
    torch_threads: int = Field(1, ge=1)


def build_offline_config(data: str | Path, world: WorldConfig, cfg: OfflineTrainConfig) -> Any:
    """RLlib ``BCConfig`` / ``LoggedReturnMARWILConfig`` for the slate module on ``data``."""
    from ray.rllib.algorithms.bc import BCConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from recoworld.rl.common.slate_module import SlateScoringModule

    data_dir = offline_data_dir(data)
    if cfg.algo == "marwil":
        if Columns.RETURNS_TO_GO not in pq.read_schema(next(data_dir.glob("*.parquet"))).names:
            raise ValueError(f"{data}: MARWIL needs the {Columns.RETURNS_TO_GO!r} column")
        algo_cfg = LoggedReturnMARWILConfig().training(
            beta=cfg.beta,
            vf_coeff=cfg.vf_coeff,
            gamma=dataset_gamma(data_dir) or 0.97,
            moving_average_sqd_adv_norm_update_rate=cfg.adv_norm_update_rate,
            moving_average_sqd_adv_norm_start=cfg.adv_norm_start,
        )
    else:
        algo_cfg = BCConfig()
    env = RecoWorldVectorEnv(num_envs=1, config=world, observation=IDS_VIEW)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    env.close()
    return (
        algo_cfg.environment(observation_space=obs_space, action_space=act_space)
        .offline_data(
            input_=[str(data_dir)],
            map_batches_kwargs={"concurrency": 1, "zero_copy_batch": True},
            dataset_num_iters_per_learner=cfg.updates_per_iteration,
        )
        .training(
            train_batch_size_per_learner=cfg.minibatch_size, lr=cfg.lr, grad_clip=cfg.grad_clip
        )
        .learners(num_learners=0)
        .env_runners(num_env_runners=0)
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=SlateScoringModule,
                model_config={"hidden": cfg.model.hidden, "value_hidden": cfg.model.value_hidden},
            )
        )
        .debugging(seed=cfg.seed)
    )


def evaluate_recommender(
    rec: Recommender, world: WorldConfig, cfg: OfflineTrainConfig
) -> dict[str, Any]:
    """``run_policy`` on the evaluation users (fixed seed), list-valued entries dropped."""
    sim = SimulateConfig(users=cfg.eval_users, episodes=cfg.eval_episodes, seed=cfg.eval_seed,
                         log=False)  # fmt: skip
    summary = run_policy(world, rec, sim, None)
    return {k: v for k, v in summary.items() if not isinstance(v, list)}


LOSS_KEYS = ("policy_loss", "vf_loss", "total_loss", "vf_explained_var")


def train_offline(
    data: str | Path,
    cfg: OfflineTrainConfig,
    out_dir: str | Path,
    world: WorldConfig | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Train ``cfg.algo`` on the dataset ``data``; evaluate the greedy policy. Returns
    ``{"losses": [per-iteration dicts], "eval": run_policy summary, "checkpoint": path,
    "recommender": the greedy ModuleRecommender loaded from the checkpoint}``.
    The world defaults to the one the data was recorded in."""
    from recoworld.core.progress import progress_bar
    from recoworld.rl.common.recommender import ModuleRecommender

    torch.set_num_threads(cfg.torch_threads)
    data_dir = offline_data_dir(data)
    world = world or dataset_world(data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, {"world": world.model_dump(mode="json"),
                         "offline": cfg.model_dump(mode="json"), "data": str(data_dir)},
                   cfg.seed)  # fmt: skip
    ensure_ray(cfg.num_cpus)
    algo = build_offline_config(data_dir, world, cfg).build_algo()
    rows: list[dict[str, Any]] = []
    try:
        with (
            progress_bar(show_progress) as progress,
            (out / "result.json").open("w") as results,
        ):
            task = progress.add_task(f"{cfg.algo} iterations", total=cfg.iterations)
            for i in range(1, cfg.iterations + 1):
                result = algo.train()
                results.write(json.dumps(result, default=str) + "\n")
                learner = result.get("learners", {}).get(DEFAULT_MODULE_ID, {})
                row = {"iteration": i,
                       **{k: float(learner[k]) for k in LOSS_KEYS if k in learner}}  # fmt: skip
                rows.append(row)
                progress.update(task, advance=1, description=f"{cfg.algo} iter {i}: loss "
                                f"{row.get('policy_loss', float('nan')):.3f}")  # fmt: skip
            _write_csv(rows, out / "progress.csv")
            checkpoint = save_checkpoint(algo, out / "checkpoint")
    finally:
        algo.stop()
        del algo  # drop the data iterator while Ray is still up
        gc.collect()
    # the learned module, as any later process would load it (no env runner to ask)
    rec = ModuleRecommender.from_checkpoint(checkpoint, name=cfg.algo)
    summary = evaluate_recommender(rec, world, cfg)
    atomic_write_json(summary, out / "eval.json")
    return {"losses": rows, "eval": summary, "checkpoint": str(checkpoint), "recommender": rec}


def slate_overlap(
    rec: Recommender, reference: Recommender, data: str | Path, rows: int = 2000
) -> float:
    """Mean share of ``rec``'s slate items that ``reference`` also shows, on the first
    ``rows`` logged observations of ``data`` (e.g. a BC clone vs the behaviour's base)."""
    table = read_offline(data).slice(0, rows)
    decoded = [decode_obs(v) for v in table.column(Columns.OBS).to_pylist()]
    obs = {k: np.stack([o[k] for o in decoded]) for k in decoded[0]}
    a, b = np.asarray(rec.act(obs)), np.asarray(reference.act(obs))
    hits = (a[:, :, None] == b[:, None, :]).any(-1)
    return float(hits.mean())


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(buf.getvalue(), path)
