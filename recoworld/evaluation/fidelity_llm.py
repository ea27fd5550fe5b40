"""LLM rows of the fidelity card: the LLM user (score mode) and the hybrid user on the card's
own taste-discrimination lists, beside the fitted parametric user and the baselines, with
each LLM row's marginal gain over the best non-LLM decider (paired over users).

The deciding user is the simulator's own code path, built from a simulator config
(``LLMConfig`` + ``LLMUserConfig``, so a capable model — an HF directory, a hub name, an
OpenAI-compatible server — plugs in by config): ``LLMUserModel`` (or ``HybridUserModel``)
with the card's train-fitted population, asked through its ``respond`` for a one-item slate
on a fresh user; its consume score for the film is ``choice_probs[:, 0]``, the probability it
clicks the film shown alone (for the parametric user this equals ``relevance``). In score
mode the LLM's contrastive preference (``ContrastiveScorer``) replaces the interest and latent
terms of the fitted utility; popularity, quality, era and novelty stay. The hybrid user's
decision is the parametric one (its LLM only paraphrases instructions), so its row must equal
the fitted user's: the card shows it to say so. Yes iff the score reaches a threshold
calibrated on calibration users the test never reads, as for every other decider.

LLM scoring is slow on CPU (tens of (user, film) pairs per second), so the LLM rows run on
seeded subsets of the scored and calibration users; on those subsets every non-LLM decider
is re-calibrated and re-scored, so each comparison is on the same lists and the same users.
The embedded models are 135M-270M: their rows measure the plumbing and what such a model
adds, not the fidelity of an LLM user simulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from recoworld.catalog.movielens import MovieLensData
from recoworld.core.config import StrictModel
from recoworld.evaluation.fidelity_protocol import (
    CardSplit,
    Lists,
    calibrate_threshold,
    calibrated,
    discrimination_lists,
    paired,
    summarize,
    user_metrics,
)
from recoworld.llm.config import LLMConfig
from recoworld.simulators.config import LLMUserConfig
from recoworld.simulators.parametric.config import ParametricUserConfig
from recoworld.simulators.parametric.model import ParametricUserModel
from recoworld.simulators.parametric.movielens_fit import fresh_state
from recoworld.simulators.parametric.state import FittedPopulation

HYBRID = "hybrid user (parametric decides, LLM paraphrases)"
CONSTANT = ("all-yes", "all-no")
MODEL_ALIASES = {"smollm2": "embedded", "smollm2-135m": "embedded"}
NOT_FIDELITY = (
    "The LLM rows use embedded small models (135M-270M parameters) on CPU: they measure what "
    "such a model adds to the simulator's decision, against the non-LLM deciders on the same "
    "lists. They are not the fidelity of an LLM user simulator."
)


class CardLLMRow(StrictModel):
    """One LLM row: a simulator config (which model and backend, how the LLM user decides)."""

    label: str | None = Field(None, description="Row name on the card (default: the model).")
    llm: LLMConfig = Field(
        default_factory=lambda: LLMConfig(cache=False),
        description="Backend and model ('embedded', 'gemma3-270m', an HF directory, a hub "
        "name, or a served name with backend: openai).",
    )
    llm_user: LLMUserConfig = Field(
        default_factory=lambda: LLMUserConfig(narrate=False),
        description="The LLM user; only mode 'score' decides per film (narration is not read).",
    )
    score_scales: list[float] | None = Field(
        None,
        min_length=1,
        description="llm_user.score_scale values to try: each is scored on the calibration "
        "users only (threshold calibrated per list kind, the card's objective averaged over "
        "them) and the best one is the model's scale on the scored users. None: the "
        "llm_user's own score_scale.",
    )

    @field_validator("score_scales")
    @classmethod
    def _scales(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(not np.isfinite(v) or v < 0 for v in value):
            raise ValueError(f"score_scales: every value must be finite and >= 0, got {value}")
        return value

    @field_validator("llm_user")
    @classmethod
    def _score_mode(cls, value: LLMUserConfig) -> LLMUserConfig:
        if value.mode != "score":
            raise ValueError(
                "the card's LLM rows run the LLM user in score mode (a consume probability per "
                "film, thresholded like every decider); generate mode answers slates, not "
                "single films with a score"
            )
        return value

    def name(self) -> str:
        return self.label or f"LLM user, score mode ({self.llm.model})"


class CardLLMConfig(StrictModel):
    """The LLM rows of the card: which simulator configs, on which users and lists."""

    rows: list[CardLLMRow] = Field(min_length=1, description="One row per simulator config.")
    users: int = Field(48, ge=2, description="Seeded subset of the scored users.")
    calibration_users: int = Field(24, ge=2, description="Seeded subset of calibration users.")
    ratios: list[int] = Field([1], min_length=1, description="Ratios 1:m of the LLM rows.")
    negatives: list[Literal["uniform", "popularity"]] = Field(
        ["uniform", "popularity"], min_length=1, description="Negative kinds of the LLM rows."
    )
    hybrid: bool = Field(True, description="Add the hybrid user's row (needs no LLM call).")

    @classmethod
    def for_models(
        cls, models: list[str], score_scales: list[float] | None = None, **updates: Any
    ) -> CardLLMConfig:
        """Rows for model names ('embedded'/'smollm2', 'gemma3-270m', a directory, a hub
        name) on the in-process vLLM engine, with the default LLM user (score mode) and, if
        given, ``score_scales`` to calibrate per model."""
        rows = []
        for m in models:
            name = MODEL_ALIASES.get(m, m)
            rows.append(
                CardLLMRow(llm=LLMConfig(model=name, cache=False), score_scales=score_scales)
            )
        return cls(rows=rows, **updates)


def subset(users: np.ndarray, n: int, seed: int, salt: int) -> np.ndarray:
    """A seeded subset of ``n`` of ``users`` (all of them when n >= len), sorted."""
    users = np.asarray(users, dtype=np.int64)
    if n >= len(users):
        return users.copy()
    rng = np.random.default_rng([seed, 24, salt])
    return np.sort(rng.choice(users, n, replace=False))


def consume_probability(
    model: ParametricUserModel, population_rows: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """[U, L] probability that user ``population_rows[u]`` clicks ``items[u, j]`` shown alone
    at the top of a slate, each on a fresh user: the simulator's own ``respond`` for a
    one-item slate (``choice_probs[:, 0]``), one column at a time."""
    items = np.asarray(items, dtype=np.int64)
    u, n = items.shape
    out = np.empty((u, n), dtype=np.float64)
    valid = np.ones((u, 1), dtype=bool)
    for j in range(n):
        state = fresh_state(model, population_rows)
        resp = model.respond(state, items[:, j : j + 1], valid, np.random.default_rng(j),
                             text="none")  # fmt: skip
        out[:, j] = resp.extra["choice_probs"][:, 0]
    return out


def llm_contrast(model: Any, population_rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """[U, L] the LLM user's contrastive score of every film for its persona, in one batch
    (fills the scorer's cache, so ``respond`` then reads the same scores)."""
    state = fresh_state(model, population_rows)
    people = model.personas(state, np.arange(len(population_rows)))
    return model.scorer.score([p.likes for p in people], [p.dislikes for p in people], items)


def _thresholded(
    scores_cal: np.ndarray | None,
    cal: Lists,
    scores_ev: np.ndarray | None,
    ev: Lists,
    name: str,
    objective: str,
) -> tuple[float | None, np.ndarray]:
    """(threshold, yes [U, L]) of one decider: constants need none."""
    if name == "all-yes":
        return None, np.ones(ev.items.shape, bool)
    if name == "all-no":
        return None, np.zeros(ev.items.shape, bool)
    assert scores_cal is not None and scores_ev is not None
    t = calibrate_threshold(scores_cal, cal.label, objective)  # type: ignore[arg-type]
    return t, scores_ev >= t


def marginal_gains(
    metrics: dict[str, dict[str, np.ndarray]],
    llm_names: list[str],
    nonllm_names: list[str],
    reference: str,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Per LLM decider and metric (accuracy, F1): the best non-LLM decider (highest mean on
    these users) and the paired difference LLM − best, and LLM − ``reference`` (the fitted
    parametric user, whose utility the LLM's preference replaces in part)."""
    out: dict[str, Any] = {}
    for name in llm_names:
        out[name] = {"best_nonllm": {}, "minus_best": {}, "minus_reference": {}}
        for metric in ("accuracy", "f1"):
            best = max(nonllm_names, key=lambda n: float(metrics[n][metric].mean()))
            out[name]["best_nonllm"][metric] = best
            out[name]["minus_best"][metric] = paired(
                metrics[name][metric], metrics[best][metric], n_boot, seed
            )
            out[name]["minus_reference"][metric] = paired(
                metrics[name][metric], metrics[reference][metric], n_boot, seed
            )
    return out


def llm_section(
    cfg: CardLLMConfig,
    data: MovieLensData,
    split: CardSplit,
    view: MovieLensData,
    population: FittedPopulation,
    nonllm: dict[str, Callable[[Lists], np.ndarray] | None],
    reference: str,
    bins: np.ndarray,
    *,
    seed: int,
    n_boot: int,
    list_size: int = 20,
    objective: str = "mean",
    backends: dict[str, Any] | None = None,
    user_config: ParametricUserConfig | None = None,
) -> dict[str, Any]:
    """The LLM rows (module docstring). ``nonllm``: name -> scorer of a ``Lists`` (None for
    all-yes / all-no); ``reference``: the fitted parametric user's name among them;
    ``backends``: label -> an already started backend to use instead of building one from
    the row's ``llm`` config (tests; the caller closes it); ``user_config``: the world's
    user settings (default ``ParametricUserConfig(source="movielens")``)."""
    from recoworld.llm import make_backend
    from recoworld.llm.models import EMBEDDED_MODELS
    from recoworld.simulators.hybrid import HybridUserModel
    from recoworld.simulators.llm import LLMUserModel

    ev_users = subset(split.evaluation, cfg.users, seed, 1)
    cal_users = subset(split.calibration, cfg.calibration_users, seed, 2)
    keys = [(kind, m) for kind in cfg.negatives for m in cfg.ratios]
    lists: dict[tuple[str, int], tuple[Lists, Lists]] = {}
    for kind, m in keys:
        full = discrimination_lists(data.user_index, data.item_index, split, m, kind,
                                    list_size, bins, seed)  # fmt: skip
        lists[(kind, m)] = (full.take(cal_users), full.take(ev_users))
    pcfg = user_config or ParametricUserConfig(source="movielens")
    # scores[(kind, m)][name] = (calibration scores, evaluation scores)
    scores: dict[tuple[str, int], dict[str, tuple[Any, Any]]] = {k: {} for k in keys}
    for key, (cal, ev) in lists.items():
        for name, fn in nonllm.items():
            scores[key][name] = (None, None) if fn is None else (fn(cal), fn(ev))
    models_info: dict[str, Any] = {}
    llm_names: list[str] = []
    diag_names: dict[str, str] = {}
    hybrid_done = False
    # rows with the same LLM config share one engine and one scorer (its contrast cache)
    engines: dict[str, tuple[Any, Any, str]] = {}  # llm config -> (backend, scorer, label)
    owned: list[Any] = []
    try:
        for row in cfg.rows:
            label = row.name()
            llm_names.append(label)
            diag = f"diagnostic: {row.llm.model} contrast alone (not a simulator)"
            diag_names[label] = diag
            engine = row.llm.model_dump_json()
            t0 = time.perf_counter()
            start_s: float | None = None
            shared_with = None
            if backends is not None and label in backends:
                backend = backends[label]
            elif engine in engines:
                backend, _, shared_with = engines[engine]
            else:
                backend = make_backend(row.llm)
                owned.append(backend)
                start_s = time.perf_counter() - t0
            sim = LLMUserModel(view.catalog, pcfg, population, backend, row.llm_user)
            if engine in engines and engines[engine][0] is backend:
                sim.scorer = engines[engine][1]
            else:
                engines[engine] = (backend, sim.scorer, label)
            scored0 = backend.stats["scored"]
            t1 = time.perf_counter()
            finite = total = llm_decided = decisions = 0
            for key, (cal, ev) in lists.items():
                pair = []
                for part in (cal, ev):
                    contrast = llm_contrast(sim, part.users, part.items)
                    finite += int(np.isfinite(contrast).sum())
                    total += contrast.size
                    pair.append(contrast.astype(np.float64))
                scores[key][diag] = (pair[0], pair[1])
            # the model's score_scale, chosen on the calibration users (the contrasts are
            # cached in the scorer: trying a scale costs no model call)
            scales = row.score_scales or [row.llm_user.score_scale]
            tried: dict[str, float] = {}
            cal_probs: dict[float, dict[tuple[str, int], np.ndarray]] = {}
            for scale in scales:
                sim.llm_user = row.llm_user.model_copy(update={"score_scale": scale})
                cal_probs[scale] = {
                    key: consume_probability(sim, cal.users, cal.items)
                    for key, (cal, _) in lists.items()
                }
                tried[f"{scale:g}"] = float(np.mean([
                    calibrated(cal_probs[scale][key], cal.label, objective)[1]  # type: ignore[arg-type]
                    for key, (cal, _) in lists.items()
                ]))  # fmt: skip
            chosen = max(scales, key=lambda v: tried[f"{v:g}"])
            sim.llm_user = row.llm_user.model_copy(update={"score_scale": chosen})
            for key, (_, ev) in lists.items():
                prob_ev = consume_probability(sim, ev.users, ev.items)
                scores[key][label] = (cal_probs[chosen][key], prob_ev)
                for prob in (cal_probs[chosen][key], prob_ev):
                    decisions += prob.size
                    llm_decided += int(np.isfinite(prob).sum())
            wall = time.perf_counter() - t1
            n_lists = sum(len(c.users) + len(e.users) for c, e in lists.values())
            sent = backend.stats["scored"] - scored0
            spec = EMBEDDED_MODELS.get(row.llm.model)
            models_info[label] = {
                "backend": row.llm.backend,
                "model": row.llm.model,
                "weights": (
                    f"{spec.name} from pip package {spec.spec} ({spec.licence})"
                    if spec
                    else row.llm.model
                ),
                "llm_user": sim.llm_user.model_dump(mode="json"),
                "score_scale": {
                    "chosen": chosen,
                    "calibration_objective": tried,
                    "how": "chosen on the calibration users"
                    if len(scales) > 1
                    else "the llm_user's own (not calibrated)",
                },
                "engine_start_s": None if start_s is None else round(start_s, 1),
                "scoring_wall_s": round(wall, 1),
                "pairs_sent_to_model": int(sent),
                "pairs_per_s": sent / wall if wall > 0 else None,
                "films_decided": int(decisions),
                "films_decided_per_s": decisions / wall if wall > 0 else None,
                "user_lists_per_s": n_lists / wall if wall > 0 else None,
                "valid_share": finite / total if total else None,
                "valid_note": "score mode asks for no structured answer: the share of (user, "
                "film) contrasts that came back as finite log-probs, every one deciding",
                "engine_shared_with": shared_with,
            }
            if cfg.hybrid and not hybrid_done:
                hyb = HybridUserModel(view.catalog, pcfg, population, backend)
                for key, (cal, ev) in lists.items():
                    scores[key][HYBRID] = tuple(  # type: ignore[assignment]
                        consume_probability(hyb, part.users, part.items) for part in (cal, ev)
                    )
                hybrid_done = True
    finally:
        for backend in owned:
            backend.close()
    results: dict[str, Any] = {}
    per_user: dict[str, Any] = {}
    nonllm_names = list(nonllm)
    for (kind, m), (cal, ev) in lists.items():
        thresholds: dict[str, float | None] = {}
        metrics: dict[str, dict[str, np.ndarray]] = {}
        for name, (sc, se) in scores[(kind, m)].items():
            thresholds[name], yes = _thresholded(sc, cal, se, ev, name, objective)
            metrics[name] = user_metrics(yes, ev.label)
        extra = [HYBRID] if HYBRID in metrics else []
        diags = list(dict.fromkeys(diag_names.values()))
        gains = marginal_gains(metrics, llm_names + extra + diags,
                               nonllm_names, reference, n_boot, seed)  # fmt: skip
        results.setdefault(kind, {})[f"1:{m}"] = {
            "positives": int(ev.label[0].sum()),
            "negatives": int((~ev.label[0]).sum()),
            "thresholds": thresholds,
            "scorers": {n: summarize(v, n_boot, seed) for n, v in metrics.items()},
            "gains": gains,
            "hybrid_equals_reference": (
                bool(np.array_equal(metrics[HYBRID]["accuracy"], metrics[reference]["accuracy"]))
                if extra
                else None
            ),
        }
        per_user[f"{kind} 1:{m}"] = metrics
    return {
        "note": NOT_FIDELITY,
        "users": len(ev_users),
        "calibration_users": len(cal_users),
        "user_rows": ev_users.tolist(),
        "calibration_rows": cal_users.tolist(),
        "nonllm": nonllm_names,
        "reference": reference,
        "llm_rows": llm_names,
        "diagnostics": diag_names,
        "hybrid": HYBRID if cfg.hybrid else None,
        "models": models_info,
        "results": results,
        "_per_user": per_user,
    }


# --------------------------------------------------------------------------- rendering


def _ci(d: dict[str, Any] | None, signed: bool = False) -> str:
    if not d or d.get("mean") is None or not np.isfinite(d["mean"]):
        return "–"
    f = "+.3f" if signed else ".3f"
    if d.get("lo") is None:
        return format(d["mean"], f)
    return f"{d['mean']:{f}} [{d['lo']:{f}}, {d['hi']:{f}}]"


def _mark(d: dict[str, Any]) -> str:
    lo, hi = d.get("lo"), d.get("hi")
    if lo is None or hi is None:
        return ""
    return "▲ " if lo > 0 else ("▼ " if hi < 0 else "")


def llm_score_rows(section: dict[str, Any]) -> list[dict[str, str]]:
    """Every decider on the LLM rows' users: accuracy and F1 with CIs, threshold."""
    rows = []
    for kind, per in section["results"].items():
        for ratio, entry in per.items():
            for name, s in entry["scorers"].items():
                t = entry["thresholds"][name]
                rows.append({
                    "negatives": kind, "ratio": f"{ratio} ({entry['positives']}+"
                    f"{entry['negatives']})", "decider": name,
                    "accuracy": _ci(s["accuracy"]), "F1": _ci(s["f1"]),
                    "recall": _ci(s["recall"]),
                    "threshold": "–" if t is None else (f"{t:.4g}" if np.isfinite(t) else "+inf"),
                })  # fmt: skip
    return rows


def llm_gain_rows(section: dict[str, Any]) -> list[dict[str, str]]:
    """Marginal gain of each LLM (and hybrid, diagnostic) row over the best non-LLM decider,
    and over the fitted parametric user."""
    rows = []
    for kind, per in section["results"].items():
        for ratio, entry in per.items():
            for name, g in entry["gains"].items():
                row = {"negatives": kind, "ratio": ratio, "row": name}
                for metric, label in (("accuracy", "accuracy"), ("f1", "F1")):
                    d = g["minus_best"][metric]
                    row[f"best non-LLM ({label})"] = g["best_nonllm"][metric]
                    row[f"Δ {label} vs best"] = _mark(d) + _ci(d, signed=True)
                d = g["minus_reference"]["accuracy"]
                row["Δ accuracy vs fitted user"] = _mark(d) + _ci(d, signed=True)
                rows.append(row)
    return rows


def _scale_text(info: dict[str, Any] | None) -> str:
    """The row's score_scale: chosen among the tried ones (calibration objective each)."""
    if not info:
        return "–"
    tried = info["calibration_objective"]
    if len(tried) == 1:
        return f"{info['chosen']:g}"
    return f"{info['chosen']:g} (of " + ", ".join(f"{k}: {v:.3f}" for k, v in tried.items()) + ")"


def llm_model_rows(section: dict[str, Any]) -> list[dict[str, str]]:
    """Per model: weights, engine start, throughput, valid-answer share."""

    def f(x: Any, fmt: str) -> str:
        return "–" if x is None else format(x, fmt)

    return [
        {
            "row": name, "weights": m["weights"], "backend": m["backend"],
            "engine start (s)": (
                f"shared with {m['engine_shared_with']}" if m.get("engine_shared_with")
                else f(m["engine_start_s"], ".0f")
            ),
            "scoring wall (s)": f(m["scoring_wall_s"], ".0f"),
            "(user, film) pairs to the model": str(m["pairs_sent_to_model"]),
            "pairs/s": f(m["pairs_per_s"], ".1f"),
            "films decided/s": f(m["films_decided_per_s"], ".1f"),
            "user-lists/s": f(m["user_lists_per_s"], ".2f"),
            "valid answers": f(m["valid_share"], ".3f"),
            "score_scale": _scale_text(m.get("score_scale")),
        }
        for name, m in section["models"].items()
    ]  # fmt: skip


def llm_text(section: dict[str, Any]) -> list[str]:
    """The LLM section's explanatory lines (Markdown bullets without the dash)."""
    lines = [
        section["note"],
        f"Users: a seeded subset of {section['users']} scored and "
        f"{section['calibration_users']} calibration users (LLM scoring on CPU is slow); every "
        "decider, non-LLM ones included, is re-calibrated and re-scored on these users and "
        "the card's own lists for them, so these figures differ from the full-card tables.",
        "Decision: the simulator's own respond() for a one-film slate on a fresh user; score "
        "= the probability it clicks the film (choice_probs[:, 0]); yes iff >= a threshold "
        "calibrated on the calibration subset (mean of accuracy and F1). In score mode the "
        "LLM's contrastive preference (mean log-prob of the film's title and genres after "
        "'You love {liked genres}.' minus after 'You love {disliked genres}.', x score_scale) "
        "replaces the fitted user's taste terms; popularity, quality, era and novelty stay.",
        "Marginal gain: LLM row − best non-LLM decider (the highest mean on these users among "
        f"{', '.join(section['nonllm'])}), paired bootstrap over users; ▲/▼: CI excludes 0.",
        "Diagnostic rows threshold the model's contrast alone: what the LLM knows about taste "
        "without the fitted popularity/quality terms. They are not simulators.",
    ]
    if section.get("hybrid"):
        lines.append(
            "The hybrid user decides with the parametric model (its LLM only paraphrases "
            "instructions), so its row equals the fitted user's; it is on the card to show it."
        )
    return lines
