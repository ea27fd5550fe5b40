"""Fidelity of simulated users: do they act like their personas, like real MovieLens raters,
and say what they mean? The logic behind ``benchmarks/fidelity.py``.

(a) Persona consistency (``persona_consistency``): slates of items from a user's liked topics
    and from its disliked topics (the persona of ``simulators.parametric.persona``), answered
    by the real ``respond`` on a fresh copy of the user; click rate on liked vs disliked items.

(b) Preference alignment on real MovieLens (``holdout_split``, ``sample_negatives``,
    ``evaluate_scorers``): per user with enough likes, the last ``n_holdout`` liked films
    (by timestamp) are held out; training = the user's ratings strictly before the first
    held-out one (every other rating of other users stays in training: a leave-last-out
    split). Each held-out positive gets ``n_neg`` negatives the user never rated, drawn
    uniformly or from the positive's popularity bin (popularity from training counts). A
    scorer maps (a user's training history, candidates [n, 1 + n_neg], positive in column 0)
    to scores; top-1 accuracy and AUC per row are averaged per user, and users are
    bootstrapped for CIs (paired for differences). ``training_view`` rebuilds the catalog's
    popularity, quality and SVD latent vectors and the users' latent factors from training
    ratings only, so the fitted simulated user sees nothing held out; its preference weights
    are fitted (``movielens_users.fit_preference_weights``) on a validation split of that
    training view (each user's last liked films before the held-out ones).

(c) Instruction consistency (``instruction_consistency``): run a world with random slates
    until enough users have written instructions, parse each instruction text with
    ``InstructionParser`` and compare with the fields the simulator derived from hidden state
    (``Responses.extra["instruction_vector"]``: tired of / craving / something new); for the
    hybrid simulator, also the share of instructions where the LLM paraphrase was rejected
    and the template stood (``HybridUserModel.stats``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from recoworld.catalog.catalog import Catalog
from recoworld.catalog.splits import HeldOutUser
from recoworld.core.stats import bootstrap_ci, paired_bootstrap_ci
from recoworld.metrics import top1_auc
from recoworld.simulators.instructions.lexical import InstructionParser
from recoworld.simulators.parametric.config import ParametricUserConfig
from recoworld.simulators.parametric.model import COMPONENTS, ParametricUserModel
from recoworld.simulators.parametric.movielens_fit import fit_movielens_population, fresh_state
from recoworld.simulators.parametric.persona import Persona, personas
from recoworld.simulators.parametric.state import FittedPopulation, UserState

if TYPE_CHECKING:
    from recoworld.catalog.movielens import MovieLensData
    from recoworld.envs.world import World

# --------------------------------------------------------------------------- statistics


def per_user_mean(values: np.ndarray, row_user: np.ndarray, n_users: int) -> np.ndarray:
    """Mean of per-row ``values`` for each user (``row_user``: user position of each row)."""
    counts = np.bincount(row_user, minlength=n_users)
    if (counts == 0).any():
        raise ValueError("per_user_mean: a user has no rows")
    return np.bincount(row_user, weights=values, minlength=n_users) / counts


# --------------------------------------------------------------------------- (b) split


# --------------------------------------------------------------------------- (b) training view


# --------------------------------------------------------------------------- (b) scorers


class Scorer(Protocol):
    """(a user's training history, candidates [n, m]) -> scores [n, m], higher = preferred.
    A scorer may also define ``score_users(users, items)`` (lists, one entry per user) to
    score all users in one batch (LLM scorers)."""

    def __call__(self, user: HeldOutUser, items: np.ndarray) -> np.ndarray: ...


def _liked(user: HeldOutUser, like_threshold: float) -> np.ndarray:
    liked = user.train_items[user.train_ratings >= like_threshold]
    return liked if len(liked) else user.train_items


def popularity_scorer(train_counts: np.ndarray) -> Scorer:
    """Training-split rating counts (no held-out rating counted)."""
    counts = np.asarray(train_counts, dtype=np.float64)
    return lambda user, items: counts[items]


def genre_cosine_scorer(topics: np.ndarray, like_threshold: float) -> Scorer:
    """Cosine between the user's liked-genre profile (sum of liked films' genre vectors)
    and each item's genre vector."""
    topics = np.asarray(topics, dtype=np.float64)
    norms = np.linalg.norm(topics, axis=1)

    def score(user: HeldOutUser, items: np.ndarray) -> np.ndarray:
        profile = topics[_liked(user, like_threshold)].sum(0)
        profile /= max(np.linalg.norm(profile), 1e-12)
        return topics[items] @ profile / np.maximum(norms[items], 1e-12)

    return score


