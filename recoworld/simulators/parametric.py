"""The parametric user model: vectorized numpy users, the fast and ground-truth world.

Hidden state per user (``UserState``, arrays ``[B, ...]``): topic interests in [0, 1] (1 =
favourite), a latent taste vector, a static novelty propensity and a session-level one drawn
around it (hierarchical novelty-seeking intent), per-topic fatigue, lifetime topic exposure,
creator affinity / clicks / follows, items seen and consumed, patience, satisfaction, session
counters and the active instruction.

Utility of item i for user b (logit units; every weight is a ``ParametricUserConfig`` field)::

    u = interest_scale * (tn_i . a_b - 0.5)          topic interest (tn_i: topics / count)
      + latent_weight * (z_i . z_b)                  latent match (MovieLens: SVD rating)
      + quality_weight * (2 q_i - 1)                 quality
      + creator_weight * affinity[b, creator(i)]
      + novelty_weight * (nu_session_b - pivot) * nov(b, i)
      - fatigue_weight * (tn_i . fatigue_b)
      + instruction_weight * (tn_i . instr_b)        while an instruction is active
      - 2 * consumed(b, i)                           rewatching is rare

with nov(b, i) = 0.5 * tn_i . exp(-exposure_b / scale) + 0.25 * [creator never clicked]
+ 0.25 * (1 - popularity percentile), halved for items already shown to the user.

Response to a slate: one multinomial-logit choice over the k items and a no-click option
(utility ``no_click_utility``), logits divided by ``choice_temperature`` and reduced by
``position_bias`` per position; duplicate slots are invalid. The clicked item gets a watch
fraction sigmoid(watch_slope * u + watch_offset + noise), then progressive like (from watch)
-> follow the creator (from affinity, liked only) -> gift (followers only, rarer). Experience
(0.4 + 0.6 * watch for a click, 0 otherwise) moves satisfaction by ``satisfaction_rate``. The
leave hazard is sigmoid(leave_bias + boredom (1 - sat) + unmet novelty + depth - patience).
A user about to leave may write an instruction instead (once per session by default): less of
its most fatigued topic, more of its best unfatigued topic, and something new when its
novelty wish is unmet. Between sessions it returns with probability
sigmoid(return_bias + return_satisfaction_weight * (sat - 0.5)) after an exponential gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recoworld.arrays import gather_rows, scatter_rows
from recoworld.catalog.catalog import Catalog
from recoworld.config import ParametricUserConfig
from recoworld.simulators.base import BatchState, Responses
from recoworld.simulators.instructions import Instruction, render_instruction

INACTIVE = np.iinfo(np.int32).max // 2
COMPONENTS = ("interest", "latent", "quality", "creator", "novelty", "fatigue", "instruction")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class UserState(BatchState):
    """Hidden state of B parametric users (see module docstring)."""

    interest: np.ndarray  # [B, T] float32 in [0, 1]
    latent: np.ndarray  # [B, D] float32
    novelty_static: np.ndarray  # [B] float32 in [0, 1]
    novelty_session: np.ndarray  # [B] float32 in [0, 1]
    fatigue: np.ndarray  # [B, T] float32 >= 0
    exposure: np.ndarray  # [B, T] float32 >= 0 (lifetime clicked topic mass)
    creator_affinity: np.ndarray  # [B, C] float32 >= 0
    creator_clicks: np.ndarray  # [B, C] float32 >= 0
    follows: np.ndarray  # [B, C] bool
    seen: np.ndarray  # [B, N] bool
    consumed: np.ndarray  # [B, N] bool
    patience: np.ndarray  # [B] float32 >= 0
    satisfaction: np.ndarray  # [B] float32 in [0, 1]
    session_step: np.ndarray  # [B] int32
    session_index: np.ndarray  # [B] int32
    instructions_in_session: np.ndarray  # [B] int32
    instruction_vec: np.ndarray  # [B, T] float32 in {-1, 0, 1}
    instruction_age: np.ndarray  # [B] int32 steps since the last instruction
    population_row: np.ndarray  # [B] int64 row of the fitted population (-1 = sampled)


@dataclass(frozen=True, eq=False)
class FittedPopulation:
    """Per-user parameters fitted to real data; users are drawn from these rows."""

    interest: np.ndarray  # [U, T]
    latent: np.ndarray  # [U, D]
    novelty_static: np.ndarray  # [U]
    patience: np.ndarray  # [U]
    name: str = "fitted"

    def __len__(self) -> int:
        return len(self.novelty_static)


class ParametricUserModel:
    """Vectorized parametric users over a catalog (implements ``UserSimulator``)."""

    def __init__(
        self,
        catalog: Catalog,
        config: ParametricUserConfig | None = None,
        population: FittedPopulation | None = None,
    ) -> None:
        self.catalog = catalog
        self.config = config or ParametricUserConfig()
        if self.config.source == "movielens" and population is None:
            raise ValueError("users.source='movielens' needs a fitted population")
        if population is not None:
            if population.interest.shape[1] != catalog.n_topics:
                raise ValueError("fitted population topics do not match the catalog")
            if population.latent.shape[1] != catalog.latent_dim:
                raise ValueError("fitted population latent_dim does not match the catalog")
        self.population = population
        self._tn = catalog.topics_normalized
        self._nov_pop = (1.0 - catalog.popularity_percentile).astype(np.float32)

    # ------------------------------------------------------------------ users
    def sample_users(self, n_users: int, rng: np.random.Generator) -> UserState:
        """B new users (fresh state)."""
        cat = self.catalog
        t, d, c, n = cat.n_topics, cat.latent_dim, cat.n_creators, cat.n_items
        f32 = np.float32
        state = UserState(
            interest=np.zeros((n_users, t), f32),
            latent=np.zeros((n_users, d), f32),
            novelty_static=np.zeros(n_users, f32),
            novelty_session=np.zeros(n_users, f32),
            fatigue=np.zeros((n_users, t), f32),
            exposure=np.zeros((n_users, t), f32),
            creator_affinity=np.zeros((n_users, c), f32),
            creator_clicks=np.zeros((n_users, c), f32),
            follows=np.zeros((n_users, c), dtype=bool),
            seen=np.zeros((n_users, n), dtype=bool),
            consumed=np.zeros((n_users, n), dtype=bool),
            patience=np.zeros(n_users, f32),
            satisfaction=np.zeros(n_users, f32),
            session_step=np.zeros(n_users, dtype=np.int32),
            session_index=np.zeros(n_users, dtype=np.int32),
            instructions_in_session=np.zeros(n_users, dtype=np.int32),
            instruction_vec=np.zeros((n_users, t), f32),
            instruction_age=np.zeros(n_users, dtype=np.int32),
            population_row=np.zeros(n_users, dtype=np.int64),
        )
        self.replace_users(state, np.arange(n_users), rng)
        return state

    def replace_users(self, state: UserState, rows: np.ndarray, rng: np.random.Generator) -> None:
        """Put new users into ``rows`` of ``state`` in place (autoreset without allocating
        [n, N] arrays): draw their traits, clear everything they have lived through."""
        cfg = self.config
        n_new = len(rows)
        t, d = self.catalog.n_topics, self.catalog.latent_dim
        if self.population is not None and cfg.source == "movielens":
            pop_rows = rng.integers(0, len(self.population), size=n_new)
            state.interest[rows] = self.population.interest[pop_rows]
            state.latent[rows] = self.population.latent[pop_rows]
            state.novelty_static[rows] = self.population.novelty_static[pop_rows]
            state.patience[rows] = self.population.patience[pop_rows]
            state.population_row[rows] = pop_rows
        else:
            # Dirichlet(concentration) draws as normalised gammas; only the ratio to the
            # favourite topic matters, so normalising by the max is enough.
            g = rng.standard_gamma(cfg.interest_concentration, size=(n_new, t))
            state.interest[rows] = g / np.maximum(g.max(axis=1, keepdims=True), 1e-30)
            state.latent[rows] = rng.normal(0.0, 1.0 / np.sqrt(d), size=(n_new, d))
            state.novelty_static[rows] = rng.beta(
                cfg.novelty_static_a, cfg.novelty_static_b, size=n_new
            )
            state.patience[rows] = rng.gamma(4.0, cfg.patience_mean / 4.0, size=n_new)
            state.population_row[rows] = -1
        for name in ("fatigue", "exposure", "creator_affinity", "creator_clicks", "follows",
                     "seen", "consumed", "session_step", "session_index",
                     "instructions_in_session", "instruction_vec"):  # fmt: skip
            getattr(state, name)[rows] = 0
        state.satisfaction[rows] = cfg.satisfaction_init
        state.instruction_age[rows] = INACTIVE
        state.novelty_session[rows] = self._draw_session_novelty(state.novelty_static[rows], rng)

    def _draw_session_novelty(self, static: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        spread = self.config.novelty_session_spread
        return np.clip(static + rng.normal(0.0, spread, size=static.shape), 0.0, 1.0).astype(
            np.float32
        )

    # ------------------------------------------------------------------ utilities
    def novelty(self, state: UserState, items: np.ndarray, tn: np.ndarray | None = None):
        """nov(b, i) in [0, 1] for items [B, m] (``tn``: their normalised topics, if known)."""
        tn = self._tn[items] if tn is None else tn  # [B, m, T]
        fresh_topic = np.exp(-state.exposure / self.config.novelty_exposure_scale)
        topic_nov = np.einsum("bmt,bt->bm", tn, fresh_topic)
        creator_new = gather_rows(state.creator_clicks, self.catalog.creator[items]) == 0
        nov = 0.5 * topic_nov + 0.25 * creator_new + 0.25 * self._nov_pop[items]
        return np.where(gather_rows(state.seen, items), 0.5 * nov, nov).astype(np.float32)

    def utility_components(
        self, state: UserState, items: np.ndarray, tn: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """([B, m, 7] utility terms in ``COMPONENTS`` order, [B, m] novelty of the items).
        The terms' sum minus the rewatch penalty is the utility."""
        cfg, cat = self.config, self.catalog
        tn = self._tn[items] if tn is None else tn  # [B, m, T]
        nov = self.novelty(state, items, tn)
        comps = np.empty((*items.shape, len(COMPONENTS)), dtype=np.float32)
        comps[..., 0] = cfg.interest_scale * (np.einsum("bmt,bt->bm", tn, state.interest) - 0.5)
        comps[..., 1] = cfg.latent_weight * np.einsum("bmd,bd->bm", cat.latent[items], state.latent)
        comps[..., 2] = cfg.quality_weight * (2.0 * cat.quality[items] - 1.0)
        comps[..., 3] = cfg.creator_weight * gather_rows(state.creator_affinity, cat.creator[items])
        pivot = (state.novelty_session - cfg.novelty_pivot)[:, None]
        comps[..., 4] = cfg.novelty_weight * pivot * nov
        comps[..., 5] = -cfg.fatigue_weight * np.einsum("bmt,bt->bm", tn, state.fatigue)
        active = (state.instruction_age < cfg.instruction_memory)[:, None]
        instr = np.einsum("bmt,bt->bm", tn, state.instruction_vec)
        comps[..., 6] = np.where(active, cfg.instruction_weight * instr, 0.0)
        return comps, nov

    def utility(self, state: UserState, items: np.ndarray) -> np.ndarray:
        """Ground-truth utility [B, m] of items [B, m] for each user, right now."""
        comps, _ = self.utility_components(state, items)
        return comps.sum(-1) - 2.0 * gather_rows(state.consumed, items)

    def choice_probabilities(self, utility: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """[B, k + 1] MNL probabilities over the slate positions and no-click (last)."""
        cfg = self.config
        k = utility.shape[1]
        logits = (utility - cfg.position_bias * np.arange(k, dtype=np.float32)) / (
            cfg.choice_temperature
        )
        logits = np.where(valid, logits, -np.inf)
        no_click = np.full((utility.shape[0], 1), cfg.no_click_utility / cfg.choice_temperature)
        full = np.concatenate([logits, no_click], axis=1)
        full = full - full.max(axis=1, keepdims=True)
        e = np.exp(full)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def leave_probability(self, state: UserState, unmet_novelty: np.ndarray) -> np.ndarray:
        cfg = self.config
        logit = (
            cfg.leave_bias
            + cfg.leave_boredom_weight * (1.0 - state.satisfaction)
            + cfg.leave_novelty_weight * unmet_novelty
            + cfg.leave_depth_weight * state.session_step
            - state.patience
        )
        return sigmoid(logit).astype(np.float32)

    # ------------------------------------------------------------------ step
    def respond(
        self,
        state: UserState,
        items: np.ndarray,
        valid: np.ndarray,
        rng: np.random.Generator,
        text: str = "all",
    ) -> Responses:
        """Answer slates ``items`` [B, k] (``valid`` [B, k] masks duplicate slots)."""
        cfg, cat = self.config, self.catalog
        b, k = items.shape
        rows = np.arange(b)
        tn = self._tn[items]  # [B, k, T]
        comps, nov_shown = self.utility_components(state, items, tn)
        util = comps.sum(-1) - 2.0 * gather_rows(state.consumed, items)
        probs = self.choice_probabilities(util, valid)
        # Gumbel-max sample of one option per user (index k = no click)
        gumbel = -np.log(-np.log(rng.random((b, k + 1)) + 1e-12) + 1e-12)
        logp = np.log(np.maximum(probs, 1e-30))
        choice = np.argmax(np.where(probs > 0, logp + gumbel, -np.inf), axis=1)
        clicked_any = choice < k
        click = np.zeros((b, k), dtype=bool)
        click[rows[clicked_any], choice[clicked_any]] = True

        ci = np.minimum(choice, k - 1)  # chosen slot (meaningful where clicked_any)
        chosen_item = items[rows, ci]
        chosen_u = util[rows, ci]
        w = sigmoid(
            cfg.watch_slope * chosen_u + cfg.watch_offset + cfg.watch_noise * rng.normal(size=b)
        ).astype(np.float32)
        w = np.where(clicked_any, w, 0.0).astype(np.float32)
        watch = np.zeros((b, k), dtype=np.float32)
        watch[rows[clicked_any], ci[clicked_any]] = w[clicked_any]

        creator = cat.creator[chosen_item]
        aff = state.creator_affinity[rows, creator]
        liked = clicked_any & (rng.random(b) < sigmoid(cfg.like_bias + cfg.like_watch_weight * w))
        already = state.follows[rows, creator]
        p_follow = sigmoid(cfg.follow_bias + cfg.follow_affinity_weight * aff)
        new_follow = liked & ~already & (rng.random(b) < p_follow)
        following = already | new_follow
        p_gift = sigmoid(cfg.gift_bias + cfg.gift_affinity_weight * aff + w)
        gifted = clicked_any & following & (rng.random(b) < p_gift)
        like = np.zeros((b, k), dtype=bool)
        follow = np.zeros((b, k), dtype=bool)
        gift = np.zeros((b, k), dtype=bool)
        like[rows, ci] = liked
        follow[rows, ci] = new_follow
        gift[rows, ci] = gifted

        # ---- state updates (hidden) -----------------------------------------------
        n_valid = np.maximum(valid.sum(1), 1).astype(np.float32)
        shown_topics = np.einsum("bk,bkt->bt", valid.astype(np.float32), tn) / n_valid[:, None]
        clicked_topics = np.where(clicked_any[:, None], self._tn[chosen_item], 0.0)
        state.fatigue *= cfg.fatigue_decay
        state.fatigue += cfg.fatigue_show_rate * shown_topics + cfg.fatigue_click_rate * (
            clicked_topics
        )
        state.exposure += clicked_topics * w[:, None]
        c_rows, c_cre = rows[clicked_any], creator[clicked_any]
        state.creator_clicks[c_rows, c_cre] += 1.0
        gain = cfg.affinity_lr * (w[clicked_any] - 0.4 + 0.5 * liked[clicked_any])
        state.creator_affinity[c_rows, c_cre] = np.clip(
            state.creator_affinity[c_rows, c_cre] + gain, 0.0, 3.0
        )
        state.follows[rows[new_follow], creator[new_follow]] = True
        scatter_rows(state.seen, items, True)  # duplicate slots repeat a shown item
        state.consumed[c_rows, chosen_item[clicked_any]] = True
        state.interest += (
            cfg.interest_consumption_lr
            * w[:, None]
            * (clicked_topics - clicked_topics.sum(1, keepdims=True) * state.interest)
        )
        np.clip(state.interest, 0.0, 1.0, out=state.interest)
        experience = np.where(clicked_any, 0.4 + 0.6 * w, 0.0)
        state.satisfaction += cfg.satisfaction_rate * (experience - state.satisfaction)
        state.session_step += 1
        state.instruction_age += 1

        # ---- leave or instruct ----------------------------------------------------------
        slate_nov = (nov_shown * valid).sum(1) / n_valid
        unmet = np.maximum(state.novelty_session - slate_nov, 0.0)
        p_leave = self.leave_probability(state, unmet)
        leave = rng.random(b) < p_leave
        can_instruct = state.instructions_in_session < cfg.max_instructions_per_session
        instructed = leave & can_instruct & (rng.random(b) < cfg.instruction_prob)
        leave &= ~instructed
        instruction: list[str | None] = [None] * b
        instruction_vector = None
        if instructed.any():
            who = np.flatnonzero(instructed)
            instruction_vector = self._instruct(state, who, unmet)
            if text != "none":
                instruction = self._instruction_text(who, instruction_vector, instruction)

        resp = Responses(
            click=click,
            watch=watch,
            like=like,
            follow=follow,
            gift=gift,
            utility=util.astype(np.float32),
            leave=leave,
            satisfaction=state.satisfaction.copy(),
            instructed=instructed,
            instruction=instruction,
            extra={
                "p_leave": p_leave,
                "choice_probs": probs,
                "novelty": nov_shown,
                # [n_instructed, T + 1] fields of the instructions (rows: flatnonzero)
                "instruction_vector": instruction_vector,
                "clicked_topics": clicked_topics,  # [B, T] normalised topics of the click
            },
        )
        if text == "all":
            resp.reasoning = self.reasoning(state, items, comps, choice, w, instructed)
            resp.mindset = self.mindset(state, unmet)
        else:
            resp.reasoning = [None] * b
            resp.mindset = [None] * b
        return resp

    def _instruct(self, state: UserState, who: np.ndarray, unmet: np.ndarray) -> np.ndarray:
        """Instruction fields from hidden state for users ``who``, as [n, T + 1] vectors
        (+1 more, -1 less, last = novelty); records them as the users' active instruction."""
        n, t = len(who), self.catalog.n_topics
        ar = np.arange(n)
        fat = state.fatigue[who]
        less = np.where(fat.max(1) > 0.5, fat.argmax(1), -1)
        want = state.interest[who] - 0.5 * fat
        has_less = less >= 0
        want[ar[has_less], less[has_less]] = -np.inf
        more = want.argmax(1)
        vec = np.zeros((n, t + 1), dtype=np.float32)
        vec[ar, more] = 1.0
        vec[ar[has_less], less[has_less]] = -1.0
        vec[:, t] = unmet[who] > 0.15
        state.instruction_vec[who] = vec[:, :t]
        state.instruction_age[who] = 0
        state.instructions_in_session[who] += 1
        return vec

    def _instruction_text(
        self, who: np.ndarray, vec: np.ndarray, out: list[str | None]
    ) -> list[str | None]:
        """Templated sentences for the instructing users (a loop over those few only)."""
        names = self.catalog.topic_names
        out = list(out)
        for j, b in enumerate(who):
            inst = Instruction(
                more=[names[i] for i in np.flatnonzero(vec[j, :-1] > 0)],
                less=[names[i] for i in np.flatnonzero(vec[j, :-1] < 0)],
                novelty=bool(vec[j, -1]),
            )
            out[b] = render_instruction(inst, variant=int(b))
        return out

    # ------------------------------------------------------------------ sessions
    def end_session(
        self, state: UserState, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """For users ``rows`` whose session ended: (returns [n] bool, gap hours [n])."""
        cfg = self.config
        sat = state.satisfaction[rows]
        p = sigmoid(cfg.return_bias + cfg.return_satisfaction_weight * (sat - 0.5))
        returns = rng.random(len(rows)) < p
        gap = rng.exponential(cfg.return_gap_mean_hours * (1.5 - sat))
        return returns, gap.astype(np.float32)

    def return_probability(self, state: UserState) -> np.ndarray:
        cfg = self.config
        return sigmoid(
            cfg.return_bias + cfg.return_satisfaction_weight * (state.satisfaction - 0.5)
        ).astype(np.float32)

    def start_session(self, state: UserState, rows: np.ndarray, rng: np.random.Generator) -> None:
        """Open the next session for users ``rows`` (after a gap)."""
        cfg = self.config
        state.novelty_session[rows] = self._draw_session_novelty(state.novelty_static[rows], rng)
        state.fatigue[rows] *= cfg.fatigue_session_carry
        state.creator_affinity[rows] *= cfg.affinity_session_decay
        drift = rng.normal(0.0, cfg.interest_drift, size=state.interest[rows].shape)
        state.interest[rows] = np.clip(state.interest[rows] + drift, 0.0, 1.0)
        state.satisfaction[rows] = 0.5 * state.satisfaction[rows] + 0.5 * cfg.satisfaction_init
        state.session_step[rows] = 0
        state.session_index[rows] += 1
        state.instructions_in_session[rows] = 0
        state.instruction_age[rows] = INACTIVE

    # ------------------------------------------------------------------ text
    def reasoning(
        self,
        state: UserState,
        items: np.ndarray,
        comps: np.ndarray,
        choice: np.ndarray,
        watch: np.ndarray,
        instructed: np.ndarray,
    ) -> list[str | None]:
        """One grounded sentence per user: why it clicked (or skipped), from the utility terms."""
        cat = self.catalog
        k = items.shape[1]
        main = comps.argmax(-1)  # strongest positive term per item
        worst = comps.argmin(-1)
        out: list[str | None] = []
        for b in range(items.shape[0]):
            if choice[b] < k:
                i = int(items[b, choice[b]])
                why = self._reason_phrase(int(main[b, choice[b]]), i, positive=True)
                out.append(f'Clicked "{cat.titles[i]}" ({why}); watched {watch[b]:.0%}.')
            else:
                j = int(np.argmax(comps[b].sum(-1)))
                i = int(items[b, j])
                why = self._reason_phrase(int(worst[b, j]), i, positive=False)
                text = f"Skipped the whole slate; even the best one was {why}."
                if instructed[b]:
                    text += " Telling the app what I want."
                out.append(text)
        return out

    def _reason_phrase(self, component: int, item: int, positive: bool) -> str:
        cat = self.catalog
        topics = " and ".join(cat.topic_list(item))
        name = COMPONENTS[component]
        if positive:
            return {
                "interest": f"I'm into {topics}",
                "latent": "it's just my kind of thing",
                "quality": "it looked well made",
                "creator": f"I like {cat.creator_names[cat.creator[item]]}",
                "novelty": "something new for me",
                "fatigue": f"{topics} again, but fine",
                "instruction": "it's what I asked for",
            }[name]
        return {
            "interest": f"{topics}, not my thing",
            "latent": "not my style",
            "quality": "low quality",
            "creator": "from a creator I don't follow",
            "novelty": "more of the same",
            "fatigue": f"{topics} again, I've had enough of it",
            "instruction": "the opposite of what I asked for",
        }[name]

    def mindset(self, state: UserState, unmet: np.ndarray) -> list[str | None]:
        """A short description of each user's current mood, grounded in hidden state."""
        names = self.catalog.topic_names
        fat_top = state.fatigue.argmax(1)
        fat_max = state.fatigue.max(1)
        out: list[str | None] = []
        for b in range(len(unmet)):
            sat = float(state.satisfaction[b])
            mood = "enjoying this" if sat > 0.6 else "so-so" if sat > 0.35 else "getting bored"
            parts = [f"{mood} (satisfaction {sat:.2f})"]
            if unmet[b] > 0.15:
                parts.append("craving something new")
            if fat_max[b] > 0.8:
                parts.append(f"tired of {names[fat_top[b]]}")
            out.append("; ".join(parts))
        return out
