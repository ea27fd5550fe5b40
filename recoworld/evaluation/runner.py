"""The evaluation runner: policies x worlds x seeds, with common random numbers, to one
results set (Parquet + JSON) and a report.

``run_evaluation(config, out_dir)`` runs every policy in every world for every seed, logs each
run's trajectory (with the simulator's ground truth: ``episode.ground_truth_info``), turns the
logs into metrics (``recoworld.metrics``) and writes

- ``trajectories/<world>/<policy>_seed<seed>.parquet``: every user-step, text included;
- ``episodes.parquet``: one row per (world, seed, policy, user life) with every per-life metric;
- ``results.json``: per (world, policy, metric) the mean with its bootstrap CI, the paired
  difference against the named baseline with its CI, curves, the DPFR frontier, per-segment
  values and a few transcripts (the report's input, ``recoworld.evaluation.report``);
- ``report.html`` (self-contained, plots embedded) and ``manifest.json`` (config, seeds,
  package versions, git commit).

Common random numbers: every policy of a (world, seed) runs with the same seed, so the three
random streams of the world (users, candidates, responses) are the same. Users are exact: the
j-th user life (episode id j) is the same simulated user for every policy (the parametric
model hands out users from a ``TraitStream``). Candidate draws and response noise are the
same random numbers per slot and step, so runs stay coupled as long as their trajectories
coincide. Differences against the baseline are therefore paired per user life (seed, episode
id) and resampled jointly.

Units of the confidence intervals: user lives, pooled over seeds (percentile bootstrap). Set
metrics (coverage, exposure Gini and entropy) are recomputed on each resample of lives, and
since such resamples are biased (repeated lives cover fewer items) their CI is the normal one
around the full-sample value with the bootstrap standard error; DPFR is a point estimate (its
frontier is itself an estimate).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from recoworld import metrics as M
from recoworld.catalog import Catalog, load_catalog
from recoworld.core.atomic import atomic_write_json, atomic_write_parquet
from recoworld.core.config import StrictModel, read_yaml_mapping
from recoworld.core.manifest import git_state, write_manifest
from recoworld.core.stats import (
    normal_interval,
    percentile_interval,
    resample_weights,
    weighted_means,
)
from recoworld.envs.config import WorldConfig, resolve_world_config
from recoworld.envs.trajectory import TrajectoryLog
from recoworld.llm import LLMBackend, make_backend
from recoworld.policies.base import Recommender
from recoworld.policies.baselines import POLICIES
from recoworld.policies.rollout import SimulateConfig, run_policy


class PolicySpec(StrictModel):
    """A policy to evaluate: a baseline by name, or a trained RLlib module (checkpoint)."""

    name: str = Field(min_length=1)
    checkpoint: str | None = Field(
        None, description="Checkpoint of a trained module (`recoworld train --out DIR`)."
    )
    algo: str | None = Field(
        None, description="Algorithm that wrote the checkpoint (default: its run's manifest)."
    )
    worlds: list[str] | None = Field(
        None, description="Only these worlds (e.g. those whose observation the module fits)."
    )

    @model_validator(mode="after")
    def _known(self) -> PolicySpec:
        if self.checkpoint is None and self.name not in POLICIES:
            raise ValueError(
                f"policy {self.name!r}: not a baseline ({list(POLICIES)}); give `checkpoint` "
                "for a trained module"
            )
        return self


class EvalWorld(StrictModel):
    """One world of the comparison: a run YAML's ``world:`` (or a WorldConfig mapping) plus
    overrides; ``users``/``episodes`` override the evaluation's (LLM worlds are slower)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    config: str | None = Field(None, description="YAML file with a world (or `world:`) section.")
    overrides: dict[str, Any] = Field(default_factory=dict)
    users: int | None = Field(None, ge=1)
    episodes: int | None = Field(None, ge=1)
    policies: list[str] | None = Field(
        None, description="Only these policies in this world (default: all that apply)."
    )
    seeds: list[int] | None = Field(None, min_length=1, description="Override the seeds.")

    def world_config(self, base_dir: Path | None = None) -> WorldConfig:
        path = self.config
        if path is not None and base_dir is not None and not Path(path).is_absolute():
            if not Path(path).exists() and (base_dir / path).exists():
                path = str(base_dir / path)
        cfg = resolve_world_config(path, self.overrides)
        cfg.episode.ground_truth_info = True
        if cfg.simulator == "parametric" and cfg.episode.text_info == "all":
            cfg.episode.text_info = "instructions"  # template text only: keep logs small
        return cfg


