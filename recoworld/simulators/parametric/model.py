"""The parametric user model: vectorized numpy users, the fast and ground-truth world.

Hidden state per user (``UserState``, arrays ``[B, ...]``): topic interests in [0, 1] (1 =
favourite), a latent taste vector, a static novelty propensity and a session-level one drawn
around it (hierarchical novelty-seeking intent), per-topic fatigue, lifetime topic exposure,
creator affinity / clicks / follows, items seen and consumed, patience, satisfaction, session
counters and the active instruction.

Utility of item i for user b (logit units; every weight is a ``ParametricUserConfig`` field)::

    u = interest_scale * tn_i . (a_b - base)         topic interest (tn_i: topics / count)
      + latent_weight * (z_i . z_b)                  latent match (MovieLens: SVD rating)
      + quality_weight * (2 q_i - 1)                 quality
      + creator_weight * affinity[b, creator(i)]
      + novelty_weight * (nu_session_b - pivot) * nov(b, i)
      - fatigue_weight * (tn_i . fatigue_b)
      + instruction_weight * (tn_i . instr_b)        while an instruction is active
      + popularity_weight * pz_i                     pz_i: log(1 + count), z-scored
      + era_weight * (exp(-|r_i - e_b| / era_scale) - m(e_b))   release era
      - 2 * consumed(b, i)                           rewatching is rare

``base`` is the population's per-topic interest (0.5 for every topic for sampled users; the
mean fitted interest for MovieLens users, so that a genre everyone likes, such as Drama, is
not every user's favourite). r_i is the item's release-time percentile in the catalog and
e_b the user's preferred era on the same scale (sampled: Beta(era_a, era_b); fitted: the
mean release percentile of the user's liked films); m(e) is the mean of the match over the
catalog, so the era term (like the popularity term) averages 0 over the catalog. For
MovieLens-fitted users the five preference weights (interest, latent, quality, popularity,
era) are fitted by conditional logit on a validation split of the real ratings
(``movielens_users``) unless ``fitted_weights`` is off.

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

Implementation: the per-step model (utilities, choice, responses, state updates, leave
decision) is one numba-compiled pass over the B users (``parametric_kernels``), drawing from
the world's ``np.random.Generator`` — one code path for B = 1 and B = 100,000, no Python
loop per user. Utilities for any items (evaluation, the oracle) come from the same compiled
function (``item_terms``). The kernels module is imported on first use, not with the
package (``parametric_kernels`` says why). Session boundaries, instructions and text stay in
numpy/Python because they touch only the few users concerned. Parameters reach the kernels
as one packed vector (``parametric_params.PARAM_NAMES``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from recoworld.catalog.catalog import Catalog
from recoworld.core.arrays import bitset_width
from recoworld.simulators.base import Responses
from recoworld.simulators.instructions.lexical import Instruction, render_instruction
from recoworld.simulators.parametric.config import ParametricUserConfig
from recoworld.simulators.parametric.params import pack_params
from recoworld.simulators.parametric.state import FittedPopulation, UserState

if TYPE_CHECKING:
    from recoworld.catalog.movielens import MovieLensData
    from recoworld.simulators.parametric.config import SegmentSpec
    from recoworld.simulators.parametric.persona import Persona
    from recoworld.simulators.parametric.segments import SegmentedTraits

INACTIVE = np.iinfo(np.int32).max // 2
# Utility terms, in the order of ``utility_components`` (the LLM user relies on interest and
# latent being the first two).
COMPONENTS = (
    "interest", "latent", "quality", "creator", "novelty", "fatigue", "instruction",
    "popularity", "era",
)  # fmt: skip


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def popularity_z(popularity: np.ndarray) -> np.ndarray:
    """[N] log(1 + popularity count), z-scored over the catalog (the popularity term)."""
    x = np.log1p(np.asarray(popularity, dtype=np.float64))
    return ((x - x.mean()) / max(float(x.std()), 1e-12)).astype(np.float32)


def release_percentile(release_time: np.ndarray) -> np.ndarray:
    """[N] release-time percentile in [0, 1] (1 = newest; ties share their mean rank): the
    scale of the era term, so one era width fits films over decades and videos over a year."""
    x = np.asarray(release_time, dtype=np.float64)
    srt = np.sort(x)
    lo = np.searchsorted(srt, x, side="left")
    hi = np.searchsorted(srt, x, side="right") - 1
    return ((lo + hi) / 2.0 / max(len(x) - 1, 1)).astype(np.float32)


class TraitStream:
    """New users' traits in a fixed order: drawn from a generator in blocks of ``block``
    users and handed out one after another, so that the j-th user is the same whether users
    arrive one at a time or many at once (common random numbers across policies: in two runs
    with the same seed, episode j meets the same user although different policies end
    episodes at different steps). A different generator object restarts the stream."""

    def __init__(self, block: int = 256) -> None:
        self.block = block
        self._rng: np.random.Generator | None = None
        self._buffer: dict[str, np.ndarray] = {}
        self._pos = 0

    def take(
        self,
        n: int,
        rng: np.random.Generator,
        draw: Callable[[int, np.random.Generator], dict[str, np.ndarray]],
    ) -> dict[str, np.ndarray]:
        if rng is not self._rng:
            self._rng, self._buffer, self._pos = rng, {}, 0
        parts: list[dict[str, np.ndarray]] = []
        while n > 0:
            size = len(next(iter(self._buffer.values()))) if self._buffer else 0
            if self._pos >= size:
                self._buffer, self._pos = draw(self.block, rng), 0
                size = self.block
            m = min(n, size - self._pos)
            parts.append({k: v[self._pos : self._pos + m] for k, v in self._buffer.items()})
            self._pos += m
            n -= m
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class ParametricUserModel:
    """Vectorized parametric users over a catalog (implements ``UserSimulator``)."""

    def __init__(
        self,
        catalog: Catalog,
        config: ParametricUserConfig | None = None,
        population: FittedPopulation | None = None,
    ) -> None:
        self.catalog = catalog
        self.config = config or ParametricUserConfig()  # property: also packs the params
        if self.config.source == "movielens" and population is None:
            raise ValueError("users.source='movielens' needs a fitted population")
        if population is not None:
            if population.interest.shape[1] != catalog.n_topics:
                raise ValueError("fitted population topics do not match the catalog")
            if population.latent.shape[1] != catalog.latent_dim:
                raise ValueError("fitted population latent_dim does not match the catalog")
        self.population = population
        self._trait_stream = TraitStream()
        self.segments: SegmentedTraits | None = None
        fitted = population is not None and self.config.source == "movielens"
        if fitted and self.config.fitted_weights and population.weights:
            self.config = self.config.model_copy(update=population.weights)
        base = population.interest_base if fitted else None
        self._interest_base = (
            np.full(catalog.n_topics, 0.5, np.float32) if base is None else base.astype(np.float32)
        )
        self._nov_pop = (1.0 - catalog.popularity_percentile).astype(np.float32)
        self._item_pop = popularity_z(catalog.popularity)
        self._item_era = release_percentile(catalog.release_time)
        self._era_mean = np.empty(0)  # set with the config (depends on era_scale)
        self._set_era_mean()

    @property
    def config(self) -> ParametricUserConfig:
        return self._config

    @config.setter
    def config(self, value: ParametricUserConfig) -> None:
        self._config = value
        self._params = pack_params(value)
        if hasattr(self, "_item_era"):
            self._set_era_mean()

    def _set_era_mean(self, grid: int = 101) -> None:
        """Mean era match over the catalog for eras 0, 0.01, ..., 1 (the era term's centre)."""
        eras = np.linspace(0.0, 1.0, grid)[:, None]
        sim = np.exp(-np.abs(self._item_era[None, :] - eras) / self._config.era_scale)
        self._era_mean = sim.mean(axis=1)

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
            seen=np.zeros((n_users, bitset_width(n)), dtype=np.uint8),
            consumed=np.zeros((n_users, bitset_width(n)), dtype=np.uint8),
            patience=np.zeros(n_users, f32),
            satisfaction=np.zeros(n_users, f32),
            session_step=np.zeros(n_users, dtype=np.int32),
            session_index=np.zeros(n_users, dtype=np.int32),
            instructions_in_session=np.zeros(n_users, dtype=np.int32),
            instruction_vec=np.zeros((n_users, t), f32),
            instruction_age=np.zeros(n_users, dtype=np.int32),
            population_row=np.zeros(n_users, dtype=np.int64),
            era=np.zeros(n_users, f32),
            segment=np.full(n_users, -1, dtype=np.int64),
        )
        self.replace_users(state, np.arange(n_users), rng)
        return state

    def replace_users(
        self, state: UserState, rows: np.ndarray, rng: np.random.Generator, clear: bool = True
    ) -> None:
        """Put new users into ``rows`` of ``state`` in place (autoreset without allocating
        [n, N] arrays): take the next users of the trait stream (``TraitStream``: the j-th
        user drawn from ``rng`` is the same however the draws are batched, so every policy
        run with the same seed meets the same users in the same order), clear everything
        they have lived through (``clear=False`` leaves that to the caller: the world's
        compiled step clears those rows in its own pass)."""
        cfg = self.config
        if len(rows) == 0:
            return
        traits = self._trait_stream.take(len(rows), rng, self._draw_traits)
        for name in ("interest", "latent", "novelty_static", "patience", "era", "population_row"):
            getattr(state, name)[rows] = traits[name]
        state.segment[rows] = traits.get("segment", -1)
        spread = cfg.novelty_session_spread
        state.novelty_session[rows] = np.clip(
            traits["novelty_static"] + spread * traits["session_noise"], 0.0, 1.0
        ).astype(np.float32)
        if not clear:
            return
        for name in ("fatigue", "exposure", "creator_affinity", "creator_clicks", "follows",
                     "seen", "consumed", "session_step", "session_index",
                     "instructions_in_session", "instruction_vec"):  # fmt: skip
            getattr(state, name)[rows] = 0
        state.satisfaction[rows] = cfg.satisfaction_init
        state.instruction_age[rows] = INACTIVE

    def use_segments(
        self, segments: list[SegmentSpec] | None, movielens: MovieLensData | None = None
    ) -> None:
        """Draw new users from weighted segments (``recoworld.simulators.parametric.segments``; each
        user's segment is in ``state.segment``), or from one population when None."""
        self.segments = None
        if segments:
            from recoworld.simulators.parametric.segments import SegmentedTraits, validate_segments

            validate_segments(segments, self.catalog, self.population, movielens)
            self.segments = SegmentedTraits(
                self.catalog, self.config, self.population, segments, movielens
            )
        self._trait_stream = TraitStream()

    def _draw_traits(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Traits of ``n`` new users (vectorised draws from ``rng``)."""
        if self.segments is not None:
            return self.segments.draw(n, rng)
        cfg = self.config
        t, d = self.catalog.n_topics, self.catalog.latent_dim
        if self.population is not None and cfg.source == "movielens":
            rows = rng.integers(0, len(self.population), size=n)
            era = self.population.era
            traits = {
                "interest": self.population.interest[rows],
                "latent": self.population.latent[rows],
                "novelty_static": self.population.novelty_static[rows],
                "patience": self.population.patience[rows],
                "era": np.full(n, 0.5, np.float32) if era is None else era[rows],
                "population_row": rows.astype(np.int64),
            }
        else:
            # Dirichlet(concentration) draws as normalised gammas; only the ratio to the
            # favourite topic matters, so normalising by the max is enough.
            g = rng.standard_gamma(cfg.interest_concentration, size=(n, t))
            traits = {
                "interest": g / np.maximum(g.max(axis=1, keepdims=True), 1e-30),
                "latent": rng.normal(0.0, 1.0 / np.sqrt(d), size=(n, d)),
                "novelty_static": rng.beta(cfg.novelty_static_a, cfg.novelty_static_b, size=n),
                "patience": rng.gamma(4.0, cfg.patience_mean / 4.0, size=n),
                "era": rng.beta(cfg.era_a, cfg.era_b, size=n),
                "population_row": np.full(n, -1, dtype=np.int64),
            }
        traits["session_noise"] = rng.standard_normal(n)
        return traits

    def _draw_session_novelty(self, static: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        spread = self.config.novelty_session_spread
        return np.clip(static + rng.normal(0.0, spread, size=static.shape), 0.0, 1.0).astype(
            np.float32
        )

    # ------------------------------------------------------------------ utilities
    def kernel_args(self, state: UserState) -> tuple:
        """The catalog, model and state arrays the compiled kernels take, in their order (from
        the catalog's topic lists to the packed parameters)."""
        cat = self.catalog
        return (
            *cat.topic_lists, cat.latent, cat.quality, cat.creator, self._nov_pop, self._item_pop,
            self._item_era, self._era_mean, self._interest_base, state.interest, state.latent,
            state.era, state.novelty_session, state.fatigue, state.exposure,
            state.creator_affinity, state.creator_clicks, state.seen, state.consumed,
            state.instruction_vec, state.instruction_age, self._params,
        )  # fmt: skip

    def utility_components(
        self, state: UserState, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For items [B, m]: ([B, m, 9] utility terms in ``COMPONENTS`` order, [B, m]
        novelty, [B, m] utility = sum of the terms - 2 x already consumed)."""
        items = np.ascontiguousarray(items, dtype=np.int64)
        comps = np.empty((*items.shape, len(COMPONENTS)), dtype=np.float32)
        nov = np.empty(items.shape, dtype=np.float32)
        util = np.empty(items.shape, dtype=np.float32)
        from recoworld.simulators.parametric.kernels import utility_batch

        utility_batch(items, *self.kernel_args(state), comps, nov, util)
        return comps, nov, util

    def utility(self, state: UserState, items: np.ndarray) -> np.ndarray:
        """Ground-truth utility [B, m] of items [B, m] for each user, right now."""
        return self.utility_components(state, items)[2]

    def relevance(self, state: UserState, items: np.ndarray) -> np.ndarray:
        """Ground-truth graded relevance [B, m] in (0, 1) of items [B, m]: the probability
        that the user clicks the item if it is shown alone at the top of a slate (the choice
        model with one item and the no-click option): sigmoid((u - no_click_utility) / T).
        Monotone in the utility, non-negative, so it serves as the gain of NDCG."""
        cfg = self.config
        x = (self.utility(state, items) - cfg.no_click_utility) / cfg.choice_temperature
        return (1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))).astype(np.float32)

    # ------------------------------------------------------------------ step
    def respond(
        self,
        state: UserState,
        items: np.ndarray,
        valid: np.ndarray,
        rng: np.random.Generator,
        text: str = "all",
        active: np.ndarray | None = None,
        pref: np.ndarray | None = None,
    ) -> Responses:
        """Answer slates ``items`` [B, k] (``valid`` [B, k] masks duplicate slots); updates
        ``state`` in place. One compiled pass over the users does choice, responses, state
        updates and the leave decision; instructions and text are written afterwards for
        the users concerned. ``pref`` [B, k] (optional) replaces the interest and latent
        terms of the utility (the LLM user's score mode). Users outside ``active`` (default:
        all active) are skipped:
        no response, no state change, no text."""
        b, k = items.shape
        active = np.ones(b, dtype=np.bool_) if active is None else np.asarray(active, np.bool_)
        t = self.catalog.n_topics
        items = np.ascontiguousarray(items, dtype=np.int64)
        valid = np.ascontiguousarray(valid, dtype=np.bool_)
        out_b = {n: np.zeros((b, k), dtype=np.bool_) for n in ("click", "like", "follow", "gift")}
        watch = np.zeros((b, k), dtype=np.float32)
        comps = np.zeros((b, k, len(COMPONENTS)), dtype=np.float32)
        nov = np.zeros((b, k), dtype=np.float32)
        util = np.zeros((b, k), dtype=np.float32)
        probs = np.zeros((b, k + 1), dtype=np.float32)
        leave = np.zeros(b, dtype=np.bool_)
        instructed = np.zeros(b, dtype=np.bool_)
        p_leave = np.zeros(b, dtype=np.float32)
        unmet = np.zeros(b, dtype=np.float32)
        choice = np.zeros(b, dtype=np.int64)
        clicked_topics = np.zeros((b, t), dtype=np.float32)
        use_pref = pref is not None
        pref = np.zeros((1, 1), np.float32) if pref is None else np.ascontiguousarray(pref)
        from recoworld.simulators.parametric.kernels import respond_batch

        respond_batch(
            rng, active, items, valid, *self.kernel_args(state), state.follows, state.patience,
            state.satisfaction, state.session_step, state.instructions_in_session,
            out_b["click"], watch, out_b["like"], out_b["follow"], out_b["gift"], comps, nov,
            util, probs, leave, instructed, p_leave, unmet, choice, clicked_topics, pref, use_pref,
        )  # fmt: skip

        instruction: list[str | None] = [None] * b
        instruction_vector = None
        who = np.flatnonzero(instructed)
        if who.size:
            instruction_vector = self.instruct(state, who, unmet)
        resp = Responses(
            click=out_b["click"],
            watch=watch,
            like=out_b["like"],
            follow=out_b["follow"],
            gift=out_b["gift"],
            utility=util,
            leave=leave,
            satisfaction=state.satisfaction.copy(),
            instructed=instructed,
            instruction=instruction,
            extra={
                "p_leave": p_leave,
                "choice_probs": probs,
                "novelty": nov,
                # [n_instructed, T + 1] fields of the instructions (rows: flatnonzero)
                "instruction_vector": instruction_vector,
                "clicked_topics": clicked_topics,  # [B, T] normalised topics of the click
            },
        )
        if who.size and text != "none":
            self.say_instructions(state, who, instruction_vector, resp)
        if text == "all":
            rows = np.flatnonzero(active)
            resp.reasoning = self.reasoning(items, comps, choice, watch.max(1), instructed, rows)
            resp.mindset = self.mindset(state, unmet, rows)
        else:
            resp.reasoning = [None] * b
            resp.mindset = [None] * b
        return resp

    def say_instructions(
        self, state: UserState, who: np.ndarray, vectors: np.ndarray, resp: Responses
    ) -> None:
        """Write the sentences of the instructions of users ``who`` (fields ``vectors``,
        [n, T + 1]) into ``resp.instruction``: templates here; the hybrid simulator
        overrides this to let an LLM speak."""
        resp.instruction = self._instruction_text(who, vectors, resp.instruction)

    def instruct(self, state: UserState, who: np.ndarray, unmet: np.ndarray) -> np.ndarray:
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
    def personas(self, state: UserState, rows: np.ndarray) -> list[Persona]:
        """Personas of users ``rows`` (tastes relative to the population for fitted users)."""
        from recoworld.simulators.parametric.persona import personas

        base = self._interest_base if self.population is not None else None
        return personas(state, rows, self.catalog, base=base)

    def reasoning(
        self,
        items: np.ndarray,
        comps: np.ndarray,
        choice: np.ndarray,
        watch: np.ndarray,
        instructed: np.ndarray,
        rows: np.ndarray,
    ) -> list[str | None]:
        """One grounded sentence for each user in ``rows`` (None for the others): why it
        clicked, or skipped, from its utility terms."""
        cat = self.catalog
        k = items.shape[1]
        main = comps.argmax(-1)  # strongest positive term per item
        worst = comps.argmin(-1)
        out: list[str | None] = [None] * len(items)
        for b in rows:
            if choice[b] < k:
                i = int(items[b, choice[b]])
                why = self._reason_phrase(int(main[b, choice[b]]), i, positive=True)
                out[b] = f'Clicked "{cat.titles[i]}" ({why}); watched {watch[b]:.0%}.'
            else:
                j = int(np.argmax(comps[b].sum(-1)))
                i = int(items[b, j])
                why = self._reason_phrase(int(worst[b, j]), i, positive=False)
                text = f"Skipped the whole slate; even the best one was {why}."
                if instructed[b]:
                    text += " Telling the app what I want."
                out[b] = text
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
                "popularity": "everyone is watching it",
                "era": "it's from the kind of years I like",
            }[name]
        return {
            "interest": f"{topics}, not my thing",
            "latent": "not my style",
            "quality": "low quality",
            "creator": "from a creator I don't follow",
            "novelty": "more of the same",
            "fatigue": f"{topics} again, I've had enough of it",
            "instruction": "the opposite of what I asked for",
            "popularity": "hardly anyone has heard of it",
            "era": "not from the years I like",
        }[name]

    def mindset(self, state: UserState, unmet: np.ndarray, rows: np.ndarray) -> list[str | None]:
        """A short description of the mood of each user in ``rows`` (None for the others),
        grounded in hidden state."""
        from recoworld.simulators.parametric.persona import mood_phrase

        names = self.catalog.topic_names
        out: list[str | None] = [None] * len(unmet)
        for b in rows:
            sat = float(state.satisfaction[b])
            parts = [f"{mood_phrase(sat)} (satisfaction {sat:.2f})"]
            if unmet[b] > 0.15:
                parts.append("craving something new")
            if state.fatigue[b].max() > 0.8:
                parts.append(f"tired of {names[state.fatigue[b].argmax()]}")
            out[b] = "; ".join(parts)
        return out
