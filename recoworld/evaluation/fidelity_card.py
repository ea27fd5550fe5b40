"""The fidelity report card: the MovieLens-fitted parametric user on the protocol the
published LLM user simulators are compared on (Agent4Rec's "taste discrimination", with
SimUSER, ContextSim and AlignUSER reporting on it too), beside trivial and collaborative
baselines on the very same lists, and the anchors' published figures.

Data: MovieLens-100k (the anchors use ML-1M; every other rule is theirs). The protocol's
arithmetic — split, lists, per-user metrics, thresholds, bootstrap — is
``recoworld.evaluation.fidelity_protocol``.

Deciders (each says yes/no to every item of a list, no cap on yes):

- **simulated user**: the parametric user the MovieLens world runs
  (``ParametricUserModel`` with ``ParametricUserConfig(source="movielens")``), its users
  and preference weights fitted by ``fit_movielens_population`` on the training view of the
  card's train split only (``catalog.splits.training_view``: ratings, popularity, quality,
  SVD factors recomputed from train). Its decision is its own consume probability:
  ``relevance`` (the probability it clicks the item shown alone), yes iff >= a threshold.
- **all-yes**, **all-no**; **popularity** (train-split rating count), **item-kNN** (sum of
  the item-item cosine similarities, ``policies.item_knn``, between the candidate and the
  user's train items), **MF** (implicit ALS, ``policies.matrix_factorization``, the user's
  own factor from the train fit), each yes iff score >= its threshold.

Every threshold is calibrated per ratio and negative kind on the lists of the calibration
users (a seeded quarter of the eligible users, never scored); the card scores the other
users. Nothing a scored user holds out (valid ∪ test: where the positives come from) is
read by any fit.

LLM rows (``llm``, off unless configured; ``recoworld.evaluation.fidelity_llm``): the LLM
user in score mode and the hybrid user, each from a simulator config, on seeded subsets of
the scored and calibration users, beside every non-LLM decider re-scored on the same users,
with the marginal gain over the best of them.

Rating prediction: for every test-split rating of the scored users, the simulated user's
utility for the film mapped to stars by an isotonic (monotone) regression fitted on the
valid-split ratings (utility of the same train-fitted users); continuous and rounded to
whole stars. Baselines on the same ratings: the user's train mean, the film's train mean,
and a biased MF (ALS, r ≈ μ + b_u + b_i + p_u·q_i) fitted on train, its L2 weight chosen on
valid. RMSE and MAE pooled over ratings, bootstrap CIs over users.
"""

from __future__ import annotations

import html
import importlib.util
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator

from recoworld.catalog.movielens import MovieLensData
from recoworld.catalog.splits import training_view
from recoworld.core.atomic import atomic_write_json, atomic_write_text
from recoworld.core.config import StrictModel
from recoworld.envs.config import WorldConfig
from recoworld.evaluation.fidelity_behaviour import (
    activity_stats,
    describe,
    gap_stats,
    genre_shares,
    genre_stats,
    per_user_counts,
    session_gaps,
    shares_of,
    shuffled_users,
)
from recoworld.evaluation.fidelity_llm import (
    CardLLMConfig,
    llm_gain_rows,
    llm_model_rows,
    llm_score_rows,
    llm_section,
    llm_text,
)
from recoworld.evaluation.fidelity_protocol import (
    TEST,
    VALID,
    CardSplit,
    Lists,
    agent4rec_split,
    calibrate_threshold,
    discrimination_lists,
    error_sums,
    isotonic_fit,
    isotonic_predict,
    paired,
    paired_rating_errors,
    popularity_bin_of,
    rating_errors,
    summarize,
    user_metrics,
)
from recoworld.evaluation.fidelity_ranking import (
    OFFLINE_METRICS,
    Lives,
    policy_ranking,
)
from recoworld.evaluation.report.figures import png_base64
from recoworld.evaluation.report.tables import markdown_table
from recoworld.policies.interactions import Interactions
from recoworld.policies.item_knn import ItemKNNRecommender
from recoworld.policies.matrix_factorization import ALSRecommender
from recoworld.simulators.parametric.config import ParametricUserConfig
from recoworld.simulators.parametric.model import ParametricUserModel
from recoworld.simulators.parametric.movielens_fit import fit_movielens_population, fresh_state
from recoworld.tasks.spec import load_task

SIMULATOR = "simulated user (fitted parametric)"
BASELINES = ("all-yes", "all-no", "popularity", "item-kNN", "MF (implicit ALS)")
RATING_SIM = "simulated user (utility → stars, isotonic)"
RATING_SIM_INT = "simulated user, whole stars"
RATING_BASELINES = ("user mean", "item mean", "biased MF")
ANCHOR_NOTE = (
    "Anchors: published 1:1 figures on ML-1M (RecAgent as re-run by SimUSER's authors); "
    "their rating protocol (which films, which split) is not published, so the RMSE/MAE "
    "columns are not like-for-like."
)
ANCHORS = [  # name, 1:1 accuracy, 1:1 F1, RMSE, MAE
    {"simulator": "RecAgent (re-run by SimUSER)", "accuracy": 0.581, "f1": 0.621,
     "rmse": 1.102, "mae": 0.763},
    {"simulator": "Agent4Rec", "accuracy": 0.691, "f1": 0.698, "rmse": 0.761, "mae": 0.714},
    {"simulator": "SimUSER", "accuracy": 0.791, "f1": 0.777, "rmse": 0.502, "mae": 0.446},
    {"simulator": "ContextSim", "accuracy": 0.824, "f1": 0.819, "rmse": 0.451, "mae": 0.392},
    {"simulator": "AlignUSER+", "accuracy": 0.832, "f1": 0.827, "rmse": 0.429, "mae": 0.387},
]  # fmt: skip
RANKING_POLICIES = ("random", "popular", "knn", "mf", "linucb", "genre-match")
DATASET_LINE = (
    "Data: MovieLens-100k (the anchors use ML-1M); every other rule of the protocol is kept."
)


