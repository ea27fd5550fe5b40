"""The batched world: B users, one catalog, one step function — the core behind every env.

``World`` owns the loop of one step for all B users at once, in two public phases:

- ``respond(actions, active)``: take the slates (indices into each user's M candidates), let
  the simulator respond, end sessions (leave or session cap), decide returns (retention),
  compose the reward and update the platform's logs; returns a ``Responded``;
- ``advance(responded, inject)``: start the next sessions of returning users, draw the next
  candidates (``inject``, when given, may overwrite slots: a population's shared, follower
  and trending items) and encode observations; returns what ``step`` returns.

``step`` is ``advance(respond(...))``. ``RecoWorldEnv`` is B = 1 of this code,
``RecoWorldVectorEnv`` uses B natively, and a population couples its users between the two
phases (``recoworld.envs.population``).

Episodes: an episode is one user's life of up to ``max_sessions`` sessions. A session ends
when the user leaves (its choice) or after ``max_session_steps`` steps; then the user returns
(a new session starts in the same episode, after a gap) or does not (``terminated``). Ending
the last allowed session ``truncates`` the episode.

Randomness: three independent streams spawned from one seed — users (who is sampled),
candidates (what the platform retrieves) and responses (what users do) — so that later
evaluation can hold users and candidate draws fixed across policies (common random numbers).

Compiled step: for the parametric simulator (text ``none`` or ``instructions``, no
ground-truth info) ``respond``, ``advance`` and ``reset_rows`` run as a few compiled passes
over the batch (``recoworld.envs.batch_step``), bit-identical to the numpy code here, which
stays as the reference and the path of every other world (``set_compiled(False)`` forces
it). Either way each step's observation arrays are fresh: nothing handed out is written
into later.

Slates: ``actions[b]`` holds k indices into user b's candidates. A repeated index is shown
once; the repeated slot is empty (no response, counted in ``info['n_duplicates']``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from recoworld.catalog import CandidateGenerator, Catalog, MovieLensData, load_catalog
from recoworld.catalog.representation import ItemRepresentation
from recoworld.envs.batch_step import hooked
from recoworld.envs.config import WorldConfig
from recoworld.envs.observation import EMA, ObservationEncoder, PlatformState
from recoworld.envs.reward import compose_reward
from recoworld.llm import LLMBackend, make_backend
from recoworld.simulators.base import Responses
from recoworld.simulators.hybrid import HybridUserModel
from recoworld.simulators.instructions.factory import make_instruction_parser
from recoworld.simulators.llm import LLMUserModel
from recoworld.simulators.parametric.model import ParametricUserModel
from recoworld.simulators.parametric.movielens_fit import fit_movielens_population
from recoworld.simulators.parametric.segments import resolve_segments
from recoworld.simulators.parametric.state import UserState

RESPONSE_KEYS = ("click", "watch", "like", "follow", "gift", "utility")

Inject = Callable[[np.ndarray, np.ndarray | None], None]
"""``inject(cands, rows)``: may overwrite slots of freshly drawn candidates in place (``cands``
[B, M] for all users when ``rows`` is None, else for users ``rows``)."""


@dataclasses.dataclass
class Responded:
    """One step between its phases: what ``World.respond`` did, for ``World.advance``."""

    responses: Responses
    items: np.ndarray  # [B, k] catalog rows of the slates
    valid: np.ndarray  # [B, k] slots shown (a repeated index is shown once)
    active: np.ndarray  # [B] users simulated this step
    left: np.ndarray
    session_end: np.ndarray
    returned: np.ndarray
    gap: np.ndarray
    last_session: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    reward: np.ndarray
    terms: dict[str, np.ndarray]
    session_index: np.ndarray  # before the step
    step_in_session: np.ndarray
    truth: dict[str, np.ndarray]  # ground-truth info (empty unless asked for)

    @property
    def shown(self) -> np.ndarray:
        """[B, k] slots shown to active users."""
        return self.valid & self.active[:, None]


class World:
    """B simulated users in one world (see module docstring)."""

    def __init__(
        self,
        config: WorldConfig,
        n_users: int,
        catalog: Catalog | None = None,
        movielens: MovieLensData | None = None,
        llm_backend: LLMBackend | None = None,
    ) -> None:
        if n_users < 1:
            raise ValueError(f"n_users must be >= 1, got {n_users}")
        self.config = config
        self.n_users = n_users
        if catalog is None:
            catalog, movielens = load_catalog(config.catalog)
        self.catalog = catalog
        self.movielens = movielens
        population = None
        if config.users.source == "movielens":
            if movielens is None:
                raise ValueError("users.source='movielens' needs a MovieLens catalog source")
            population = fit_movielens_population(movielens, config.users)
        self._owned_backend: LLMBackend | None = None
        if config.simulator in ("hybrid", "llm") and llm_backend is None:
            llm_backend = self._owned_backend = make_backend(config.llm)
        self.parser = make_instruction_parser(config.instruction_parser, catalog.topic_names)
        if config.simulator == "hybrid":
            self.simulator: ParametricUserModel = HybridUserModel(
                catalog, config.users, population, llm_backend, self.parser
            )
        elif config.simulator == "llm":
            self.simulator = LLMUserModel(
                catalog, config.users, population, llm_backend, config.llm_user, self.parser
            )
        else:
            self.simulator = ParametricUserModel(catalog, config.users, population)
        if config.segments is not None:
            self.simulator.use_segments(resolve_segments(config.segments), movielens)
        self.candidates = CandidateGenerator(catalog, config.candidates)
        ep = config.episode
        self.slate_size = ep.slate_size
        self.n_candidates = config.candidates.n_candidates
        self.representation = ItemRepresentation(
            catalog, config.representation, config.representations
        )
        if hasattr(self.simulator, "set_representation") and config.representation != "text":
            self.simulator.set_representation(self.representation)
        self.encoder = ObservationEncoder(
            catalog, self.n_candidates, ep.max_sessions, ep.max_session_steps,
            self.candidates.sources, ep.recent_items, self.representation.features,
            self.representation.feature_names or None,
        )  # fmt: skip
        self.observation_space: spaces.Dict = self.encoder.space
        self.action_space = spaces.MultiDiscrete([self.n_candidates] * self.slate_size)
        self.state: UserState | None = None
        self.platform: PlatformState | None = None
        self.cands: np.ndarray | None = None
        self.episode_id = np.zeros(n_users, dtype=np.int64)
        self._next_episode = 0
        self._compiled = True
        self._batch: Any = None  # the compiled step (batch_step.BatchStep), made on first use
        self.seed(None)

    def set_compiled(self, on: bool) -> None:
        """Use the compiled step where it applies (the default), or the numpy reference."""
        self._compiled = on
        self._batch = None

    @property
    def compiled(self) -> bool:
        """Whether the next step takes the compiled path (module docstring)."""
        return self._batch_step() is not None

    def _batch_step(self) -> Any:
        """The compiled step, bound to the current arrays; None where it does not apply."""
        if not self._compiled:
            return None
        if self._batch is None:
            from recoworld.envs import batch_step

            if not batch_step.supports(self):
                self._compiled = False
                return None
            self._batch = batch_step.BatchStep(self)
        if hooked(self.simulator):
            return None  # a hooked simulator: the numpy path calls the hook
        return self._batch if self._batch.ready() else None

    def _new_episodes(self, rows: np.ndarray) -> None:
        """Number the episodes that start in ``rows`` (one id per life, in row order)."""
        self.episode_id[rows] = np.arange(self._next_episode, self._next_episode + len(rows))
        self._next_episode += len(rows)

    def close(self) -> None:
        """Release the LLM backend if this world started it."""
        if self._owned_backend is not None:
            self._owned_backend.close()
            self._owned_backend = None

    # ------------------------------------------------------------------ seeding / reset
    def seed(self, seed: int | None) -> None:
        """Reseed the three streams (users, candidates, responses) from one seed."""
        ss = np.random.SeedSequence(seed)
        self.rng_users, self.rng_candidates, self.rng_responses = (
            np.random.default_rng(s) for s in ss.spawn(3)
        )

    def reset(
        self, seed: int | None = None, inject: Inject | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start B new episodes; returns batched obs and info (``inject``: module docstring)."""
        if seed is not None:
            self.seed(seed)
            self._next_episode = 0
        n = self.n_users
        self.state = self.simulator.sample_users(n, self.rng_users)
        self.platform = self._fresh_platform(n)
        self.episode_id = np.arange(self._next_episode, self._next_episode + n, dtype=np.int64)
        self._next_episode += n
        self.cands = self._sample_candidates(None, inject)
        return self._observe(), self._reset_info(np.arange(n))

    def reset_rows(
        self, rows: np.ndarray, obs: dict[str, np.ndarray], inject: Inject | None = None
    ) -> dict[str, Any]:
        """Replace users ``rows`` with new ones (autoreset); writes their obs into ``obs``."""
        assert self.state is not None and self.platform is not None and self.cands is not None
        rows = np.asarray(rows, dtype=np.int64)
        batch = self._batch_step()
        if batch is not None and batch.reset_rows(np.ascontiguousarray(rows), obs, inject):
            self._new_episodes(rows)
            return self._reset_info(rows)
        self.simulator.replace_users(self.state, rows, self.rng_users)
        self.platform.assign(rows, self._fresh_platform(len(rows)))
        self._new_episodes(rows)
        self.cands[rows] = self._sample_candidates(rows, inject)
        sub = self._observe(rows)
        for key, value in sub.items():
            obs[key][rows] = value
        return self._reset_info(rows)

    def _sample_candidates(self, rows: np.ndarray | None, inject: Inject | None) -> np.ndarray:
        """Candidates for all users (``rows`` None) or for ``rows``; then ``inject`` (when
        given, e.g. by a population: trending, shared and newly published items) may
        overwrite slots in place."""
        assert self.platform is not None
        history = self.platform.topic_history if rows is None else self.platform.topic_history[rows]
        cands = self.candidates.sample(self.rng_candidates, history)
        if inject is not None:
            inject(cands, rows)
        return cands

    def _fresh_platform(self, n: int) -> PlatformState:
        return PlatformState.zeros(n, self.catalog.n_topics, self.config.episode.recent_items)

    def _reset_info(self, rows: np.ndarray) -> dict[str, Any]:
        assert self.cands is not None
        return {
            "episode_id": self.episode_id[rows].copy(),
            "candidates": self.catalog.item_ids[self.cands[rows]],
        }

    def _observe(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        st, p, c = self.state, self.platform, self.cands
        assert st is not None and p is not None and c is not None
        sel = slice(None) if rows is None else rows
        return self.encoder.encode(
            c[sel], p if rows is None else p.take(rows), st.seen, st.consumed, st.follows,
            st.creator_clicks, st.session_index[sel], st.session_step[sel], rows=rows,
        )  # fmt: skip

    # ------------------------------------------------------------------ step
    def check_actions(self, actions: np.ndarray) -> np.ndarray:
        a = np.asarray(actions)
        expected = (self.n_users, self.slate_size)
        if a.shape != expected:
            raise ValueError(f"actions: expected shape {expected}, got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            if not np.all(np.mod(a, 1) == 0):
                raise ValueError(f"actions: expected integer candidate indices, got {a.dtype}")
            a = a.astype(np.int64)
        if a.min() < 0 or a.max() >= self.n_candidates:
            raise ValueError(
                f"actions: candidate indices must lie in [0, {self.n_candidates}), "
                f"got min {a.min()} max {a.max()}"
            )
        return a.astype(np.int64, copy=False)

    def step(
        self, actions: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step for all users: ``advance(respond(actions, active))``."""
        return self.advance(self.respond(actions, active))

    def respond(self, actions: np.ndarray, active: np.ndarray | None = None) -> Responded:
        """The first phase of a step: the users respond to their slates, sessions end,
        returns are decided, the reward is composed and the platform's logs are updated.
        Users outside ``active`` (the vector env's slots about to be autoreset, a
        population's absent users) are not simulated: no response, no session event, no LLM
        call. Every ``respond`` is followed by one ``advance``."""
        st, p, cands = self.state, self.platform, self.cands
        if st is None or p is None or cands is None:
            raise RuntimeError("World.step called before reset()")
        actions = self.check_actions(actions)
        b, k = actions.shape
        active = np.ones(b, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        batch = self._batch_step()
        if batch is not None:
            return Responded(*batch.respond(actions, active))
        ep = self.config.episode
        same = actions[:, :, None] == actions[:, None, :]
        valid = ~(same & np.tri(k, k, -1, dtype=bool)[None]).any(axis=2)
        items = np.take_along_axis(cands, actions, axis=1)
        session_index = st.session_index.copy()
        step_in_session = st.session_step.copy()
        truth: dict[str, np.ndarray] = {}
        if ep.ground_truth_info:  # before the step: what the user would have liked now
            rel = self.simulator.relevance(st, cands)
            truth = {
                "candidate_index": cands.copy(),
                "candidate_relevance": rel,
                "slate_relevance": np.take_along_axis(rel, actions, axis=1) * valid,
                "user_novelty": st.novelty_static.copy(),
                "user_session_novelty": st.novelty_session.copy(),
            }
        resp = self.simulator.respond(
            st, items, valid, self.rng_responses, text=ep.text_info, active=active
        )

        # session ends and retention
        left = resp.leave
        session_end = (left | (st.session_step >= ep.max_session_steps)) & active
        returned = np.zeros(b, dtype=bool)
        gap = np.zeros(b, dtype=np.float32)
        ends = np.flatnonzero(session_end)
        if ends.size:
            returned[ends], gap[ends] = self.simulator.end_session(st, ends, self.rng_responses)
        last_session = st.session_index + 1 >= ep.max_sessions
        terminated = session_end & ~returned
        truncated = session_end & returned & last_session
        reward, terms = compose_reward(resp, left, returned, self.config.reward)

        self._log_platform(resp, items)
        return Responded(
            resp, items, valid, active, left, session_end, returned, gap, last_session,
            terminated, truncated, reward, terms, session_index, step_in_session, truth,
        )  # fmt: skip

    def advance(
        self, step: Responded, inject: Inject | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The second phase of a step: returning users start their next session, the next
        candidates are drawn (``inject``: module docstring) and observed. Returns obs,
        reward, terminated, truncated and info, as ``step``."""
        st, p = self.state, self.platform
        assert st is not None and p is not None
        batch = self._batch_step()
        if batch is not None:
            obs = batch.advance(step, inject)
        else:
            cont = np.flatnonzero(step.session_end & step.returned & ~step.last_session)
            if cont.size:
                self.simulator.start_session(st, cont, self.rng_responses)
                p.start_session(cont, step.gap[cont])
            self.cands = self._sample_candidates(None, inject)
            obs = self._observe()
        info = self._step_info(step)
        if step.truth:
            info.update(step.truth, instruction_vector=p.instruction.copy())
        return obs, step.reward, step.terminated, step.truncated, info

    def _log_platform(self, resp: Responses, items: np.ndarray) -> None:
        p, st = self.platform, self.state
        assert p is not None and st is not None
        clicks = resp.click.sum(1).astype(np.float32)
        watch = resp.watch.sum(1)
        clicked_topics = resp.extra.get("clicked_topics")
        if clicked_topics is None:
            clicked_topics = np.einsum(
                "bk,bkt->bt", resp.click.astype(np.float32), self.catalog.topics_normalized[items]
            )
        decay = np.where(clicks > 0, self.config.episode.history_decay, 1.0)[:, None]
        p.topic_history *= decay
        p.topic_history += clicked_topics
        p.ema_click = EMA * p.ema_click + (1.0 - EMA) * clicks
        p.ema_watch = EMA * p.ema_watch + (1.0 - EMA) * watch
        p.session_clicks += clicks
        p.session_watch += watch
        p.total_clicks += clicks
        p.total_steps += 1.0
        p.n_follows += resp.follow.sum(1)
        p.log_clicks(items, resp.click)
        p.steps_since_instruction += 1.0
        who = np.flatnonzero(resp.instructed)
        if who.size:
            vectors = resp.extra.get("instruction_vector")
            if vectors is None:  # free text (e.g. an LLM user): parse it
                vectors = np.stack([self.parser.vector(resp.instruction[i]) for i in who])
            p.instruction[who] = vectors
            p.steps_since_instruction[who] = 0.0
            p.instructions_total[who] += 1.0

    def _step_info(self, step: Responded) -> dict[str, Any]:
        resp, items = step.responses, step.items
        info: dict[str, Any] = {
            "episode_id": self.episode_id.copy(),
            "session": step.session_index,
            "step_in_session": step.step_in_session,
            "item_index": items,
            "item_ids": self.catalog.item_ids[items],
            "shown": step.valid,
            "n_duplicates": (~step.valid).sum(1),
            **{key: getattr(resp, key) for key in RESPONSE_KEYS},
            "left": step.left,
            "session_end": step.session_end,
            "returned": step.returned,
            "gap_hours": step.gap,
            "satisfaction": resp.satisfaction,
            "instructed": resp.instructed,
            **{f"reward_{k}": v for k, v in step.terms.items()},
        }
        source = resp.extra.get("decision_source")
        if source is not None:  # LLM users: who decided each user's step
            info["decision_source"] = source
        mode = self.config.episode.text_info
        if mode != "none":
            info["instruction"] = np.array(resp.instruction, dtype=object)
            outcome = resp.extra.get("paraphrase_outcome")
            if outcome is not None:  # hybrid: where each instruction's sentence came from
                source = np.full(len(resp.instructed), None, dtype=object)
                source[np.flatnonzero(resp.instructed)] = outcome
                info["instruction_source"] = source
        if mode == "all":
            titles = self.catalog.titles
            info["titles"] = np.array(
                [[titles[i] for i in row] for row in items.tolist()], dtype=object
            )
            info["reasoning"] = np.array(resp.reasoning, dtype=object)
            info["mindset"] = np.array(resp.mindset, dtype=object)
        return info