def year_proximity_scorer(years: np.ndarray, like_threshold: float) -> Scorer:
    """exp(-|item year - mean year of the user's liked films| / 10)."""
    years = np.asarray(years, dtype=np.float64)

    def score(user: HeldOutUser, items: np.ndarray) -> np.ndarray:
        centre = years[_liked(user, like_threshold)].mean()
        return np.exp(-np.abs(years[items] - centre) / 10.0)

    return score


def genre_year_scorer(topics: np.ndarray, years: np.ndarray, like_threshold: float) -> Scorer:
    """Genre cosine + year proximity (both in [0, 1], equal weights)."""
    genre = genre_cosine_scorer(topics, like_threshold)
    year = year_proximity_scorer(years, like_threshold)
    return lambda user, items: genre(user, items) + year(user, items)


def release_years(catalog: Catalog) -> np.ndarray:
    """Release year of each item (from ``release_time``, days since 1970)."""
    return np.floor(catalog.release_time / 365.25 + 1970.0)


class ParametricScorer:
    """The parametric user model's utility for a fresh user fitted (``training_view``)
    to the same real user: the whole utility (``components`` None: every term; fatigue,
    creator affinity and instructions are zero for a fresh user, novelty is not), or the sum
    of ``components`` only (ablations). The population — traits and, with
    ``fitted_weights``, the preference weights fitted on a validation split of the training
    ratings — comes from ``view`` alone; ``population`` overrides it (ablations)."""

    def __init__(
        self,
        view: MovieLensData,
        config: ParametricUserConfig | None = None,
        components: Sequence[str] | None = None,
        population: FittedPopulation | None = None,
    ) -> None:
        cfg = (config or ParametricUserConfig()).model_copy(update={"source": "movielens"})
        if population is None:
            population = fit_movielens_population(view, cfg)
        self.model = ParametricUserModel(view.catalog, cfg, population)
        self.state = fresh_state(self.model, np.arange(len(population)))
        unknown = set(components or ()) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown utility components: {sorted(unknown)}")
        self.columns = None if components is None else [COMPONENTS.index(c) for c in components]

    def score_users(
        self, users: Sequence[HeldOutUser], items: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """All users in one compiled batch (rows padded to the longest item list)."""
        m = max(its.size for its in items)
        flat = np.zeros((len(users), m), dtype=np.int64)
        for j, its in enumerate(items):
            flat[j, : its.size] = its.ravel()
        state = self.state.take(np.array([u.row for u in users], dtype=np.int64))
        comps, _, util = self.model.utility_components(state, flat)
        score = util if self.columns is None else comps[..., self.columns].sum(-1)
        return [score[j, : its.size].reshape(its.shape) for j, its in enumerate(items)]

    def __call__(self, user: HeldOutUser, items: np.ndarray) -> np.ndarray:
        return self.score_users([user], [items])[0]


def score_all(
    scorer: Scorer, users: Sequence[HeldOutUser], items: np.ndarray, row_user: np.ndarray
) -> np.ndarray:
    """Scores [n_rows, m] of every row, by user (one batch when the scorer has
    ``score_users``)."""
    per_user = [items[row_user == j] for j in range(len(users))]
    batch = getattr(scorer, "score_users", None)
    if batch is not None:
        parts = batch(users, per_user)
    else:
        parts = [scorer(user, its) for user, its in zip(users, per_user, strict=True)]
    out = np.empty(items.shape, dtype=np.float64)
    for j, part in enumerate(parts):
        part = np.asarray(part, dtype=np.float64)
        if part.shape != per_user[j].shape:
            raise ValueError(f"scorer returned {part.shape} for {per_user[j].shape} items")
        out[row_user == j] = part
    return out


def zscore_sum(*scores: np.ndarray) -> np.ndarray:
    """Sum of scores, each standardised over all its entries (a parameter-free blend)."""
    out = np.zeros_like(np.asarray(scores[0], dtype=np.float64))
    for s in scores:
        s = np.asarray(s, dtype=np.float64)
        out += (s - s.mean()) / max(float(s.std()), 1e-12)
    return out


def user_metrics(scores: np.ndarray, row_user: np.ndarray, n_users: int) -> dict[str, np.ndarray]:
    """Per-user top-1 and AUC from row scores."""
    top1, auc = top1_auc(scores)
    return {
        "top1": per_user_mean(top1, row_user, n_users),
        "auc": per_user_mean(auc, row_user, n_users),
    }


def compare(
    metrics: dict[str, dict[str, np.ndarray]],
    target: str,
    baselines: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Bootstrap summary of every scorer and the paired differences ``target`` minus each
    baseline; ``pass`` = every difference's CI lies above zero, for top-1 and AUC."""
    summary = {
        name: {m: bootstrap_ci(v, n_boot, seed=seed) for m, v in ms.items()}
        for name, ms in metrics.items()
    }
    diffs: dict[str, dict[str, dict[str, float]]] = {}
    ok = True
    for base in baselines:
        diffs[base] = {}
        for m in ("top1", "auc"):
            d = paired_bootstrap_ci(metrics[target][m], metrics[base][m], n_boot, seed=seed)
            d["excludes_zero_above"] = bool(d["lo"] > 0)
            ok &= d["excludes_zero_above"]
            diffs[base][m] = d
    return {"scorers": summary, "target": target, "paired": diffs, "pass": bool(ok)}


def evaluate_scorers(
    scorers: dict[str, Scorer],
    users: Sequence[HeldOutUser],
    items: np.ndarray,
    row_user: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """(raw scores per scorer [n_rows, m], per-user metrics per scorer)."""
    raw = {name: score_all(s, users, items, row_user) for name, s in scorers.items()}
    metrics = {name: user_metrics(s, row_user, len(users)) for name, s in raw.items()}
    return raw, metrics


# --------------------------------------------------------------------------- (b) LLM personas


def movielens_persona(
    user: HeldOutUser, titles: Sequence[str], like_threshold: float = 4.0, n: int = 5
) -> tuple[list[str], list[str]]:
    """(liked titles, disliked titles) of a MovieLens user from its training ratings: the
    ``n`` most recent rated >= ``like_threshold`` and the ``n`` most recent rated <= 2."""
    liked = user.train_items[user.train_ratings >= like_threshold][::-1][:n]
    disliked = user.train_items[user.train_ratings <= 2][::-1][:n]
    return [titles[i] for i in liked], [titles[i] for i in disliked]


class LLMPersonaScorer:
    """Adapts a ``ContrastiveScorer``-like object (``score(likes, dislikes, items)``) to the
    held-out protocol: ``contrast`` scores after the liked titles minus after the disliked
    titles (users without dislikes fall back to the neutral prompt), ``pmi`` always against
    the neutral prompt (empty dislikes)."""

    def __init__(self, scorer: Any, titles: Sequence[str], mode: str, like_threshold: float):
        if mode not in ("contrast", "pmi"):
            raise ValueError(f"mode must be 'contrast' or 'pmi', got {mode!r}")
        self.scorer, self.titles, self.mode = scorer, list(titles), mode
        self.like_threshold = like_threshold

    def score_users(
        self, users: Sequence[HeldOutUser], items: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        likes, dislikes, rows = [], [], []
        for user, its in zip(users, items, strict=True):
            lk, dk = movielens_persona(user, self.titles, self.like_threshold)
            for row in its:
                likes.append(lk)
                dislikes.append(dk if self.mode == "contrast" else [])
                rows.append(row)
        scores = np.asarray(self.scorer.score(likes, dislikes, np.asarray(rows)), np.float64)
        out, start = [], 0
        for its in items:
            out.append(scores[start : start + len(its)])
            start += len(its)
        return out

    def __call__(self, user: HeldOutUser, items: np.ndarray) -> np.ndarray:
        return self.score_users([user], [items])[0]


# --------------------------------------------------------------------------- (a) personas


def topic_pools(catalog: Catalog, persona: Persona) -> tuple[np.ndarray, np.ndarray]:
    """(items with a liked topic and no disliked one, items with a disliked topic and no
    liked one)."""
    idx = {t: i for i, t in enumerate(catalog.topic_names)}
    has = catalog.topics > 0
    like = has[:, [idx[t] for t in persona.likes]].any(1)
    dislike = (
        has[:, [idx[t] for t in persona.dislikes]].any(1)
        if persona.dislikes
        else np.zeros(catalog.n_items, dtype=bool)
    )
    return np.flatnonzero(like & ~dislike), np.flatnonzero(dislike & ~like)


def persona_slates(
    pools: Sequence[tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    n_liked: int = 2,
    n_disliked: int = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One slate per user: ``n_liked`` distinct items from its liked pool and ``n_disliked``
    from its disliked pool, in random positions. Returns (items [B, k], liked [B, k] bool,
    ok [B] bool: the pools were large enough; other rows hold item 0 and must be skipped)."""
    k = n_liked + n_disliked
    items = np.zeros((len(pools), k), dtype=np.int64)
    liked = np.zeros((len(pools), k), dtype=bool)
    ok = np.zeros(len(pools), dtype=bool)
    for b, (lp, dp) in enumerate(pools):
        if len(lp) < n_liked or len(dp) < n_disliked:
            continue
        its = np.concatenate(
            [rng.choice(lp, n_liked, replace=False), rng.choice(dp, n_disliked, replace=False)]
        )
        lab = np.arange(k) < n_liked
        perm = rng.permutation(k)
        items[b], liked[b], ok[b] = its[perm], lab[perm], True
    return items, liked, ok


def persona_consistency(
    model: ParametricUserModel,
    state: UserState,
    n_rounds: int = 20,
    seed: int = 0,
    n_boot: int = 2000,
) -> dict[str, Any]:
    """Click rate on liked-topic vs disliked-topic items: each round every user answers a
    new slate of 2 liked + 2 disliked items with the real ``respond``, on a fresh copy of its
    state (no fatigue or memory from earlier rounds). Users without disliked topics, or with
    too few items in a pool, are skipped (counted)."""
    n = len(state)
    rows = np.arange(n)
    people = model.personas(state, rows)
    pools = [topic_pools(model.catalog, p) for p in people]
    rng = np.random.default_rng(seed)
    clicks = np.zeros((n, 2))  # liked, disliked
    slots = np.zeros((n, 2))
    usable = np.zeros(n, dtype=bool)
    for _ in range(n_rounds):
        items, liked, ok = persona_slates(pools, rng)
        usable |= ok
        st = state.take(rows)
        resp = model.respond(st, items, np.ones(items.shape, bool), rng, text="none", active=ok)
        click = resp.click & ok[:, None]
        clicks[:, 0] += (click & liked).sum(1)
        clicks[:, 1] += (click & ~liked).sum(1)
        slots[:, 0] += (liked & ok[:, None]).sum(1)
        slots[:, 1] += (~liked & ok[:, None]).sum(1)
    u = np.flatnonzero(usable)
    if len(u) == 0:
        raise ValueError("persona_consistency: no user has both liked and disliked items")
    rate_l, rate_d = clicks[u, 0] / slots[u, 0], clicks[u, 1] / slots[u, 1]
    total = clicks[u].sum()
    return {
        "users": len(u),
        "skipped_users": int(n - len(u)),
        "slates": int(slots[u].sum() / 4),
        "click_rate_liked": bootstrap_ci(rate_l, n_boot, seed=seed),
        "click_rate_disliked": bootstrap_ci(rate_d, n_boot, seed=seed),
        "difference": paired_bootstrap_ci(rate_l, rate_d, n_boot, seed=seed),
        "liked_share_of_clicks": float(clicks[u, 0].sum() / total) if total else float("nan"),
    }


def persona_score_consistency(
    score: Callable[[list[list[str]], list[list[str]], np.ndarray], np.ndarray],
    catalog: Catalog,
    state: UserState,
    n_rounds: int = 2,
    seed: int = 0,
    n_boot: int = 2000,
) -> dict[str, Any]:
    """The same slates for a scorer (e.g. an LLM's ``ContrastiveScorer.score`` with the
    persona's topic names as likes / dislikes): share of slates whose top-scored item is a
    liked one, and pairwise accuracy (liked scored above disliked)."""
    n = len(state)
    people = personas(state, np.arange(n), catalog)
    pools = [topic_pools(catalog, p) for p in people]
    rng = np.random.default_rng(seed)
    top_liked = np.zeros(n)
    pair = np.zeros(n)
    rounds = np.zeros(n)
    for _ in range(n_rounds):
        items, liked, ok = persona_slates(pools, rng)
        u = np.flatnonzero(ok)
        if len(u) == 0:
            break
        s = np.asarray(
            score(
                [list(people[b].likes) for b in u],
                [list(people[b].dislikes) for b in u],
                items[u],
            ),
            dtype=np.float64,
        )
        lk = liked[u]
        top_liked[u] += lk[np.arange(len(u)), s.argmax(1)]
        sl = np.where(lk, s, np.nan)[:, :, None]
        sd = np.where(~lk, s, np.nan)[:, None, :]
        both = lk[:, :, None] & ~lk[:, None, :]
        wins = np.where(both, (sl > sd) + 0.5 * (sl == sd), 0.0).sum((1, 2))
        pair[u] += wins / both.sum((1, 2))
        rounds[u] += 1
    u = np.flatnonzero(rounds > 0)
    if len(u) == 0:
        raise ValueError("persona_score_consistency: no usable user")
    return {
        "users": len(u),
        "top_pick_liked": bootstrap_ci(top_liked[u] / rounds[u], n_boot, seed=seed),
        "pairwise_liked_over_disliked": bootstrap_ci(pair[u] / rounds[u], n_boot, seed=seed),
    }


# --------------------------------------------------------------------------- (c) instructions


def instruction_fields_match(parsed: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per instruction (rows of [n, T + 1] vectors: +1 more, -1 less, last = novelty):
    whether the parsed text matches the true fields, overall and per field."""
    parsed, truth = np.asarray(parsed), np.asarray(truth)
    return {
        "all_fields": (parsed == truth).all(1),
        "craving": ((parsed[:, :-1] > 0) == (truth[:, :-1] > 0)).all(1),
        "tired_of": ((parsed[:, :-1] < 0) == (truth[:, :-1] < 0)).all(1),
        "something_new": parsed[:, -1] == truth[:, -1],
    }


def instruction_consistency(
    world: World,
    min_instructions: int = 200,
    max_steps: int = 5000,
    seed: int = 0,
    n_boot: int = 2000,
) -> dict[str, Any]:
    """Run ``world`` with uniformly random slates (finished users are replaced) until
    ``min_instructions`` instructions were written; compare each instruction's text (what
    the recommender reads, ``info["instruction"]``) parsed by ``InstructionParser`` with
    the fields the simulator took from hidden state. The world must keep text
    (``episode.text_info`` 'instructions' or 'all'). For a hybrid world, also the template
    fallback rate of the paraphrase path over this run."""
    if world.config.episode.text_info == "none":
        raise ValueError("instruction_consistency needs episode.text_info != 'none'")
    sim = world.simulator
    parser = InstructionParser(world.catalog.topic_names)
    captured: list[Any] = []
    original = sim.respond

    def respond(*args: Any, **kwargs: Any) -> Any:
        resp = original(*args, **kwargs)
        captured.append(resp)
        return resp

    stats_before = dict(getattr(sim, "stats", {}) or {})
    texts: list[str] = []
    truths: list[np.ndarray] = []
    sources: list[str] = []
    sim.respond = respond  # type: ignore[method-assign]
    try:
        obs, _ = world.reset(seed=seed)
        rng = np.random.default_rng([seed, 1])
        steps = 0
        while len(texts) < min_instructions and steps < max_steps:
            actions = np.argsort(rng.random((world.n_users, world.n_candidates)), axis=1)
            captured.clear()
            obs, _, terminated, truncated, info = world.step(actions[:, : world.slate_size])
            steps += 1
            who = np.flatnonzero(info["instructed"])
            if who.size:
                truth = captured[-1].extra["instruction_vector"]
                for j, b in enumerate(who):
                    texts.append(str(info["instruction"][b] or ""))
                    truths.append(truth[j])
                    src = info.get("instruction_source")
                    sources.append(str(src[b]) if src is not None else "template")
            done = np.flatnonzero(terminated | truncated)
            if done.size:
                world.reset_rows(done, obs)
    finally:
        del sim.respond  # the class method again
    if not texts:
        raise RuntimeError("instruction_consistency: no instruction was written")
    parsed = np.stack([parser.vector(t) for t in texts])
    truth = np.stack(truths).astype(np.float32)
    match = instruction_fields_match(parsed, truth)
    out: dict[str, Any] = {
        "simulator": world.config.simulator,
        "steps": steps,
        "user_steps": steps * world.n_users,
        "instructions": len(texts),
        "match": {k: bootstrap_ci(v.astype(float), n_boot, seed=seed) for k, v in match.items()},
        "fields_present": {
            "craving": int((truth[:, :-1] > 0).any(1).sum()),
            "tired_of": int((truth[:, :-1] < 0).any(1).sum()),
            "something_new": int((truth[:, -1] > 0).sum()),
        },
        "examples": [
            {"text": t, "match": bool(m)}
            for t, m in list(zip(texts, match["all_fields"], strict=True))[:3]
        ],
        "mismatch_examples": [t for t, m in zip(texts, match["all_fields"], strict=True) if not m][
            :5
        ],
    }
    stats = getattr(sim, "stats", None)
    if stats is not None:
        delta = {k: int(stats[k] - stats_before.get(k, 0)) for k in stats}
        n = max(delta.get("instructions", 0), 1)
        out["paraphrase"] = {
            **delta,
            "template_fallback_rate": 1.0 - delta.get("paraphrased", 0) / n,
        }
        src = np.array(sources)
        out["match_by_source"] = {
            s: float(match["all_fields"][src == s].mean()) for s in sorted(set(sources))
        }
    return out


def template_roundtrip(topic_names: Sequence[str]) -> dict[str, Any]:
    """Every template phrasing for every (more, less) topic pair, with and without the
    novelty wish, and every single-field instruction, rendered and parsed back: the share
    whose fields survive (exhaustive, so topic names such as "Children's" or "Sci-Fi" that
    a sampled run may never draw are covered too)."""
    from recoworld.simulators.instructions.lexical import Instruction, render_instruction

    names = list(topic_names)
    parser = InstructionParser(names)
    cases: list[Instruction] = [Instruction(novelty=True)]
    for novelty in (False, True):
        for a in names:
            cases.append(Instruction(more=[a], novelty=novelty))
            cases.append(Instruction(less=[a], novelty=novelty))
            cases.extend(Instruction(more=[a], less=[b], novelty=novelty) for b in names if b != a)
    total = ok = 0
    failures: list[str] = []
    for inst in cases:
        truth = parser.vector(inst)
        for variant in range(3):
            text = render_instruction(inst, variant)
            total += 1
            if np.array_equal(parser.vector(parser.parse(text)), truth):
                ok += 1
            elif len(failures) < 5:
                failures.append(text)
    return {"sentences": total, "match": ok / total, "failures": failures}