class FidelityCardConfig(StrictModel):
    """Settings of the fidelity report card (defaults: the full card)."""

    seed: int = Field(0, description="Seed of the split, the calibration users and the lists.")
    task: str = Field(
        "MovieLens-v1",
        description="The MovieLens task whose world's user the card scores: its catalog "
        "settings (how latent taste is fitted) and user settings, and its world for the "
        "policy ranking. MovieLens-v1: latent taste from who watches what (implicit ALS); "
        "MovieLens-v0: from star ratings (rating SVD).",
    )
    ratios: list[int] = Field([1, 2, 3, 9], description="Ratios 1:m of positives to negatives.")
    negatives: list[Literal["uniform", "popularity"]] = Field(
        ["uniform", "popularity"],
        description="Negative kinds: uniform over unrated items, or popularity-matched.",
    )
    list_size: int = Field(20, ge=2, description="Items per list before the 20 // (m+1) cut.")
    min_liked: int = Field(20, ge=1, description="Users need this many ratings above 3.")
    calibration_share: float = Field(
        0.25, gt=0.0, lt=1.0, description="Share of eligible users that calibrate thresholds."
    )
    objective: Literal["accuracy", "f1", "mean"] = Field(
        "mean", description="What thresholds maximise on calibration users (mean: of both)."
    )
    pop_bins: int = Field(10, ge=2, description="Popularity bins of matched negatives.")
    max_users: int | None = Field(None, ge=8, description="Seeded subset of eligible users.")
    n_boot: int = Field(2000, ge=100, description="Bootstrap resamples (over users).")
    mf_regs: list[float] = Field(
        [0.05, 0.1, 0.2, 0.5, 1.0], description="Biased-MF L2 weights tried (chosen on valid)."
    )
    quick: bool = Field(False, description="Marks the quick (CI) profile.")
    ranking: bool = Field(
        True,
        description="Run the policy-ranking agreement and the behaviour statistics (both "
        "read the same simulated lives).",
    )
    ranking_policies: list[str] = Field(
        list(RANKING_POLICIES), min_length=2, description="Recommenders ranked on both sides."
    )
    ranking_seeds: list[int] = Field(
        [1000, 1001, 1002, 1003, 1004], min_length=1,
        description="World seeds (the MovieLens tasks' evaluation seeds): every policy meets the "
        "same lives.",
    )  # fmt: skip
    ranking_lives: int = Field(200, ge=8, description="Simulated user lives per seed.")
    ranking_slots: int = Field(64, ge=1, description="Parallel user slots of the world.")
    ranking_lists: int = Field(4, ge=1, description="Offline 20-film lists per scored user.")
    ppo_checkpoint: str | None = Field(
        None, description="A trained PPO checkpoint to rank beside the baselines (optional)."
    )
    session_gap_hours: float = Field(
        1.0, gt=0.0, description="MovieLens sessionisation: a new session after a longer gap."
    )
    llm: CardLLMConfig | None = Field(
        None,
        description="LLM rows (the LLM user in score mode, the hybrid user) on a user subset; "
        "None: no LLM rows (the default, and the quick profile's: they need the LLM engine).",
    )

    @field_validator("task")
    @classmethod
    def _movielens_task(cls, key: str) -> str:
        world = load_task(key).world_config()
        if world.catalog.source != "movielens" or world.users.source != "movielens":
            raise ValueError(
                f"task {key!r}: the card needs a MovieLens world (catalog.source and "
                "users.source 'movielens'), e.g. MovieLens-v1 or MovieLens-v0"
            )
        return key

    def world_config(self) -> WorldConfig:
        """The task's world config (the card's catalog and user settings)."""
        return load_task(self.task).world_config()

    @field_validator("ranking_policies")
    @classmethod
    def _known_policies(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(RANKING_POLICIES))
        if unknown or len(set(names)) != len(names):
            raise ValueError(
                f"ranking_policies: unknown or repeated {unknown or names}; available "
                f"{list(RANKING_POLICIES)} (a PPO comes with ppo_checkpoint)"
            )
        return names

    @classmethod
    def quick_profile(cls, seed: int = 0) -> FidelityCardConfig:
        """A small card for CI: 160 users, 200 resamples, one world seed of 64 lives (well
        under a minute)."""
        return cls(seed=seed, max_users=160, n_boot=200, quick=True, ranking_seeds=[1000],
                   ranking_lives=64, ranking_slots=32, ranking_lists=1)  # fmt: skip


# --------------------------------------------------------------------------- fitting


def simulated_users(
    view: MovieLensData, config: ParametricUserConfig | None = None
) -> ParametricUserModel:
    """The MovieLens world's parametric user (``config``: the world's ``users`` settings,
    default ``ParametricUserConfig(source="movielens")``), fitted (traits and preference
    weights) on ``view`` only, by the world's own code path."""
    cfg = config or ParametricUserConfig(source="movielens")
    return ParametricUserModel(view.catalog, cfg, fit_movielens_population(view, cfg))


def _train_matrix(view: MovieLensData) -> sp.csr_matrix:
    m = sp.csr_matrix(
        (np.ones(view.n_ratings), (view.user_index, view.item_index)),
        shape=(view.n_users, view.catalog.n_items),
    )
    m.data[:] = 1.0
    return m


def collaborative_scores(view: MovieLensData) -> dict[str, np.ndarray]:
    """[n_users, n_items] item-kNN and implicit-MF scores fitted on every train rating
    (any star: a rating = watched)."""
    inter = Interactions(view.user_index, view.item_index, view.n_users, view.catalog.n_items,
                         source="card train split (all ratings)")  # fmt: skip
    knn = ItemKNNRecommender(1).fit(inter)
    assert isinstance(knn, ItemKNNRecommender) and knn.similarity is not None
    knn_scores = np.asarray((_train_matrix(view) @ knn.similarity).todense())
    mf = ALSRecommender(1).fit(inter)
    assert isinstance(mf, ALSRecommender)
    assert mf.user_factors is not None and mf.item_factors is not None
    return {"item-kNN": knn_scores, "MF (implicit ALS)": mf.user_factors @ mf.item_factors.T}


def _solve_ridge(
    design: np.ndarray, counts: sp.csr_matrix, targets: sp.csr_matrix, reg: float
) -> np.ndarray:
    """Per row of ``counts`` (binary, rows = users or items): ridge regression of the row's
    ``targets`` on the rated columns' ``design`` rows, L2 ``reg`` x number of ratings."""
    n, k = design.shape
    outer = (design[:, :, None] * design[:, None, :]).reshape(n, k * k)
    nnz = np.asarray(counts.sum(1)).ravel()
    a = np.asarray(counts @ outer).reshape(-1, k, k)
    a += (reg * np.maximum(nnz, 1))[:, None, None] * np.eye(k)[None]
    rhs = np.asarray(targets @ design)
    return np.linalg.solve(a, rhs[..., None])[..., 0]