DEFAULT_LEADERBOARD = (
    "return_rate", "session_depth", "clicks_per_session", "ndcg", "ild", "item_exposure_gini",
    "dpfr",
)  # fmt: skip


class EvalConfig(StrictModel):
    """What ``recoworld evaluate`` runs (the ``evaluate:`` section of an eval YAML)."""

    title: str = "RecoWorld policy evaluation"
    policies: list[PolicySpec] = Field(min_length=1)
    worlds: list[EvalWorld] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    users: int = Field(64, ge=1, description="Parallel user slots per run.")
    episodes: int = Field(200, ge=1, description="User lives per (world, seed, policy).")
    max_steps: int = Field(1_000_000, ge=1, description="Safety cap on batched steps per run.")
    baseline: str = Field("popular", description="Policy the paired differences compare with.")
    n_boot: int = Field(1000, ge=100, description="Bootstrap resamples.")
    level: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level.")
    ndcg_k: int | None = Field(None, ge=1, description="Cutoff of NDCG/hit (default: slate size).")
    popular_share: float = Field(
        0.1, gt=0.0, lt=1.0, description="Serendipity: the most-popular share that is expected."
    )
    instruction_window: int = Field(3, ge=1, description="Slates after an instruction checked.")
    dpfr_alpha: float = Field(0.5, ge=0.0, le=1.0, description="DPFR relevance/fairness weight.")
    transcripts: int = Field(3, ge=0, description="Transcripts per world in the report.")
    leaderboard: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LEADERBOARD), description="Metrics on the board."
    )

    @field_validator("policies", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EvalConfig:
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError(f"policies: names must be unique, got {names}")
        if self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not among the policies {names}")
        worlds = [w.name for w in self.worlds]
        if len(set(worlds)) != len(worlds):
            raise ValueError(f"worlds: names must be unique, got {worlds}")
        for w in self.worlds:
            unknown = set(w.policies or ()) - set(names)
            if unknown:
                raise ValueError(f"world {w.name!r}: unknown policies {sorted(unknown)}")
            if w.policies is not None and self.baseline not in w.policies:
                raise ValueError(f"world {w.name!r}: its policies must include the baseline")
        for p in self.policies:
            unknown = set(p.worlds or ()) - set(worlds)
            if unknown:
                raise ValueError(f"policy {p.name!r}: unknown worlds {sorted(unknown)}")
        unknown_metrics = set(self.leaderboard) - set(METRICS)
        if unknown_metrics:
            raise ValueError(f"leaderboard: unknown metrics {sorted(unknown_metrics)}")
        return self


def load_eval_config(path: str | Path) -> EvalConfig:
    """An ``EvalConfig`` from YAML (top level, or under ``evaluate:``)."""
    data = read_yaml_mapping(path)
    section = data.get("evaluate", data)
    if not isinstance(section, dict):
        raise ValueError(f"{path}: `evaluate` must be a mapping")
    return EvalConfig.model_validate(section)


def _m(label: str, group: str, higher: bool | None, fmt: str = ".3f") -> dict[str, Any]:
    return {"label": label, "group": group, "higher_is_better": higher, "fmt": fmt}


METRICS: dict[str, dict[str, Any]] = {
    "clicks_per_session": _m("clicks / session", "engagement", True, ".2f"),
    "watch_per_session": _m("watch / session", "engagement", True, ".2f"),
    "likes_per_session": _m("likes / session", "engagement", True),
    "follows_per_session": _m("follows / session", "engagement", True),
    "gifts_per_session": _m("gifts / session", "engagement", True, ".4f"),
    "return_rate": _m("return rate", "retention", True),
    "session_depth": _m("session depth (steps)", "retention", True, ".2f"),
    "sessions": _m("sessions / life", "retention", True, ".2f"),
    "return_time_hours": _m("return time (h)", "retention", False, ".1f"),
    "churn": _m("churn (left for good)", "retention", False),
    "ndcg": _m("NDCG@k", "ranking", True),
    "rw_ndcg": _m("reward-weighted NDCG@k", "ranking", True),
    "mrr": _m("MRR (best candidate)", "ranking", True),
    "hit_rate": _m("hit@k (best candidate)", "ranking", True),
    "ild": _m("intra-list diversity", "beyond_accuracy", True),
    "novelty": _m("novelty (bits)", "beyond_accuracy", True, ".2f"),
    "serendipity": _m("serendipity", "beyond_accuracy", True),
    "coverage": _m("catalog coverage", "beyond_accuracy", True),
    "item_exposure_gini": _m("item exposure Gini", "fairness", False),
    "item_exposure_entropy": _m("item exposure entropy", "fairness", True),
    "creator_exposure_gini": _m("creator exposure Gini", "fairness", False),
    "creator_exposure_entropy": _m("creator exposure entropy", "fairness", True),
    "dpfr": _m("DPFR (NDCG, entropy)", "fairness", False),
    "instruction_honour_rate": _m("instruction honoured (next slates)", "instruction", True),
    "instruction_satisfaction_change": _m("satisfaction change after", "instruction", True),
    "instructions_per_life": _m("instructions / life", "instruction", None, ".2f"),
}
"""Every metric of a results set: label, group, direction (None: neither) and format."""

SET_METRICS = (
    "coverage", "item_exposure_gini", "item_exposure_entropy", "creator_exposure_gini",
    "creator_exposure_entropy",
)  # fmt: skip
LIFE_METRICS = tuple(m for m in METRICS if m not in (*SET_METRICS, "dpfr"))


# ---------------------------------------------------------------------- log -> arrays
def _column(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)
    return col.to_numpy(zero_copy_only=False)


def steps_from_table(table: pa.Table, episodes: int | None = None) -> dict[str, np.ndarray]:
    """The logged columns as numpy arrays, in time order, keeping lives with episode id <
    ``episodes`` (the lives a run summarises)."""
    names = [n for n in table.column_names if n not in ("titles",)]
    data = {n: _column(table, n) for n in names}
    keep = np.ones(table.num_rows, dtype=bool)
    if episodes is not None:
        keep = data["episode_id"] < episodes
    order = np.lexsort((data["user_slot"][keep], data["t"][keep]))
    return {n: v[keep][order] for n, v in data.items()}


class RunData:
    """Metrics of one run (world, seed, policy), per user life and as exposure counts."""

    def __init__(self, steps: dict[str, np.ndarray], catalog: Catalog, cfg: EvalConfig) -> None:
        cat = catalog
        s = steps
        shown = s["shown"].astype(bool)
        items = s["item_index"].astype(np.int64)
        ep = s["episode_id"].astype(np.int64)
        self.episode_ids = np.unique(ep)
        inv = np.searchsorted(self.episode_ids, ep)
        n_ep = len(self.episode_ids)
        k = cfg.ndcg_k or items.shape[1]
        k = min(k, items.shape[1])

        def life_mean(values: np.ndarray) -> np.ndarray:
            ok = ~np.isnan(values)
            tot = np.bincount(inv[ok], weights=values[ok], minlength=n_ep)
            cnt = np.bincount(inv[ok], minlength=n_ep)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)

        life: dict[str, np.ndarray] = {}
        eng = M.engagement_per_session(
            ep, s["session"], s["click"], s["watch"], s["like"], s["follow"], s["gift"], shown
        )
        for key, name in (("clicks", "clicks_per_session"), ("watch", "watch_per_session"),
                          ("likes", "likes_per_session"), ("follows", "follows_per_session"),
                          ("gifts", "gifts_per_session")):  # fmt: skip
            life[name] = self._align(*eng[key])
        ret = M.retention(
            ep, s["session"], s["session_end"], s["returned"], s["gap_hours"], s["terminated"]
        )
        for key in ("session_depth", "return_rate", "return_time_hours", "churn", "sessions"):
            life[key] = self._align(*ret[key])
        ndcg = M.ndcg_at_k(s["slate_relevance"], s["candidate_relevance"], k=k, shown=shown)
        cand = s["candidate_index"].astype(np.int64)
        rel = s["candidate_relevance"]
        life["ndcg"] = life_mean(ndcg)
        life["rw_ndcg"] = self._align(
            self.episode_ids, M.reward_weighted_ndcg(ndcg, s["reward"], groups=ep)
        )
        life["mrr"] = life_mean(M.reciprocal_rank(items, cand, rel, shown=shown))
        life["hit_rate"] = life_mean(M.hit_at_k(items, cand, rel, k=k, shown=shown))
        life["ild"] = life_mean(M.intra_list_diversity(items, cat.topics_normalized, shown=shown))
        selfinfo = M.self_information(cat.popularity)
        life["novelty"] = life_mean(M.novelty(items, selfinfo, shown=shown))
        popular = M.most_popular_items(cat.popularity, cfg.popular_share)
        life["serendipity"] = life_mean(
            M.serendipity(items, s["click"].astype(bool), popular, shown=shown)
        )
        instr = s["instructed"].astype(bool)
        life["instructions_per_life"] = np.bincount(inv, weights=instr, minlength=n_ep)
        if instr.any() and "instruction_vector" in s:
            t = cat.n_topics
            fol = M.instruction_following(
                ep, s["t"], instr, s["instruction_vector"][:, :t].astype(np.float32), items,
                cat.topics_normalized, s["satisfaction"], window=cfg.instruction_window,
                shown=shown,
            )  # fmt: skip
            names = {"honour_rate": "instruction_honour_rate",
                     "satisfaction_change": "instruction_satisfaction_change"}  # fmt: skip
            for key, name in names.items():
                rows, vals = fol[key]
                per = np.full(len(ep), np.nan)
                per[rows] = vals
                life[name] = life_mean(per)
        else:
            life["instruction_honour_rate"] = np.full(n_ep, np.nan)
            life["instruction_satisfaction_change"] = np.full(n_ep, np.nan)
        self.life = life
        # exposure per life: [E, n_items] and [E, n_creators] (for resampled set metrics)
        flat_items = np.where(shown, items, -1)
        ok = flat_items >= 0
        rows = np.broadcast_to(inv[:, None], items.shape)[ok]
        self.item_exposure = np.zeros((n_ep, cat.n_items))
        np.add.at(self.item_exposure, (rows, flat_items[ok]), 1.0)
        self.creator_exposure = np.zeros((n_ep, cat.n_creators))
        np.add.at(self.creator_exposure, (rows, cat.creator[flat_items[ok]]), 1.0)
        self.segment_value = (
            life_mean(s["user_novelty"].astype(np.float64)) if "user_novelty" in s else None
        )
        # requests (for the DPFR frontier) and the steps (for transcripts)
        self.candidates, self.candidate_relevance, self.k = cand, rel, k
        self.slate_relevance, self.shown, self.items = s["slate_relevance"], shown, items
        self.ndcg_steps = ndcg
        self.steps = s

    def _align(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.full(len(self.episode_ids), np.nan)
        pos = np.searchsorted(self.episode_ids, ids)
        out[pos] = values
        return out


def set_metrics(item_counts: np.ndarray, creator_counts: np.ndarray) -> dict[str, float]:
    """Coverage and exposure concentration from pooled exposure counts."""
    return {
        "coverage": float((item_counts > 0).mean()),
        "item_exposure_gini": M.gini(item_counts),
        "item_exposure_entropy": M.exposure_entropy(item_counts),
        "creator_exposure_gini": M.gini(creator_counts),
        "creator_exposure_entropy": M.exposure_entropy(creator_counts),
    }


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


# ---------------------------------------------------------------------- the run
def _applies(spec: PolicySpec, world: EvalWorld) -> bool:
    """Whether ``spec`` runs in ``world`` (both may restrict the pairing)."""
    if spec.worlds is not None and world.name not in spec.worlds:
        return False
    return world.policies is None or spec.name in world.policies


def _policy_instance(spec: PolicySpec, cache: dict[str, Recommender]) -> str | Recommender:
    if spec.checkpoint is None:
        return spec.name  # a fresh baseline per run (online learners start from scratch)
    if spec.name not in cache:
        from recoworld.rl.registry import load_recommender

        cache[spec.name] = load_recommender(spec.checkpoint, spec.name, spec.algo)
    return cache[spec.name]


def run_evaluation(
    config: EvalConfig,
    out_dir: str | Path,
    show_progress: bool = True,
    base_dir: str | Path | None = None,
    write_html: bool = True,
) -> dict[str, Any]:
    """Run the comparison, write its outputs under ``out_dir`` (module docstring) and return
    the results dict (what ``results.json`` holds). ``base_dir``: where relative world config
    paths are looked up when they do not exist from the working directory."""
    from recoworld.core.progress import progress_bar

    for spec in config.policies:  # fail before any run, not after an hour of them
        if spec.checkpoint is not None and not Path(spec.checkpoint).exists():
            raise FileNotFoundError(
                f"policy {spec.name!r}: checkpoint {spec.checkpoint} not found (train one with "
                f"`recoworld train --out DIR`; its checkpoint is DIR/checkpoint)"
            )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = Path(base_dir) if base_dir is not None else None
    write_manifest(out, {"evaluate": config.model_dump(mode="json")}, config.seeds[0])
    worlds = {w.name: w.world_config(base) for w in config.worlds}
    runs: dict[tuple[str, str, int], RunData] = {}
    catalogs: dict[str, Catalog] = {}
    module_cache: dict[str, Recommender] = {}
    with progress_bar(show_progress) as progress:
        for ew in config.worlds:
            wcfg = worlds[ew.name]
            users = ew.users or config.users
            episodes = ew.episodes or config.episodes
            backend: LLMBackend | None = None
            if wcfg.simulator != "parametric":
                backend = make_backend(wcfg.llm)  # one engine for the world's runs
            try:
                catalogs[ew.name] = catalog = load_catalog(wcfg.catalog)[0]
                for seed in ew.seeds or config.seeds:
                    for spec in config.policies:
                        if not _applies(spec, ew):
                            continue
                        desc = f"{ew.name} · seed {seed} · {spec.name}"
                        task = progress.add_task(desc, total=episodes)
                        sim = SimulateConfig(
                            policies=[spec.name if spec.checkpoint is None else "random"],
                            users=users, episodes=episodes, seed=seed, max_steps=config.max_steps,
                        )  # fmt: skip
                        meta = {"policy": spec.name, "seed": str(seed), "world": ew.name}
                        log = TrajectoryLog(meta)
                        path = out / "trajectories" / ew.name / f"{spec.name}_seed{seed}.parquet"
                        policy = _policy_instance(spec, module_cache)
                        try:
                            run_policy(wcfg, policy, sim, log, progress, task, backend)
                        except BaseException as err:
                            if log.n_rows:
                                log.metadata["status"] = f"interrupted: {err!r}"[:500]
                                log.write(path)
                            raise
                        log.metadata["status"] = "complete"
                        log.write(path)
                        steps = steps_from_table(log.to_table(), episodes)
                        runs[(ew.name, spec.name, seed)] = RunData(steps, catalog, config)
            finally:
                if backend is not None:
                    backend.close()
    results = summarize_runs(config, runs, worlds, catalogs)
    _write_episodes(out, runs)
    atomic_write_json(results, out / "results.json")
    if write_html:
        from recoworld.evaluation.report import write_report

        write_report(results, out)
    return results


def _write_episodes(out: Path, runs: dict[tuple[str, str, int], RunData]) -> None:
    frames: dict[str, list[Any]] = {"world": [], "policy": [], "seed": [], "episode_id": []}
    frames.update({m: [] for m in LIFE_METRICS})
    for (world, policy, seed), run in runs.items():
        n = len(run.episode_ids)
        frames["world"] += [world] * n
        frames["policy"] += [policy] * n
        frames["seed"].append(np.full(n, seed, dtype=np.int64))
        frames["episode_id"].append(run.episode_ids)
        for m in LIFE_METRICS:
            frames[m].append(run.life[m])
    table = pa.table(
        {
            k: (pa.array(v) if k in ("world", "policy") else pa.array(np.concatenate(v)))
            for k, v in frames.items()
        }
    )
    atomic_write_parquet(table, out / "episodes.parquet")


# ---------------------------------------------------------------------- summarising
def summarize_runs(
    config: EvalConfig,
    runs: dict[tuple[str, str, int], RunData],
    worlds: dict[str, WorldConfig],
    catalogs: dict[str, Catalog],
) -> dict[str, Any]:
    """The results dict (``results.json``): see the module docstring and the report."""
    results: list[dict[str, Any]] = []
    paired: list[dict[str, Any]] = []
    curves: dict[str, Any] = {}
    frontier: dict[str, Any] = {}
    segments: dict[str, Any] = {}
    transcripts: dict[str, Any] = {}
    for ew in config.worlds:
        w, seeds = ew.name, ew.seeds or config.seeds
        policies = [p.name for p in config.policies if (w, p.name, seeds[0]) in runs]
        if not policies:
            continue
        pooled = {p: _pool([runs[(w, p, s)] for s in seeds]) for p in policies}
        n_units = len(next(iter(pooled.values()))["units"])
        wts = resample_weights(n_units, config.n_boot, seed=0)
        boot: dict[str, dict[str, np.ndarray]] = {}
        for p, d in pooled.items():
            if len(d["units"]) != n_units:
                raise RuntimeError(f"{w}/{p}: {len(d['units'])} lives, expected {n_units}")
            boot[p] = {m: weighted_means(d["life"][m], wts) for m in LIFE_METRICS}
            ic, cc = wts @ d["item_exposure"], wts @ d["creator_exposure"]
            for m in SET_METRICS:
                boot[p][m] = np.array([set_metrics(ic[i], cc[i])[m] for i in range(len(wts))])
            point = set_metrics(d["item_exposure"].sum(0), d["creator_exposure"].sum(0))
            for m in METRICS:
                if m == "dpfr":
                    continue
                mean = (
                    point[m] if m in SET_METRICS else float(np.nanmean(d["life"][m]))
                    if np.any(~np.isnan(d["life"][m])) else np.nan
                )  # fmt: skip
                if m in SET_METRICS:
                    lo, hi = normal_interval(_num(mean), boot[p][m], config.level)
                else:
                    lo, hi = percentile_interval(boot[p][m], config.level)
                n = n_units if m in SET_METRICS else int(np.sum(~np.isnan(d["life"][m])))
                results.append({"world": w, "policy": p, "metric": m, "mean": _num(mean),
                                "lo": lo, "hi": hi, "n": n})  # fmt: skip
        # DPFR: estimated (NDCG, exposure entropy) frontier over equal-size request samples
        front, points = _dpfr(w, policies, runs, config, seeds)
        frontier[w] = front
        for p, (x, y, dist) in points.items():
            results.append({"world": w, "policy": p, "metric": "dpfr", "mean": _num(dist),
                            "lo": None, "hi": None, "n": 0, "point": [x, y]})  # fmt: skip
        # paired differences against the baseline, per user life
        b = config.baseline
        means = {(r["policy"], r["metric"]): r["mean"] for r in results if r["world"] == w}
        if b in pooled:
            for p in policies:
                if p == b:
                    continue
                for m in METRICS:
                    if m == "dpfr":
                        continue
                    pm, bm = means.get((p, m)), means.get((b, m))
                    diff = None if pm is None or bm is None else pm - bm
                    if m in SET_METRICS:
                        lo, hi = normal_interval(diff, boot[p][m] - boot[b][m], config.level)
                    else:
                        lo, hi = percentile_interval(boot[p][m] - boot[b][m], config.level)
                    paired.append({"world": w, "policy": p, "metric": m, "baseline": b,
                                   "diff": diff, "lo": lo, "hi": hi, "n": n_units})  # fmt: skip
        curves[w] = {p: _curves(pooled[p]) for p in policies}
        segments[w] = _segments(pooled, b if b in pooled else policies[0])
        transcripts[w] = _transcripts(w, policies, runs, config, catalogs[w], seeds[0])
    git = git_state()
    return {
        "title": config.title,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git.get("commit") or "unknown",
        "config": config.model_dump(mode="json"),
        "baseline": config.baseline,
        "seeds": list(config.seeds),
        "worlds": {
            ew.name: {
                "simulator": worlds[ew.name].simulator,
                "catalog": worlds[ew.name].catalog.source,
                "users_source": worlds[ew.name].users.source,
                "users": ew.users or config.users,
                "episodes": ew.episodes or config.episodes,
                "seeds": list(ew.seeds or config.seeds),
                "slate_size": worlds[ew.name].episode.slate_size,
                "candidates": worlds[ew.name].candidates.n_candidates,
            }
            for ew in config.worlds
        },
        "metrics": METRICS,
        "leaderboard_metrics": list(config.leaderboard),
        "results": results,
        "paired": paired,
        "curves": curves,
        "frontier": frontier,
        "segments": segments,
        "transcripts": transcripts,
        "notes": _notes(config, worlds),
    }


def _pool(parts: list[RunData]) -> dict[str, Any]:
    """Lives of several seeds side by side (units: (seed, episode id), seeds in order)."""
    return {
        "units": np.concatenate([p.episode_ids for p in parts]),
        "life": {m: np.concatenate([p.life[m] for p in parts]) for m in LIFE_METRICS},
        "item_exposure": np.concatenate([p.item_exposure for p in parts]),
        "creator_exposure": np.concatenate([p.creator_exposure for p in parts]),
        "segment_value": (
            None
            if parts[0].segment_value is None
            else np.concatenate([p.segment_value for p in parts])
        ),
    }


def _dpfr(
    w: str,
    policies: list[str],
    runs: dict[tuple[str, str, int], RunData],
    config: EvalConfig,
    seeds: list[int],
) -> tuple[dict[str, Any], dict[str, tuple[float, float, float]]]:
    per_policy = {p: [runs[(w, p, s)] for s in seeds] for p in policies}  # rows of every seed
    sizes = {p: sum(len(r.ndcg_steps) for r in rs) for p, rs in per_policy.items()}
    n = min(sizes.values())
    rng = np.random.default_rng(12345)
    n_items = next(iter(per_policy.values()))[0].item_exposure.shape[1]
    k = next(iter(per_policy.values()))[0].k
    points: dict[str, tuple[float, float]] = {}
    pool_c, pool_r = [], []
    for p, rs in per_policy.items():
        cand = np.concatenate([r.candidates for r in rs])
        crel = np.concatenate([r.candidate_relevance for r in rs])
        items = np.concatenate([r.items for r in rs])
        shown = np.concatenate([r.shown for r in rs])
        ndcg = np.concatenate([r.ndcg_steps for r in rs])
        pick = np.sort(rng.choice(len(ndcg), size=n, replace=False))
        counts = M.exposure_counts(items[pick], n_items, shown=shown[pick])
        points[p] = (float(ndcg[pick].mean()), M.exposure_entropy(counts))
        share = np.sort(rng.choice(len(ndcg), size=max(1, n // len(policies)), replace=False))
        pool_c.append(cand[share])
        pool_r.append(crel[share])
    cand, crel = np.concatenate(pool_c), np.concatenate(pool_r)
    front = M.estimate_frontier(cand, crel, n_items=n_items, k=k)
    # the policies' own points may lie beyond the estimate: the frontier is their union's front
    all_points = np.vstack([front, np.array(list(points.values()))])
    front = M.pareto_front(all_points)
    ref = M.frontier_reference_point(front, config.dpfr_alpha)
    dist = M.dpfr(np.array(list(points.values())), front, config.dpfr_alpha)
    out = {p: (x, y, float(d)) for (p, (x, y)), d in zip(points.items(), dist, strict=True)}
    return (
        {
            "x_metric": "ndcg", "y_metric": "item_exposure_entropy",
            "points": front.tolist(), "reference": [float(ref[0]), float(ref[1])],
            "alpha": config.dpfr_alpha, "requests": int(n),
        },
        out,
    )  # fmt: skip


def _curves(d: dict[str, Any]) -> dict[str, Any]:
    sessions = d["life"]["sessions"]
    surv = M.survival_by_session(sessions[~np.isnan(sessions)].astype(np.int64))

    def lorenz(counts: np.ndarray) -> dict[str, list[float]]:
        x, y = M.lorenz_curve(counts)
        if len(x) > 201:  # keep the JSON small: 201 points along the curve
            pick = np.unique(np.linspace(0, len(x) - 1, 201).round().astype(int))
            x, y = x[pick], y[pick]
        return {"x": [round(float(v), 5) for v in x], "y": [round(float(v), 5) for v in y]}

    return {
        "survival_by_session": [float(v) for v in surv],
        "lorenz_items": lorenz(d["item_exposure"].sum(0)),
        "lorenz_creators": lorenz(d["creator_exposure"].sum(0)),
    }


SEGMENT_NAMES = ("low novelty seeking", "mid novelty seeking", "high novelty seeking")


def _segments(pooled: dict[str, dict[str, Any]], ref: str) -> dict[str, Any]:
    """Per policy, retention and engagement for terciles of the users' static novelty
    propensity (the same users meet every policy, so the terciles are shared)."""
    value = pooled[ref]["segment_value"]
    if value is None:
        return {}
    edges = np.nanquantile(value, [1 / 3, 2 / 3])
    seg = np.digitize(value, edges)
    out: dict[str, Any] = {}
    for p, d in pooled.items():
        out[p] = {}
        for i, name in enumerate(SEGMENT_NAMES):
            sel = seg == i
            out[p][name] = {
                "return_rate": _num(np.nanmean(d["life"]["return_rate"][sel]))
                if np.any(~np.isnan(d["life"]["return_rate"][sel])) else None,
                "clicks_per_session": _num(np.nanmean(d["life"]["clicks_per_session"][sel]))
                if sel.any() else None,
                "users": int(sel.sum()),
            }  # fmt: skip
    return {"segment_label": "novelty seeking (static propensity tercile)", "values": out}


def _transcripts(
    w: str,
    policies: list[str],
    runs: dict[tuple[str, str, int], RunData],
    config: EvalConfig,
    catalog: Catalog,
    seed: int,
) -> list[dict[str, Any]]:
    """A few user lives told step by step: lives that wrote an instruction and left, first
    from the baseline and then from the other policies, round robin."""
    from recoworld.envs.recoworld_env import format_step

    if config.transcripts == 0:
        return []

    out: list[dict[str, Any]] = []
    order = [config.baseline] + [p for p in policies if p != config.baseline]
    picks: list[tuple[str, int]] = []
    for p in order:
        if (w, p, seed) not in runs:
            continue
        s = runs[(w, p, seed)].steps
        ep = s["episode_id"]
        instructed = np.unique(ep[s["instructed"].astype(bool)])
        left = np.unique(ep[s["terminated"].astype(bool)])
        both = np.intersect1d(instructed, left)
        pool = both if len(both) else (instructed if len(instructed) else left)
        if len(pool):
            picks.append((p, int(pool[0])))
    picks = picks[: config.transcripts]
    if not picks:
        return []
    for p, episode in picks:
        s = runs[(w, p, seed)].steps
        rows = np.flatnonzero(s["episode_id"] == episode)[:40]
        lines = []
        for r in rows:
            info = {key: s[key][r : r + 1] for key in s}
            lines.append(format_step(catalog, info, float(s["reward"][r]), row=0))
        left = bool(s["terminated"][rows].any())
        out.append({"policy": p, "episode_id": episode, "seed": seed, "left": left,
                    "text": "\n".join(lines)})  # fmt: skip
    return out


def _notes(config: EvalConfig, worlds: dict[str, WorldConfig]) -> list[str]:
    notes = [
        "Confidence intervals: percentile bootstrap over user lives pooled across seeds "
        f"({config.n_boot} resamples, {config.level:.0%}); paired differences resample the "
        "same lives for the policy and the baseline (common random numbers).",
        "Ranking metrics compare slates with the simulator's ground truth: the probability "
        "that the user would click each candidate shown alone, before the step.",
        "DPFR: distance to the alpha-point of an estimated (NDCG, item-exposure entropy) "
        "Pareto frontier over equal-size request samples; lower is better.",
    ]
    for name, w in worlds.items():
        if w.simulator != "parametric":
            notes.append(
                f"World {name}: {w.simulator} simulator with the LLM "
                f"{w.llm.model!r}. Behaviour fidelity comes from the parametric users fitted "
                "to real data; the embedded tiny model's text is not a fidelity claim."
            )
    return notes
