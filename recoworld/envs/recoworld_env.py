"""RecoWorld-v0: the single-user Gymnasium environment (B = 1 of the batched ``World``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from recoworld.catalog import Catalog
from recoworld.core.errors import require
from recoworld.envs.config import WorldConfig, resolve_world_config
from recoworld.envs.observation import (
    FEATURE_KEYS,
    ID_KEYS,
    IDS_VIEW,
    view_observation,
    view_space,
)
from recoworld.envs.render import LastStep, draw_last, session_end_text
from recoworld.envs.single_step import FastPathUnavailable, SingleUserStep, supports
from recoworld.envs.world import World
from recoworld.llm import LLMBackend


def build_world_config(
    config: WorldConfig | str | Path | dict[str, Any] | None = None,
    catalog: str | Path | Catalog | None = None,
    simulator: str | None = None,
    representation: str | None = None,
    observation: str | None = None,
) -> WorldConfig:
    """The env's config: ``config`` (model, YAML path, dict or None) with keyword overrides."""
    overrides: dict[str, Any] = {}
    if observation is not None:
        overrides["observation"] = observation
    if catalog is not None and not isinstance(catalog, Catalog):
        overrides["catalog"] = {"source": str(catalog)}
    if simulator is not None:
        overrides["simulator"] = simulator
    if representation is not None:
        overrides["representation"] = representation
    return resolve_world_config(config, overrides)


def build_world(
    n_users: int,
    catalog: str | Path | Catalog | None,
    simulator: str | None,
    representation: str | None,
    config: WorldConfig | str | Path | dict[str, Any] | None,
    render_mode: str | None,
    render_modes: list[str],
    llm_backend: LLMBackend | None = None,
    observation: str | None = None,
) -> World:
    """Check ``render_mode`` and build the ``World`` behind an env (single or vector)."""
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(
            f"render_mode={render_mode!r} is not supported: RecoWorld renders {render_modes} "
            "(gym.make also takes 'human' and '<mode>_list' through Gymnasium's wrappers)"
        )
    if render_mode == "rgb_array":  # before the world is built: fail fast
        require("PIL", "clients", "render_mode='rgb_array'")
    cfg = build_world_config(config, catalog, simulator, representation, observation)
    cat = catalog if isinstance(catalog, Catalog) else None
    return World(cfg, n_users=n_users, catalog=cat, llm_backend=llm_backend)


def format_step(cat: Catalog, info: dict[str, Any], reward: float, row: int = 0) -> str:
    """A readable transcript of one step for user ``row`` of a (batched) step ``info``, with
    the item names of ``cat`` (used by ``render_mode='ansi'``, transcripts and reports)."""
    lines = [
        f"[episode {int(info['episode_id'][row])} · session {int(info['session'][row]) + 1}"
        f" · step {int(info['step_in_session'][row]) + 1}]"
        f" satisfaction {float(info['satisfaction'][row]):.2f}"
    ]
    for j, item in enumerate(info["item_index"][row]):
        topics = ", ".join(cat.topic_list(int(item)))
        if not info["shown"][row, j]:
            what = "duplicate slot, not shown"
        elif info["click"][row, j]:
            what = f"clicked, watched {float(info['watch'][row, j]):.0%}"
            what += ", liked" if info["like"][row, j] else ""
            what += ", followed the creator" if info["follow"][row, j] else ""
            what += ", sent a gift" if info["gift"][row, j] else ""
        else:
            what = "skipped"
        lines.append(f"  {j + 1}. {cat.titles[int(item)]} [{topics}] — {what}")
    for key, label in (("reasoning", "Reasoning"), ("mindset", "Mindset")):
        if key in info and info[key][row]:
            lines.append(f"  {label}: {info[key][row]}")
    if "instruction" in info and info["instruction"][row]:
        lines.append(f'  Instruction: "{info["instruction"][row]}"')
    if info["session_end"][row]:
        lines.append(f"  -> {session_end_text(info, row)}")
    lines.append(f"  reward {reward:+.2f}")
    return "\n".join(lines)


class RecoWorldEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """
    ## Description

    A recommender serves one simulated user over a lifetime of sessions. Each step the
    platform retrieves M candidate items for the user (a mix of popular, random,
    interest-near and fresh items); the agent picks a slate of k of them; the user reviews
    the slate, clicks at most one item (multinomial logit with a no-click option and
    position bias), watches part of it, may like it, follow its creator and send a gift,
    updates its hidden state (interests, fatigue, novelty wish, creator affinity,
    satisfaction), may write a plain-language instruction when it is about to lose interest,
    and may leave. After leaving it comes back for another session with a probability that
    rises with its satisfaction — retention is the long-term goal.

    ## Action Space

    ``MultiDiscrete([M] * k)``: k indices into the current candidates, slot 0 first (the
    top of the slate). A repeated index is shown once: the later copy is an empty slot with
    no response, counted in ``info["n_duplicates"]``.

    ## Observation Space

    Three views (``observation=`` or ``WorldConfig.observation``; T = number of topics,
    d = T + 11, N = catalog size, H = ``episode.recent_items``):

    * ``"features"`` (default): a ``Dict`` of bounded float ``Box`` es — what a generic Dict
      policy (e.g. Stable-Baselines3's ``MultiInputPolicy``) should read;
    * ``"features+ids"``: those plus ``counters`` and the item ids as ``MultiDiscrete``
      spaces (identities, not magnitudes), for policies that learn per item;
    * ``"flat"``: the ``"features"`` keys concatenated into one float ``Box``
      (``candidates`` row by row, then ``user``, ``history``, ``instruction``), for MLPs.

    | key           | shape    | space / bounds        | content                              |
    |---------------|----------|-----------------------|--------------------------------------|
    | candidates    | (M, d)   | Box [0, 1]            | topics, popularity, freshness,       |
    |               |          |                       | duration, shown/clicked before,      |
    |               |          |                       | follows creator, creator clicks,     |
    |               |          |                       | retrieval source one-hot             |
    | user          | (8,)     | Box [0, 1]            | session/step progress, gap, click    |
    |               |          |                       | rates, session watch, follows,       |
    |               |          |                       | instruction recency                  |
    | history       | (T + 3,) | Box [0, 1]            | decayed click-topic distribution,    |
    |               |          |                       | entropy, recent click rate and watch |
    | instruction   | (T + 1,) | Box [-1, 1]           | topic deltas of the latest           |
    |               |          |                       | instruction (+1 more / -1 less),     |
    |               |          |                       | novelty flag                         |
    | counters      | (4,)     | Box [0, S·L]          | session index, step in session, total|
    |               |          |                       | steps, instructions (features+ids)   |
    | candidate_ids | (M,)     | MultiDiscrete [N]*M   | catalog indices of the candidates    |
    |               |          |                       | (features+ids)                       |
    | recent_ids    | (H,)     | MultiDiscrete [N+1]*H | last H clicked catalog indices,      |
    |               |          | start -1              | newest first, -1 padded              |
    |               |          |                       | (features+ids)                       |

    Hidden state (interests, quality, fatigue, novelty propensity, satisfaction) is never
    observed; ``recoworld.envs.observation`` documents every feature.

    Every ``reset`` and ``step`` hands out fresh arrays (observation and info), never views
    of a buffer that a later step overwrites: they may be stored as they are (replay
    buffers, Stable-Baselines3, ``SyncVectorEnv``). The parametric world's single-user fast
    path (``recoworld.envs.single_step``: one compiled call per step, used unless
    ``render_mode`` or ``ground_truth_info`` is set) writes into internal buffers and copies
    them out, a few small copies per step; it is bit-identical to the batched world.

    ## Rewards

    A weighted sum configured by ``RewardConfig``: per click (1.0), watch fraction (1.0),
    like (0.5), follow (1.0), gift (2.0), leaving the session (-1.0) and coming back for a
    new session (+2.0). ``info["reward_<term>"]`` breaks it down.

    ## Starting State

    A new user drawn from the configured population (sampled distributions, or a real
    MovieLens user's fitted preferences), first session, no history, M fresh candidates.

    ## Episode End

    An episode is one user's life. A session ends when the user leaves or after
    ``max_session_steps`` steps. The episode *terminates* when the user does not come back
    after a session, and is *truncated* when its ``max_sessions``-th session ends.

    ## Arguments

    ``gym.make("recoworld/RecoWorld-v0", catalog=..., simulator=..., representation=...,
    config=..., render_mode=...)``

    * ``catalog``: ``"synthetic"`` (default), ``"movielens"``, a path (ml-100k directory or
      a catalog ``.parquet``), or a ``Catalog`` object.
    * ``simulator``: ``"parametric"``, ``"hybrid"`` (parametric behaviour, instructions
      paraphrased by the LLM configured in ``config.llm`` when the paraphrase keeps their
      meaning) or ``"llm"`` (the RecoWorld loop: an LLM user with persona, memory and
      mindset; ``config.llm_user.mode`` is ``"score"`` or ``"generate"``). Both LLM
      simulators start the backend of ``config.llm``; ``llm_backend=`` shares an already
      started one. ``info["decision_source"]`` says who decided each LLM user's step.
    * ``representation``: ``"text"``.
    * ``observation``: ``"features"`` (default), ``"features+ids"`` or ``"flat"`` (above).
    * ``config``: a ``WorldConfig``, a YAML path or a dict — everything else (candidates,
      user model, reward, episode structure).
    * ``render_mode``: ``"ansi"`` returns a readable transcript of the last step;
      ``"rgb_array"`` an image of it (``[H, W, 3]`` uint8, H fixed by the slate size: the
      slate with titles, the user's response, a small user-state panel; a new user's first
      candidates after ``reset``), e.g. for ``gymnasium.wrappers.RecordVideo``. It needs
      Pillow (the ``clients`` extra). Frames are drawn only when ``render()`` is called.
      ``gym.make`` also accepts ``"rgb_array_list"``/``"ansi_list"`` (Gymnasium's
      ``RenderCollection``) and ``"human"`` (its ``HumanRendering`` window over
      ``"rgb_array"``, which needs pygame); any other mode is a ``ValueError``.

    Seed through ``reset(seed=...)``; the same seed gives the same trajectory for the same
    actions.

    ## Info

    ``titles``, ``item_ids``, per-item ``click``/``watch``/``like``/``follow``/``gift`` and
    ground-truth ``utility``, ``instruction`` (text or None), ``reasoning``, ``mindset``,
    ``left``, ``returned``, ``gap_hours``, ``satisfaction`` (hidden: for analysis only),
    ``session``, ``step_in_session``, ``reward_<term>``.

    ## Example

    >>> import gymnasium as gym, recoworld
    >>> env = gym.make("recoworld/RecoWorld-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs["candidates"].shape
    (20, 27)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> len(info["titles"])
    3
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        catalog: str | Path | Catalog | None = None,
        simulator: str | None = None,
        representation: str | None = None,
        config: WorldConfig | str | Path | dict[str, Any] | None = None,
        render_mode: str | None = None,
        llm_backend: LLMBackend | None = None,
        observation: str | None = None,
    ) -> None:
        self.world = build_world(
            1, catalog, simulator, representation, config, render_mode,
            self.metadata["render_modes"], llm_backend, observation,
        )  # fmt: skip
        self.config = self.world.config
        self.observation_view = self.config.observation
        self.observation_space = view_space(self.world.observation_space, self.observation_view)
        self.action_space = self.world.action_space
        self.render_mode = render_mode
        self._last_text = ""
        self._last_step: LastStep | None = None  # what render() draws (rgb_array)
        # the B = 1 fast path (recoworld.envs.single_step), where the world allows it
        self._fast = SingleUserStep(self.world) if supports(self.world, render_mode) else None
        # the view's keys, in the order World.step's observation has them
        self._keys = [*FEATURE_KEYS, *(ID_KEYS if self.observation_view == IDS_VIEW else ())]

    @property
    def catalog(self) -> Catalog:
        return self.world.catalog

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and self.world.state is None:
            seed = int(self.np_random.integers(0, 2**63 - 1))
        if self._fast is not None:
            buffers, info_ = self._fast.reset(seed)
            if not self._fast.usable:  # arrays the kernel cannot take: World.step from now
                self._fast = None
            return self._hand_out(buffers), info_
        obs, info = self.world.reset(seed=seed)
        if self.render_mode == "ansi":
            self._last_text = "[new user] candidates: " + ", ".join(
                self.catalog.titles[i]
                for i in self.world.cands[0][:5]  # type: ignore[index]
            )
        elif self.render_mode == "rgb_array":
            assert self.world.cands is not None
            self._last_step = LastStep(info["episode_id"], candidates=self.world.cands.copy())
        return self._view(obs), _row(info)

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._fast is not None:
            try:
                buffers, reward_, terminated_, truncated_, info_ = self._fast.step(action)
                return self._hand_out(buffers), reward_, terminated_, truncated_, info_
            except FastPathUnavailable:  # raised before the step touched the world
                self._fast = None
        obs, reward, terminated, truncated, info = self.world.step(np.asarray(action)[None])
        if self.render_mode == "ansi":
            self._last_text = format_step(self.world.catalog, info, float(reward[0]))
        elif self.render_mode == "rgb_array":
            self._last_step = LastStep(info["episode_id"], info=info, reward=reward)
        return (
            self._view(obs),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            _row(info),
        )

    def _hand_out(self, buffers: dict[str, np.ndarray]) -> Any:
        """The policy's view of the fast path's observation buffers (B = 1), as fresh
        arrays: the buffers are overwritten by the next step."""
        if self.observation_view == "flat":
            return np.concatenate([buffers[k][0].ravel() for k in self._keys])
        return {k: buffers[k][0].copy() for k in self._keys}

    def _view(self, obs: dict[str, np.ndarray]) -> Any:
        """The policy's view of the world's batched observation, row 0."""
        view = view_observation(obs, self.observation_view)
        return view[0] if isinstance(view, np.ndarray) else _row(view)

    def render(self) -> str | np.ndarray | None:
        """The last step (or reset) as text (``"ansi"``) or an image (``"rgb_array"``)."""
        if self.render_mode == "ansi":
            return self._last_text
        if self.render_mode == "rgb_array":
            return draw_last(self.world, self._last_step)
        env_id = self.spec.id if self.spec is not None else "recoworld/RecoWorld-v0"
        gym.logger.warn(
            "You are calling render method without specifying any render mode. You can "
            f'specify the render_mode at initialization, e.g. gym.make("{env_id}", '
            'render_mode="rgb_array")'
        )
        return None

    def close(self) -> None:
        self.world.close()
        super().close()


def _row(batch: dict[str, Any]) -> dict[str, Any]:
    """Row 0 of a batched dict; object arrays become Python values (str/None/list)."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        v = value[0]
        if isinstance(v, np.ndarray) and v.dtype == object:
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[key] = v
    return out