def biased_mf(
    user: np.ndarray,
    item: np.ndarray,
    rating: np.ndarray,
    n_users: int,
    n_items: int,
    reg: float,
    factors: int = 16,
    iterations: int = 15,
    seed: int = 0,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Explicit MF with biases by ALS (weighted-λ L2): (μ, b_u, b_i, P, Q)."""
    rng = np.random.default_rng(seed)
    mu = float(rating.mean())
    p = rng.normal(0.0, 0.1, (n_users, factors))
    q = rng.normal(0.0, 0.1, (n_items, factors))
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    ones = np.ones(len(rating))
    cu = sp.csr_matrix((ones, (user, item)), shape=(n_users, n_items))
    ci = cu.T.tocsr()
    for _ in range(iterations):
        t = sp.csr_matrix((rating - mu - bi[item], (user, item)), shape=(n_users, n_items))
        sol = _solve_ridge(np.hstack([np.ones((n_items, 1)), q]), cu, t, reg)
        bu, p = sol[:, 0], sol[:, 1:]
        t = sp.csr_matrix((rating - mu - bu[user], (item, user)), shape=(n_items, n_users))
        sol = _solve_ridge(np.hstack([np.ones((n_users, 1)), p]), ci, t, reg)
        bi, q = sol[:, 0], sol[:, 1:]
    return mu, bu, bi, p, q


# --------------------------------------------------------------------------- the card


def _rows_of(data: MovieLensData, split: CardSplit, parts: tuple[int, ...], users: np.ndarray):
    mask = np.isin(split.part, parts) & np.isin(data.user_index, users)
    return data.user_index[mask], data.item_index[mask], data.rating[mask].astype(np.float64)


def no_leak_check(data: MovieLensData, split: CardSplit, view: MovieLensData) -> dict[str, Any]:
    """What the fits read (the training view's rating log) against every held-out rating
    (valid ∪ test, every user): the number of shared (user, item) pairs must be 0."""
    n_items = data.catalog.n_items
    held = (split.part == VALID) | (split.part == TEST)
    held_pairs = data.user_index[held] * n_items + data.item_index[held]
    fit_pairs = view.user_index * n_items + view.item_index
    shared = int(np.isin(fit_pairs, held_pairs).sum())
    return {
        "fit_ratings": int(view.n_ratings),
        "heldout_ratings": int(held.sum()),
        "shared_user_item_pairs": shared,
        "ok": shared == 0,
    }


def _decide(scores: np.ndarray, threshold: float) -> np.ndarray:
    return scores >= threshold


def _discrimination(
    cfg: FidelityCardConfig,
    data: MovieLensData,
    split: CardSplit,
    scorers: dict[str, Any],
    bins: np.ndarray,
) -> dict[str, Any]:
    """Per negative kind and ratio: thresholds, per-scorer summaries, paired differences."""
    out: dict[str, Any] = {}
    per_user: dict[str, Any] = {}
    for kind in cfg.negatives:
        out[kind] = {}
        for m in cfg.ratios:
            lists = discrimination_lists(data.user_index, data.item_index, split, m, kind,
                                         cfg.list_size, bins, cfg.seed)  # fmt: skip
            cal, ev = lists.take(split.calibration), lists.take(split.evaluation)
            thresholds: dict[str, float | None] = {}
            metrics: dict[str, dict[str, np.ndarray]] = {}
            for name in (SIMULATOR, *BASELINES):
                if name == "all-yes":
                    thresholds[name], yes = None, np.ones(ev.items.shape, bool)
                elif name == "all-no":
                    thresholds[name], yes = None, np.zeros(ev.items.shape, bool)
                else:
                    t = calibrate_threshold(scorers[name](cal), cal.label, cfg.objective)
                    thresholds[name], yes = t, _decide(scorers[name](ev), t)
                metrics[name] = user_metrics(yes, ev.label)
            summary = {n: summarize(v, cfg.n_boot, cfg.seed) for n, v in metrics.items()}
            best, diffs = {}, {}
            for metric in ("accuracy", "f1"):
                b = max(BASELINES, key=lambda n: summary[n][metric]["mean"])
                best[metric] = b
                diffs[metric] = paired(metrics[SIMULATOR][metric], metrics[b][metric],
                                       cfg.n_boot, cfg.seed)  # fmt: skip
            each = {
                b: {
                    metric: paired(metrics[SIMULATOR][metric], metrics[b][metric],
                                   cfg.n_boot, cfg.seed)
                    for metric in ("accuracy", "f1")
                }
                for b in BASELINES
            }  # fmt: skip
            out[kind][f"1:{m}"] = {
                "positives": int(ev.label[0].sum()),
                "negatives": int((~ev.label[0]).sum()),
                "thresholds": thresholds,
                "scorers": summary,
                "best_baseline": best,
                "simulator_minus_best": diffs,
                "simulator_minus_each": each,
            }
            per_user[f"{kind} 1:{m}"] = metrics
    return {"results": out, "per_user": per_user}


def _ratings(
    cfg: FidelityCardConfig,
    data: MovieLensData,
    split: CardSplit,
    view: MovieLensData,
    model: ParametricUserModel,
) -> dict[str, Any]:
    n_users, n_items = data.n_users, data.catalog.n_items
    tu, ti, tr = view.user_index, view.item_index, view.rating.astype(np.float64)
    vu, vi, vr = _rows_of(data, split, (VALID,), split.users)
    eu, ei, er = _rows_of(data, split, (TEST,), split.evaluation)

    def util(u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Utility of film i[r] for user u[r]: one fresh user per distinct row, its films
        padded into one [users, longest] batch."""
        rows, inv = np.unique(u, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        count = np.bincount(inv, minlength=len(rows))
        slot = np.empty(len(u), dtype=np.int64)
        slot[order] = np.arange(len(u)) - np.repeat(np.cumsum(count) - count, count)
        items = np.zeros((len(rows), int(count.max())), dtype=np.int64)
        items[inv, slot] = i
        out = model.utility(fresh_state(model, rows), items)
        return out[inv, slot].astype(np.float64)

    knots = isotonic_fit(util(vu, vi), vr)
    sim = isotonic_predict(knots, util(eu, ei))
    mu = float(tr.mean())
    ucount = np.bincount(tu, minlength=n_users)
    umean = np.where(ucount > 0, np.bincount(tu, tr, n_users) / np.maximum(ucount, 1), mu)
    icount = np.bincount(ti, minlength=n_items)
    imean = np.where(icount > 0, np.bincount(ti, tr, n_items) / np.maximum(icount, 1), mu)
    valid_rmse = {}
    fits = {}
    for reg in cfg.mf_regs:
        fits[reg] = biased_mf(tu, ti, tr, n_users, n_items, reg, seed=cfg.seed)
        m0, bu, bi, p, q = fits[reg]
        pred = m0 + bu[vu] + bi[vi] + (p[vu] * q[vi]).sum(1)
        valid_rmse[reg] = float(np.sqrt(((np.clip(pred, 1, 5) - vr) ** 2).mean()))
    reg = min(valid_rmse, key=valid_rmse.__getitem__)
    m0, bu, bi, p, q = fits[reg]
    preds = {
        RATING_SIM: sim,
        RATING_SIM_INT: np.clip(np.rint(sim), 1, 5),
        "user mean": umean[eu],
        "item mean": imean[ei],
        "biased MF": np.clip(m0 + bu[eu] + bi[ei] + (p[eu] * q[ei]).sum(1), 1, 5),
    }
    pos = {int(u): j for j, u in enumerate(split.evaluation)}
    row_user = np.array([pos[int(u)] for u in eu], dtype=np.int64)
    sums = {n: error_sums(v, er, row_user, len(split.evaluation)) for n, v in preds.items()}
    models = {n: rating_errors(s, cfg.n_boot, cfg.seed) for n, s in sums.items()}
    best = {m: min(RATING_BASELINES, key=lambda n: models[n][m]["mean"]) for m in ("rmse", "mae")}
    diffs = {}
    for name in (RATING_SIM, RATING_SIM_INT):
        diffs[name] = {}
        for m in ("rmse", "mae"):
            d = paired_rating_errors(sums[name], sums[best[m]], cfg.n_boot, cfg.seed)
            diffs[name][m] = d[m]
    return {
        "test_ratings": len(er),
        "valid_ratings_for_calibration": len(vr),
        "models": models,
        "best_baseline": best,
        "simulator_minus_best": diffs,
        "biased_mf": {"reg_chosen_on_valid": reg, "valid_rmse": valid_rmse, "factors": 16},
        "isotonic_knots": len(knots[0]),
    }


def run_card(
    config: FidelityCardConfig | None = None, data: MovieLensData | None = None
) -> dict[str, Any]:
    """Compute the whole card (a JSON-ready dict)."""
    from recoworld.catalog import load_movielens

    cfg = config or FidelityCardConfig()
    start = time.time()
    world = cfg.world_config()
    data = data if data is not None else load_movielens(world.catalog.movielens)
    if data.latent_method != world.catalog.movielens.latent:
        raise ValueError(
            f"fidelity card: the data's latent factors are {data.latent_method!r}; task "
            f"{cfg.task} fits them by {world.catalog.movielens.latent!r}"
        )
    split = agent4rec_split(
        data.user_index, data.item_index, data.rating, data.catalog.n_items, cfg.min_liked,
        fractions=(0.4, 0.3), calibration_share=cfg.calibration_share,
        min_heldout=cfg.list_size // 2, max_users=cfg.max_users, seed=cfg.seed,
    )  # fmt: skip
    view = training_view(data, split.train)
    leak = no_leak_check(data, split, view)
    if not leak["ok"]:
        raise RuntimeError(f"fidelity card: held-out ratings reached the fit: {leak}")
    model = simulated_users(view, world.users)
    cf = collaborative_scores(view)
    counts = view.catalog.popularity.astype(np.float64)
    bins = popularity_bin_of(counts, split.known_items, cfg.pop_bins)

    def sim_scores(lists: Lists) -> np.ndarray:
        state = fresh_state(model, lists.users)
        return model.relevance(state, lists.items).astype(np.float64)

    scorers = {
        SIMULATOR: sim_scores,
        "popularity": lambda lists: counts[lists.items],
        "item-kNN": lambda lists: cf["item-kNN"][lists.users[:, None], lists.items],
        "MF (implicit ALS)": lambda lists: cf["MF (implicit ALS)"][
            lists.users[:, None], lists.items
        ],
    }
    disc = _discrimination(cfg, data, split, scorers, bins)
    llm: dict[str, Any] | None = None
    if cfg.llm is not None:
        assert model.population is not None
        nonllm = {"all-yes": None, "all-no": None, **scorers}
        llm = llm_section(cfg.llm, data, split, view, model.population, nonllm, SIMULATOR,
                          bins, seed=cfg.seed, n_boot=cfg.n_boot, list_size=cfg.list_size,
                          objective=cfg.objective, user_config=world.users)  # fmt: skip
        llm.pop("_per_user")
    ratings = _ratings(cfg, data, split, view, model)
    ranking: dict[str, Any] | None = None
    behaviour: dict[str, Any] | None = None
    if cfg.ranking:
        ppo = None
        if cfg.ppo_checkpoint:
            from recoworld.rl.registry import load_recommender

            ppo = load_recommender(cfg.ppo_checkpoint, "ppo")
        ranking, lives, _ = policy_ranking(
            data, split, view, cfg.ranking_policies, cfg.ranking_seeds, cfg.ranking_lives,
            cfg.ranking_slots, cfg.ranking_lists, cfg.n_boot, cfg.seed, bins, ppo,
            task=cfg.task,
        )  # fmt: skip
        behaviour = _behaviour(cfg, data, split, lives)
    pop = model.population
    assert pop is not None
    return {
        "title": "Fidelity report card: taste discrimination and rating prediction",
        "config": cfg.model_dump(mode="json"),
        "dataset": {
            "name": "MovieLens-100k",
            "note": DATASET_LINE,
            "eligible_users": split.n_eligible,
            "users": len(split.users),
            "users_dropped_short": split.n_short,
            "calibration_users": len(split.calibration),
            "evaluation_users": len(split.evaluation),
            "ratings": split.counts(),
            "known_items": int(split.known_items.sum()),
        },
        "simulator": {
            "model": f"ParametricUserModel with {cfg.task}'s user settings, fitted by "
            "fit_movielens_population on the train split's training view",
            "task": cfg.task,
            "latent": world.catalog.movielens.latent,
            "decision": "yes iff relevance (click probability of the item shown alone) >= t",
            "weights": dict(pop.weights or {}),
        },
        "no_leak": leak,
        "discrimination": disc["results"],
        "llm": llm,
        "rating": ratings,
        "anchors": ANCHORS,
        "anchor_note": ANCHOR_NOTE,
        "ranking": ranking,
        "behaviour": behaviour,
        "runtime_s": round(time.time() - start, 1),
    }


def _behaviour(
    cfg: FidelityCardConfig, data: MovieLensData, split: CardSplit, lives: dict[str, Lives]
) -> dict[str, Any]:
    """Activity, genre mix and return gaps of the scored users (every rating they made:
    descriptive statistics, no fit) against each policy's simulated lives of the same
    users (``recoworld.evaluation.fidelity_behaviour``)."""
    users = split.evaluation
    topics = data.catalog.topics_normalized
    mine = np.isin(data.user_index, users)
    u, i = data.user_index[mine], data.item_index[mine]
    su, si = shuffled_users(u, i, cfg.seed)
    sessions = session_gaps(data.user_index, data.timestamp, users, cfg.session_gap_hours)
    gaps = gap_stats(
        sessions["gaps"], {p: lv.gaps for p, lv in lives.items()}, cfg.seed, cfg.n_boot
    )
    gaps["real_sessions_per_user"] = describe(sessions["sessions"])
    gaps["sim_sessions_per_life"] = {p: describe(lv.returns + 1) for p, lv in lives.items()}
    gaps["rule"] = (
        f"a user's ratings sorted by timestamp; a new session after a gap > "
        f"{cfg.session_gap_hours:g} h"
    )
    return {
        "users": len(users),
        "activity": activity_stats(
            per_user_counts(u, users),
            {p: lv.clicks for p, lv in lives.items()},
            cfg.seed,
            cfg.n_boot,
        ),
        "genre": genre_stats(
            genre_shares(u, i, users, topics),
            genre_shares(su, si, users, topics),
            {p: shares_of(lv.topic_mass) for p, lv in lives.items()},
            cfg.seed,
            cfg.n_boot,
        ),
        "gaps": gaps,
    }


# --------------------------------------------------------------------------- rendering


def _ci(d: dict[str, Any] | None, fmt: str = ".3f", signed: bool = False) -> str:
    if not d or d.get("mean") is None or np.isnan(d["mean"]):
        return "–"
    f = f"+{fmt}" if signed else fmt
    if d.get("lo") is None:
        return format(d["mean"], f)
    return f"{d['mean']:{f}} [{d['lo']:{f}}, {d['hi']:{f}}]"


def _mark(d: dict[str, Any], higher_is_better: bool = True) -> str:
    lo, hi = d.get("lo"), d.get("hi")
    if lo is None or hi is None:
        return ""
    if lo > 0:
        return "▲ " if higher_is_better else "▼ "
    if hi < 0:
        return "▼ " if higher_is_better else "▲ "
    return ""


def headline_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """1:1, uniform negatives: ours (with CIs) then the anchors; RMSE/MAE beside."""
    one = results["discrimination"]["uniform"]["1:1"]["scorers"]
    rating = results["rating"]["models"]
    rows = []
    for name in (SIMULATOR, *BASELINES):
        rname = RATING_SIM if name == SIMULATOR else None
        rows.append({
            "decider": name, "source": "this card (ML-100k)",
            "accuracy": _ci(one[name]["accuracy"]), "F1": _ci(one[name]["f1"]),
            "RMSE": _ci(rating[rname]["rmse"]) if rname else "–",
            "MAE": _ci(rating[rname]["mae"]) if rname else "–",
        })  # fmt: skip
    for name in RATING_BASELINES:
        rows.append({"decider": name, "source": "this card (ML-100k)", "accuracy": "–",
                     "F1": "–", "RMSE": _ci(rating[name]["rmse"]),
                     "MAE": _ci(rating[name]["mae"])})  # fmt: skip
    for a in results["anchors"]:
        rows.append({"decider": a["simulator"], "source": "published (ML-1M)",
                     "accuracy": f"{a['accuracy']:.3f}", "F1": f"{a['f1']:.3f}",
                     "RMSE": f"{a['rmse']:.3f}", "MAE": f"{a['mae']:.3f}"})  # fmt: skip
    return rows


def ratio_rows(results: dict[str, Any], kind: str) -> list[dict[str, str]]:
    rows = []
    for ratio, entry in results["discrimination"][kind].items():
        for name, s in entry["scorers"].items():
            t = entry["thresholds"][name]
            rows.append({
                "ratio": f"{ratio} ({entry['positives']}+{entry['negatives']})",
                "decider": name,
                "accuracy": _ci(s["accuracy"]), "precision (no-yes = 0)": _ci(s["precision"]),
                "precision (no-yes skipped)": _ci(s["precision_defined"]),
                "recall": _ci(s["recall"]), "F1": _ci(s["f1"]),
                "no-yes users": f"{s['no_yes_users']['mean']:.0f}",
                "threshold": "–" if t is None else (f"{t:.4g}" if np.isfinite(t) else "+inf"),
            })  # fmt: skip
    return rows


def paired_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for kind, per_ratio in results["discrimination"].items():
        for ratio, entry in per_ratio.items():
            row = {"negatives": kind, "ratio": ratio}
            for metric, label in (("accuracy", "accuracy"), ("f1", "F1")):
                d = entry["simulator_minus_best"][metric]
                row[f"best baseline ({label})"] = entry["best_baseline"][metric]
                row[f"Δ {label}"] = _mark(d) + _ci(d, signed=True)
            rows.append(row)
    return rows


def rating_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    r = results["rating"]
    rows = []
    for name, s in r["models"].items():
        row = {"model": name, "RMSE": _ci(s["rmse"]), "MAE": _ci(s["mae"])}
        d = r["simulator_minus_best"].get(name)
        row["Δ RMSE vs best baseline"] = (_mark(d["rmse"], False) + _ci(d["rmse"], signed=True)
                                          if d else "–")  # fmt: skip
        row["Δ MAE vs best baseline"] = (_mark(d["mae"], False) + _ci(d["mae"], signed=True)
                                         if d else "–")  # fmt: skip
        rows.append(row)
    return rows


OFFLINE_LABELS = {
    "precision@3 uniform": "offline precision@3 (uniform)",
    "ndcg@3 uniform": "offline NDCG@3 (uniform)",
    "precision@3 popularity": "offline precision@3 (popularity-matched)",
}


def ranking_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """Per policy: the simulated metrics and the offline metrics with CIs, and its rank on
    the primary pair (1 = best)."""
    r = results["ranking"]
    prim = r["agreement"][r["primary"]]
    rows = []
    for j, p in enumerate(r["policies"]):
        v = r["per_policy"][p]
        row = {"policy": p, "sim: mean return / life": _ci(v["mean_return"], ".1f"),
               "sim: return rate": _ci(v["return_rate"])}  # fmt: skip
        row |= {OFFLINE_LABELS[m]: _ci(v[m]) for m in OFFLINE_METRICS}
        row["rank: sim / offline (primary)"] = f"{prim['sim_rank'][j]} / {prim['offline_rank'][j]}"
        rows.append(row)
    return rows


def agreement_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """Spearman and Kendall of every (simulated, offline) pair, then SimUSER's figure."""
    r = results["ranking"]
    rows = []
    for pair, a in r["agreement"].items():
        p = a["spearman_null_p"]
        rows.append({
            "simulated vs offline": pair + (" (primary)" if pair == r["primary"] else ""),
            "Spearman": _ci(a["spearman"], signed=True), "Kendall": _ci(a["kendall"], signed=True),
            "P(Spearman ≥ this | random order)": "–" if p is None else f"{p:.3f}",
        })  # fmt: skip
    rows.append({"simulated vs offline": "SimUSER (published; 55 private online A/B tests)",
                 "Spearman": f"{r['simuser']['spearman']:+.2f}", "Kendall": "–",
                 "P(Spearman ≥ this | random order)": "–"})  # fmt: skip
    return rows


def _fmt(x: Any, fmt: str = ".3f") -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, fmt)


def behaviour_rows(results: dict[str, Any], what: str) -> list[dict[str, str]]:
    """One statistic (activity, genre, gaps): real, each policy's lives and the baselines,
    with the distance to the real users."""
    sec = results["behaviour"][what]
    label = {"activity": "W (÷ own mean)", "genre": "mean W over genres",
             "gaps": "W (log10 hours)"}[what]  # fmt: skip
    rows = []

    def extra(d: dict[str, Any] | None) -> dict[str, str]:
        if what == "genre":
            return {"dispersion (mean std of shares)": _fmt(d)}  # type: ignore[arg-type]
        d = d or {}
        return {"n": _fmt(d.get("n"), "d"), "mean": _fmt(d.get("mean"), ".1f"),
                "median": _fmt(d.get("median"), ".1f"), "CV": _fmt(d.get("cv"), ".2f")}  # fmt: skip

    ref = sec["dispersion"]["real"] if what == "genre" else sec["real"]
    rows.append({"sample": "real MovieLens users (reference)", label: "–", **extra(ref)})
    for name, dist in sec["distance"].items():
        d = sec["dispersion"][name] if what == "genre" else sec["sim"][name]
        ci = sec.get("distance_ci", {}).get(name)
        shown = _fmt(dist) + (f" [{ci['lo']:.3f}, {ci['hi']:.3f}]" if ci else "")
        rows.append({"sample": f"simulated lives, policy {name}", label: shown, **extra(d)})
    for name, dist in sec["baselines"].items():
        d = sec["dispersion"].get(name) if what == "genre" else None
        rows.append({"sample": f"baseline: {name}", label: _fmt(dist), **extra(d)})
    return rows


RANKING_TEXT = [
    "World: the card's task's world config with its MovieLens data replaced by the card's "
    "training view (users, weights, popularity, quality and latent factors from the train "
    "split only), new users drawn from the scored users only. As shipped, the task fits its users "
    "on every rating, test split included.",
    "Simulated ranking: every policy runs the same lives (same world seeds: common random "
    "numbers); mean return per life and return rate (returns / session ends), pooled.",
    "Offline ranking (slate replay): per scored user, lists of 20 films (the world's "
    "candidate count): 5 held-out (valid ∪ test) films and 15 never-rated ones, uniform or "
    "popularity-matched (the card's 1:3 lists, more seeds); the observation is the world's, "
    "built from the user's train ratings in time order; each policy picks 3 films with its "
    "own act. Precision@3 and NDCG@3 per user.",
    "Agreement: Spearman and Kendall (tau-b) between the two rankings, 95 % percentile "
    "bootstrap CIs (lives and scored users resampled independently, both rankings "
    "recomputed per resample); the exact permutation p-value of the point Spearman.",
    "Item-kNN and MF are fitted on the train split's liked ratings only; no policy reads "
    "the held-out split.",
]


def ranking_markdown(results: dict[str, Any]) -> list[str]:
    r = results.get("ranking")
    if not r:
        return []
    lv = r["lives"]
    lines = [
        "## Policy-ranking agreement", "",
        f"{lv['total']} simulated lives ({len(lv['seeds'])} world seeds x {lv['per_seed']}; "
        f"{lv['distinct_users']} distinct scored users) per policy; {r['offline_users']} "
        f"scored users x {r['offline_lists_per_user']} lists offline.", "",
        *[f"- {t}" for t in RANKING_TEXT], "",
        *markdown_table(ranking_rows(results)), "",
        *markdown_table(agreement_rows(results)), "",
        r["simuser"]["note"], "",
        "Which policies an offline metric ranks fairly:", "",
        *[f"- {p}: {r['fair'][p]}" for p in r["policies"] if p in r["fair"]], "",
    ]  # fmt: skip
    if r.get("linucb_warm_start"):
        w = r["linucb_warm_start"]
        lines += [f"LinUCB warm start: {w['slots']} shown films of {w['lists']} calibration "
                  "lists.", ""]  # fmt: skip
    return lines


BEHAVIOUR_NOTES = {
    "activity": "Ratings per real user (every rating of the scored users) vs clicks per "
    "simulated life. The units differ (months of ratings vs one life of at most 5 sessions), "
    "so each sample is divided by its own mean: the distance compares shapes, not levels.",
    "genre": "Per user (life), the share of each genre in what it rated (clicked), a film's "
    "genres weighted equally. Shuffled users: the real log with films permuted among the "
    "users (each keeps its count): the overall mix without personal taste. Lives without a "
    "click are left out.",
    "gaps": "Real: {rule}; gaps between sessions. Simulated: the gap before each return to a "
    "new session. Both in hours, but a MovieLens session is a sitting of rating films on the "
    "website, not of watching them: the shapes are comparable, the meaning only loosely.",
}


def behaviour_markdown(results: dict[str, Any]) -> list[str]:
    b = results.get("behaviour")
    if not b:
        return []
    lines = ["## Behaviour statistics against MovieLens", "",
             f"{b['users']} scored users; the simulated lives of the ranking section "
             "(the same users, one sample per policy). Distances are Wasserstein "
             "(scipy.stats.wasserstein_distance); the baselines show what small and large "
             "mean.", ""]  # fmt: skip
    titles = {"activity": "Activity", "genre": "Genre mix", "gaps": "Return gaps"}
    for what, title in titles.items():
        note = BEHAVIOUR_NOTES[what].format(rule=b["gaps"]["rule"])
        lines += [f"### {title}", "", note, "", *markdown_table(behaviour_rows(results, what)),
                  ""]  # fmt: skip
    rs = b["gaps"]["real_sessions_per_user"]
    lines += [f"Real sessions per scored user: median {rs['median']:.0f}, mean "
              f"{rs['mean']:.1f}; the world ends a life after at most 5 sessions, so session "
              "counts are not compared.", ""]  # fmt: skip
    return lines


PROTOCOL_TEXT = [
    "Users with at least 20 ratings above 3; each user's ratings (every star level) shuffled "
    "and split 40/30/30 into train/valid/test (seeded); valid and test keep only films that "
    "occur in some user's train split.",
    "A seeded quarter of these users calibrates every threshold (never scored); the card "
    "scores the others.",
    "Per user and ratio 1:m: 20 // (m+1) positives drawn uniformly from valid ∪ test (any "
    "rating: positive = watched), m times as many negatives from films the user never rated "
    "(among films of some train split), shuffled. Popularity-matched: each positive's "
    "negatives come from its train-count popularity decile.",
    "Every decider answers yes/no for every film (no cap on yes). Accuracy, precision, recall "
    'and F1 are computed per user, then averaged over users. A user with no "yes" has '
    "precision 0 in 'precision (no-yes = 0)' and is left out of 'precision (no-yes "
    "skipped)'; F1 = 2TP/(2TP+FP+FN) needs no convention.",
    "Simulated user: the MovieLens world's parametric user (fit_movielens_population on the "
    "train split only), yes iff its click probability for the film shown alone "
    "(ParametricUserModel.relevance) reaches a threshold.",
    "Thresholds (simulated user, popularity, item-kNN, MF) maximise the calibration users' "
    "mean of accuracy and F1, per ratio and negative kind.",
    "Rating prediction: test-split ratings of the scored users; the simulated user's utility "
    "mapped to stars by isotonic regression fitted on valid-split ratings; baselines fitted "
    "on train (biased MF's L2 weight chosen on valid). RMSE/MAE pooled over ratings.",
    "95 % percentile bootstrap CIs over users; Δ rows are paired (simulator − best baseline, "
    "the best chosen by its mean on the same table); ▲/▼ marks a CI that excludes 0 in the "
    "simulator's favour / against it.",
]


def render_markdown(results: dict[str, Any]) -> str:
    ds = results["dataset"]
    cfg = results["config"]
    lines = [f"# {results['title']}", "", DATASET_LINE, ""]
    if cfg.get("quick"):
        lines += ["**Quick profile** (a CI smoke run on a user subset): not the card's "
                  "figures.", ""]  # fmt: skip
    lines += [
        f"{ds['evaluation_users']} scored users, {ds['calibration_users']} calibration users "
        f"({ds['users']} users kept of {ds['eligible_users']} eligible"
        + (f", max_users {cfg['max_users']}" if cfg.get("max_users") else "")
        + (
            f", {ds['users_dropped_short']} with too few held-out films dropped"
            if ds["users_dropped_short"]
            else ""
        )
        + f"); ratings {ds['ratings']}; seed {cfg['seed']}; {cfg['n_boot']} bootstrap "
        f"resamples; {results['runtime_s']} s.",
        "",
        "## Protocol",
        "",
        *[f"- {t}" for t in PROTOCOL_TEXT],
        f"- No-leak check: {results['no_leak']['shared_user_item_pairs']} of the fits' "
        f"{results['no_leak']['fit_ratings']} ratings are held-out (user, film) pairs.",
        "",
        "## Headline: 1:1, uniform negatives",
        "",
        *markdown_table(headline_rows(results)),
        "",
        ANCHOR_NOTE,
        "",
        "## Simulated user − best baseline (paired, over users)",
        "",
        *markdown_table(paired_rows(results)),
        "",
    ]
    for kind in results["discrimination"]:
        lines += [
            f"## Every ratio, {kind} negatives",
            "",
            *markdown_table(ratio_rows(results, kind)),
            "",
        ]
    r = results["rating"]
    lines += [
        "## Rating prediction",
        "",
        f"{r['test_ratings']} test ratings of the scored users; isotonic map fitted on "
        f"{r['valid_ratings_for_calibration']} valid ratings; biased MF L2 "
        f"{r['biased_mf']['reg_chosen_on_valid']} (chosen on valid).",
        "",
        *markdown_table(rating_rows(results)),
        "",
        "Fitted utility weights: "
        + ", ".join(f"{k} {v:.3f}" for k, v in results["simulator"]["weights"].items())
        + ".",
        "",
    ]
    lines += llm_markdown(results) + ranking_markdown(results) + behaviour_markdown(results)
    return "\n".join(lines)


def llm_markdown(results: dict[str, Any]) -> list[str]:
    sec = results.get("llm")
    if not sec:
        return []
    return [
        "## LLM rows: embedded small models against the non-LLM deciders", "",
        *[f"- {t}" for t in llm_text(sec)], "",
        "### Marginal gain over the best non-LLM decider (paired, over users)", "",
        *markdown_table(llm_gain_rows(sec)), "",
        "### Throughput and valid answers", "",
        *markdown_table(llm_model_rows(sec)), "",
        "### Every decider on the LLM rows' users", "",
        *markdown_table(llm_score_rows(sec)), "",
    ]  # fmt: skip


def _figure_png(results: dict[str, Any]) -> str | None:
    """Base64 PNG: 1:1 accuracy and F1 (ours with CIs, anchors), F1 by ratio; None without
    matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4.2), dpi=100)
    axes = fig.subplots(1, 3)
    one = results["discrimination"]["uniform"]["1:1"]["scorers"]
    names = [SIMULATOR, *BASELINES]
    anchors = results["anchors"]
    for ax, metric, label in ((axes[0], "accuracy", "accuracy"), (axes[1], "f1", "F1")):
        labels = ["sim. user" if n == SIMULATOR else n for n in names]
        vals = [one[n][metric]["mean"] for n in names]
        err = [[v - one[n][metric]["lo"] for n, v in zip(names, vals, strict=True)],
               [one[n][metric]["hi"] - v for n, v in zip(names, vals, strict=True)]]  # fmt: skip
        x = np.arange(len(names))
        ax.bar(x, vals, yerr=err, color=["#d62728"] + ["#7f7f7f"] * len(BASELINES), capsize=3)
        xa = np.arange(len(anchors)) + len(names) + 0.5
        ax.bar(xa, [a[metric] for a in anchors], color="#1f77b4", alpha=0.7)
        ax.set_xticks(list(x) + list(xa))
        ax.set_xticklabels(labels + [a["simulator"].split(" (")[0] for a in anchors],
                           rotation=60, ha="right", fontsize=7)  # fmt: skip
        ax.set_ylim(0, 1)
        ax.set_title(f"1:1 {label} (grey/red: ML-100k; blue: published, ML-1M)", fontsize=8)
    ax = axes[2]
    for kind, style in (("uniform", "-"), ("popularity", "--")):
        per = results["discrimination"].get(kind)
        if not per:
            continue
        ratios = list(per)
        for j, n in enumerate(names):
            ax.plot(ratios, [per[r]["scorers"][n]["f1"]["mean"] for r in ratios], style,
                    marker="o", color=f"C{j}", label=n if kind == "uniform" else None)  # fmt: skip
    ax.set_title("F1 by ratio (solid: uniform, dashed: popularity-matched)", fontsize=8)
    ax.legend(fontsize=7)
    return png_base64(fig, dpi=None)


def _html_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(r[c])}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(results: dict[str, Any]) -> str:
    """One self-contained page (inline CSS, the plot as a data: URI); every text escaped."""
    png = _figure_png(results)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(results['title'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1300px;margin:1em auto}"
        "table{border-collapse:collapse;font-size:12px;margin:0.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        f"<h1>{html.escape(results['title'])}</h1><p>{html.escape(DATASET_LINE)}</p>",
    ]
    if results["config"].get("quick"):
        parts.append("<p><b>Quick profile</b>: a CI smoke run, not the card's figures.</p>")
    parts.append("<h2>Protocol</h2><ul>")
    parts += [f"<li>{html.escape(t)}</li>" for t in PROTOCOL_TEXT]
    parts.append("</ul>")
    if png:
        parts.append(
            f"<img alt='1:1 accuracy and F1; F1 by ratio' src='data:image/png;base64,{png}'>"
        )
    else:
        parts.append("<p>(matplotlib is not installed: no plot.)</p>")
    parts += [
        "<h2>Headline: 1:1, uniform negatives</h2>",
        _html_table(headline_rows(results)),
        f"<p>{html.escape(ANCHOR_NOTE)}</p>",
        "<h2>Simulated user − best baseline</h2>",
        _html_table(paired_rows(results)),
    ]
    for kind in results["discrimination"]:
        parts += [f"<h2>Every ratio, {html.escape(kind)} negatives</h2>",
                  _html_table(ratio_rows(results, kind))]  # fmt: skip
    sec = results.get("llm")
    if sec:
        parts += ["<h2>LLM rows: embedded small models against the non-LLM deciders</h2><ul>"]
        parts += [f"<li>{html.escape(t)}</li>" for t in llm_text(sec)]
        parts += ["</ul>", "<h3>Marginal gain over the best non-LLM decider</h3>",
                  _html_table(llm_gain_rows(sec)), "<h3>Throughput and valid answers</h3>",
                  _html_table(llm_model_rows(sec)), "<h3>Every decider on these users</h3>",
                  _html_table(llm_score_rows(sec))]  # fmt: skip
    parts += ["<h2>Rating prediction</h2>", _html_table(rating_rows(results))]
    r = results.get("ranking")
    if r:
        parts += ["<h2>Policy-ranking agreement</h2><ul>"]
        parts += [f"<li>{html.escape(t)}</li>" for t in RANKING_TEXT]
        parts += ["</ul>", _html_table(ranking_rows(results)),
                  _html_table(agreement_rows(results)),
                  f"<p>{html.escape(r['simuser']['note'])}</p><ul>"]  # fmt: skip
        parts += [f"<li>{html.escape(p)}: {html.escape(r['fair'][p])}</li>"
                  for p in r["policies"] if p in r["fair"]]  # fmt: skip
        parts.append("</ul>")
    b = results.get("behaviour")
    if b:
        parts.append("<h2>Behaviour statistics against MovieLens</h2>")
        for what, title in (("activity", "Activity"), ("genre", "Genre mix"),
                            ("gaps", "Return gaps")):  # fmt: skip
            note = BEHAVIOUR_NOTES[what].format(rule=b["gaps"]["rule"])
            parts += [f"<h3>{title}</h3><p>{html.escape(note)}</p>",
                      _html_table(behaviour_rows(results, what))]  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinite floats as None (strict JSON), numpy scalars as
    Python numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_card(results: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``fidelity_card.json`` (strict JSON: NaN and ±inf as null),
    ``fidelity_card.md`` and ``fidelity_card.html`` (atomically) into ``out_dir``."""
    out = Path(out_dir)
    return {
        "json": atomic_write_json(jsonable(results), out / "fidelity_card.json"),
        "md": atomic_write_text(render_markdown(results), out / "fidelity_card.md"),
        "html": atomic_write_text(render_html(results), out / "fidelity_card.html"),
    }
