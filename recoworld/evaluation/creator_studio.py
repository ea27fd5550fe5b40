"""Creator studio: how would a segment of users respond to a new item before it is published?

``evaluate_item(item, config)`` puts a new item (``NewItem``: title, description, topics,
creator, quality) into the catalog, draws ``users`` simulated users of one segment (the world's
``segments``, e.g. the MovieLens segmentation by age, occupation and genre taste), and shows
each of them one slate from their feed with the new item at ``position`` (the other slots are
the ``policy``'s picks among the user's candidates). Then it does the same, with the same users
and the same random streams (common random numbers), for ``comparables`` existing items that
resemble it (the closest topic profiles among items of at least median popularity): the
segment's response to the new item is read against its response to comparable items, paired
per user.

What a new item is to the simulator: its topics and quality are the creator's; its latent
taste vector is the popularity-weighted mean of the 25 items with the most similar topic
profile (the item has no ratings yet); its popularity is the comparables' median unless the
item sets one (0 tests a cold start: MovieLens-fitted users weigh popularity heavily); its
release is the catalog's newest. An LLM user (``simulator: llm``) reads the title, topics,
creator and description; a hybrid user decides from the parametric model and voices its
instructions.

The report (``StudioReport``) gives click, watch, like and follow rates with bootstrap CIs,
the paired differences against the comparables, and a sample of the users' reasons,
mindsets and instructions. ``recoworld population test-item`` prints it and writes
``studio.json`` and ``studio.md``.

With ``llm_user.mode: generate`` the model answers each slate as JSON; an answer that still
fails validation after the repairs (the embedded 135M model's JSON is sometimes cut off at
the token limit) is recorded and that user takes the parametric model's decision
(``llm_user.on_invalid: record``, the default; ``raise`` stops the run instead). The report
counts those fallbacks (``decisions``) for the new item and for the comparables.

With an output directory, the manifest is written before the simulation and each slate's
per-user results (``slates/*.json``) as soon as it is done, so a run that fails keeps what
it produced; the failure itself is written to ``studio.failed.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from recoworld.catalog import Catalog, load_catalog
from recoworld.core.atomic import atomic_write, atomic_write_json
from recoworld.core.config import StrictModel, read_yaml_mapping
from recoworld.core.manifest import write_manifest
from recoworld.core.stats import bootstrap_ci, paired_bootstrap_ci
from recoworld.envs.config import WorldConfig, resolve_world_config
from recoworld.llm import LLMBackend, make_backend
from recoworld.policies.baselines import BASELINES, make_baseline
from recoworld.simulators.parametric.segments import resolve_segments


class NewItem(StrictModel):
    """An item a creator wants to test (``--item item.yaml``)."""

    title: str = Field(min_length=1, max_length=300)
    description: str = Field("", max_length=4000)
    topics: list[str] = Field(min_length=1, description="Topic (genre) names of the catalog.")
    creator: str = Field("New creator", min_length=1, description="Existing or new creator.")
    quality: float = Field(0.6, ge=0.0, le=1.0, description="Production quality in [0, 1].")
    duration: float = Field(100.0, gt=0.0, description="Minutes.")
    popularity: float | None = Field(
        None,
        ge=0.0,
        description="Interaction count the simulator sees (its popularity term). None: the "
        "median of the comparable items, so the comparison isolates the content; 0 tests a "
        "cold start.",
    )

    @field_validator("topics")
    @classmethod
    def _unique(cls, topics: list[str]) -> list[str]:
        if len(set(topics)) != len(topics):
            raise ValueError(f"topics: repeated names in {topics}")
        return topics


class StudioConfig(StrictModel):
    """Where and how to test a new item."""

    world: WorldConfig = Field(
        default_factory=lambda: WorldConfig.model_validate(
            {
                "simulator": "llm",
                "catalog": {"source": "movielens"},
                "users": {"source": "movielens"},
                "segments": "movielens",
                "candidates": {"n_candidates": 20},
                "episode": {"slate_size": 3},
            }
        )
    )
    segment: str = Field(min_length=1, description="Name of one of the world's segments.")
    users: int = Field(100, ge=2, le=100_000)
    comparables: int = Field(3, ge=1, le=20)
    position: int = Field(0, ge=0, description="Slot of the slate that shows the item.")
    policy: str = Field("popular", description="Fills the other slots of the slate.")
    seed: int = 0
    samples: int = Field(5, ge=0, le=50, description="Users' reasons shown in the report.")

    @field_validator("policy")
    @classmethod
    def _known(cls, policy: str) -> str:
        if policy not in BASELINES or policy in ("oracle", "llm_rerank"):
            raise ValueError(f"policy {policy!r}: use one of random, popular, linucb, instruction")
        return policy


RATES = ("click", "watch", "like", "follow")


def topic_vector(catalog: Catalog, topics: list[str]) -> np.ndarray:
    """[T] multi-hot of topic names (unknown names: a ValueError listing the known ones)."""
    unknown = [t for t in topics if t not in catalog.topic_names]
    if unknown:
        known = catalog.topic_names
        raise ValueError(f"item topics {unknown} are not in the catalog; known: {known}")
    vec = np.zeros(catalog.n_topics, dtype=np.float32)
    vec[[catalog.topic_names.index(t) for t in topics]] = 1.0
    return vec


def _topic_similarity(catalog: Catalog, vec: np.ndarray) -> np.ndarray:
    tn = catalog.topics_normalized
    return tn @ vec / np.maximum(np.linalg.norm(tn, axis=1) * np.linalg.norm(vec), 1e-12)


def add_item(catalog: Catalog, item: NewItem, popularity: float = 0.0) -> Catalog:
    """``catalog`` plus ``item`` as its last row (see the module docstring for how its
    latent vector and release time are set); its popularity is ``popularity`` unless the
    item sets its own."""
    vec = topic_vector(catalog, item.topics)
    near = np.argsort(-_topic_similarity(catalog, vec), kind="stable")[:25]
    w = np.log1p(catalog.popularity[near]) + 1e-6
    latent = (w[:, None] * catalog.latent[near]).sum(0, keepdims=True) / w.sum()
    creators = list(catalog.creator_names)
    if item.creator in creators:
        creator = creators.index(item.creator)
    else:
        creators.append(item.creator)
        creator = len(creators) - 1
    pop = item.popularity if item.popularity is not None else popularity
    return Catalog(
        name=f"{catalog.name}+new",
        item_ids=np.append(catalog.item_ids, int(catalog.item_ids.max()) + 1),
        titles=[*catalog.titles, item.title],
        descriptions=[*catalog.descriptions, item.description],
        topics=np.vstack([catalog.topics, vec[None, :].astype(catalog.topics.dtype)]),
        topic_names=list(catalog.topic_names),
        creator=np.append(catalog.creator, creator),
        creator_names=creators,
        quality=np.append(catalog.quality, np.float32(item.quality)),
        duration=np.append(catalog.duration, np.float32(item.duration)),
        popularity=np.append(catalog.popularity, np.float32(pop)),
        release_time=np.append(catalog.release_time, catalog.release_time.max()),
        latent=np.vstack([catalog.latent, latent.astype(catalog.latent.dtype)]),
        meta=dict(catalog.meta),
    )


def comparable_items(catalog: Catalog, topics: list[str], count: int) -> np.ndarray:
    """Existing items most like an item of ``topics``: highest topic-profile cosine among
    items of at least median popularity (ties: more popular first)."""
    sim = _topic_similarity(catalog, topic_vector(catalog, topics))
    pool = np.flatnonzero(catalog.popularity >= np.median(catalog.popularity))
    order = np.lexsort((-catalog.popularity[pool], -sim[pool]))
    return pool[order[:count]]


def _segment_world(config: StudioConfig) -> WorldConfig:
    """The world with every new user drawn from the chosen segment."""
    world = config.world
    if world.segments is None:
        raise ValueError("the studio's world has no segments (set world.segments)")
    segments = resolve_segments(world.segments)
    names = [s.name for s in segments]
    if config.segment not in names:
        raise ValueError(f"segment {config.segment!r} is not among the world's segments {names}")
    chosen = segments[names.index(config.segment)].model_copy(update={"weight": 1.0})
    cfg = world.model_copy(deep=True)
    cfg.segments = [chosen]
    cfg.episode.text_info = "all"
    return cfg


def _one_slate(
    cfg: WorldConfig,
    catalog: Catalog,
    movielens: Any,
    item: int,
    config: StudioConfig,
    backend: LLMBackend | None,
) -> dict[str, Any]:
    """Show ``item`` at ``config.position`` in one slate to each of the segment's users."""
    from recoworld.envs.world import World

    world = World(cfg, config.users, catalog, movielens, backend)
    try:
        obs, _ = world.reset(seed=config.seed)
        assert world.cands is not None
        cands = world.cands
        present = cands == item
        # the item takes candidate slot 0 (where it already is elsewhere, swap it out)
        cands[present] = cands[:, 0:1].repeat(cands.shape[1], 1)[present]
        cands[:, 0] = item
        obs = world._observe()
        rec = make_baseline(config.policy, world, seed=config.seed)
        picks = np.asarray(rec.act(obs), dtype=np.int64)
        k = world.slate_size
        pos = min(config.position, k - 1)
        # the policy's picks in order without candidate 0 (the item), k - 1 of them, and the
        # item inserted at `pos`
        order = np.argsort(picks == 0, axis=1, kind="stable")
        others = np.take_along_axis(picks, order, axis=1)[:, : k - 1]
        item_col = np.zeros((len(picks), 1), dtype=np.int64)
        slate = np.concatenate([others[:, :pos], item_col, others[:, pos:]], axis=1)
        _, _, _, _, info = world.step(slate)
        rows = np.arange(config.users)
        out = {name: np.asarray(info[name])[rows, pos].astype(np.float64) for name in RATES}
        out["satisfaction"] = np.asarray(info["satisfaction"], dtype=np.float64)
        out["left"] = np.asarray(info["left"], dtype=bool)
        out["segment"] = np.asarray(world.state.segment) if world.state is not None else None
        for key in ("reasoning", "mindset", "instruction"):
            out[key] = list(info.get(key, [None] * config.users))
        source = info.get("decision_source")
        out["decision_source"] = (
            [None] * config.users if source is None else [source[b] for b in rows]
        )
        stats = getattr(world.simulator, "stats", {})
        out["narration"] = {
            "llm": int(stats.get("narrated", 0)),
            "template": int(stats.get("narration_fallback", 0)),
        }
        return out
    finally:
        world.close()


def _decision_counts(runs: list[dict[str, Any]]) -> dict[str, int]:
    """How the users of ``runs`` decided: by the LLM's answer (``llm``) or, where the answer
    was invalid after the repairs and recorded, by the parametric model (``fallback``)."""
    sources = [s for run in runs for s in run["decision_source"]]
    return {
        "llm": sum(1 for s in sources if s in ("llm_generate", "llm_score")),
        "fallback": sum(1 for s in sources if s == "fallback_parametric"),
    }


def slate_record(label: str, title: str, run: dict[str, Any]) -> dict[str, Any]:
    """One slate's per-user results as JSON (what ``run_studio`` keeps in ``slates/``)."""
    per_user = {}
    for key, value in run.items():
        if key in ("segment", "narration"):
            continue
        per_user[key] = np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
    return {"slate": label, "title": title, "narration": run["narration"], "users": per_user}


def evaluate_item(
    item: NewItem,
    config: StudioConfig,
    llm_backend: LLMBackend | None = None,
    on_slate: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Simulate the segment's response to ``item`` and to comparable existing items; returns
    the report (a JSON-ready dict; ``format_report`` renders it). ``on_slate(label, title,
    result)`` is called after each slate (``new_item``, then ``comparable_1``, ...), e.g. to
    keep partial results of a run that fails later."""
    cfg = _segment_world(config)
    base, movielens = load_catalog(cfg.catalog)
    # the users are fitted to the original rating log (cached); the catalog gains the item
    comps = comparable_items(base, item.topics, config.comparables)
    catalog = add_item(base, item, popularity=float(np.median(base.popularity[comps])))
    new = catalog.n_items - 1
    backend = llm_backend
    owned = None
    if cfg.simulator != "parametric" and backend is None:
        backend = owned = make_backend(cfg.llm)
    shown = [("new_item", new)] + [(f"comparable_{i + 1}", int(c)) for i, c in enumerate(comps)]
    runs = []
    try:
        for label, index in shown:
            runs.append(_one_slate(cfg, catalog, movielens, index, config, backend))
            if on_slate is not None:
                on_slate(label, catalog.titles[index], runs[-1])
    finally:
        if owned is not None:
            owned.close()
    first, rest = runs[0], runs[1:]
    rates: dict[str, Any] = {}
    for name in RATES:
        new_v = first[name]
        comp_v = np.mean([r[name] for r in rest], axis=0)
        rates[name] = {
            "new": bootstrap_ci(new_v, n_boot=1000),
            "comparables": bootstrap_ci(comp_v, n_boot=1000),
            "difference": paired_bootstrap_ci(new_v, comp_v, n_boot=1000),
        }
    samples = []
    for b in range(min(config.samples, config.users)):
        samples.append(
            {
                "user": b,
                "clicked": bool(first["click"][b]),
                "watched": float(first["watch"][b]),
                "reason": first["reasoning"][b],
                "mindset": first["mindset"][b],
                "instruction": first["instruction"][b],
                "left": bool(first["left"][b]),
            }
        )
    return {
        "item": item.model_dump(),
        "segment": config.segment,
        "users": config.users,
        "simulator": cfg.simulator,
        "llm_model": cfg.llm.model if cfg.simulator != "parametric" else None,
        "position": config.position,
        "item_popularity": float(catalog.popularity[new]),
        "policy": config.policy,
        "seed": config.seed,
        "comparables": [
            {
                "title": catalog.titles[int(c)],
                "topics": catalog.topic_list(int(c)),
                "popularity": float(catalog.popularity[int(c)]),
            }
            for c in comps
        ],
        "rates": rates,
        "samples": samples,
        "narration": first["narration"],
        "decisions": (
            {
                "mode": cfg.llm_user.mode,
                "on_invalid": cfg.llm_user.on_invalid,
                "max_repairs": (backend.config if backend is not None else cfg.llm).max_repairs,
                "new_item": _decision_counts([first]),
                "comparables": _decision_counts(rest),
            }
            if cfg.simulator == "llm"
            else None
        ),
    }


def format_report(report: dict[str, Any]) -> str:
    """The studio report as Markdown, for a creator to read."""
    item = report["item"]
    lines = [
        f'# Creator studio: "{item["title"]}"',
        "",
        f"Segment **{report['segment']}**, {report['users']} simulated users, one slate each "
        f"with the item at position {report['position'] + 1} (other slots: {report['policy']});"
        f" simulator {report['simulator']}"
        + (f" ({report['llm_model']})" if report["llm_model"] else "")
        + f", seed {report['seed']}.",
        "",
        f"Topics: {', '.join(item['topics'])}; creator: {item['creator']}; "
        f"quality {item['quality']:.2f}; popularity as the users see it: "
        f"{report['item_popularity']:.0f} ratings.",
        "",
        "Compared with the same users' response to these existing items in the same place:",
        "",
    ]
    for c in report["comparables"]:
        lines.append(f"- {c['title']} ({', '.join(c['topics'])})")
    lines += [
        "",
        "| response | new item | comparable items | difference (paired) |",
        "|---|---:|---:|---:|",
    ]
    for name in RATES:
        r = report["rates"][name]
        label = "watch (fraction)" if name == "watch" else f"{name} rate"

        def fmt(ci: dict[str, float]) -> str:
            return f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"

        d = r["difference"]
        sign = "better" if d["lo"] > 0 else ("worse" if d["hi"] < 0 else "no clear difference")
        lines.append(
            f"| {label} | {fmt(r['new'])} | {fmt(r['comparables'])} | "
            f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] ({sign}) |"
        )
    lines += ["", "95% bootstrap intervals over users.", "", "## What some users said", ""]
    for s in report["samples"]:
        what = f"clicked, watched {s['watched']:.0%}" if s["clicked"] else "skipped it"
        lines.append(f"- user {s['user']}: {what}.")
        for key in ("reason", "mindset", "instruction"):
            if s.get(key):
                lines.append(f"  - {key}: {s[key]}")
        if s["left"]:
            lines.append("  - left the app after this slate")
    dec = report.get("decisions") or {}
    if dec.get("mode") == "generate":
        new, comp = dec["new_item"], dec["comparables"]
        lines += [
            "",
            f"Decisions: {new['fallback']} of {new['llm'] + new['fallback']} LLM answers for the "
            f"new item and {comp['fallback']} of {comp['llm'] + comp['fallback']} for the "
            f"comparable items were invalid after {dec['max_repairs']} repair(s) and fell back "
            f"to the parametric user model's decision (llm_user.on_invalid: {dec['on_invalid']};"
            " decision_source 'fallback_parametric').",
        ]
    nar = report.get("narration") or {}
    if nar.get("llm", 0) + nar.get("template", 0) > 0:
        lines += [
            "",
            f"Reasons and mindsets written by the LLM for {nar['llm']} users; "
            f"{nar['template']} fell back to the simulator's template text (the model's answer "
            "was invalid or looked broken).",
        ]
    if report["simulator"] != "parametric":
        lines += [
            "",
            "Note: the users' words come from the configured LLM; with the embedded tiny model "
            "they are illustrative, not a fidelity claim. Choices of MovieLens-fitted users are "
            "grounded in real ratings only in the parametric and hybrid simulators.",
        ]
    return "\n".join(lines) + "\n"


def run_studio(
    item_path: str | Path,
    segment: str,
    users: int,
    out_dir: str | Path | None = None,
    world: str | Path | None = None,
    simulator: Literal["llm", "hybrid", "parametric"] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """CLI entry: read ``item.yaml`` (and a world YAML), run ``evaluate_item``, write
    ``studio.json``, ``studio.md`` and a manifest under ``out_dir`` when given."""
    item = NewItem.model_validate(read_yaml_mapping(item_path))
    base = StudioConfig.model_fields["world"].default_factory()  # type: ignore[misc]
    world_cfg = resolve_world_config(world) if world is not None else base
    if simulator is not None:
        world_cfg = world_cfg.model_copy(update={"simulator": simulator})
    config = StudioConfig(world=world_cfg, segment=segment, users=users, **options)
    if out_dir is None:
        return evaluate_item(item, config)
    out = Path(out_dir)
    # the manifest first and each slate as it is done: a run that fails keeps what it made
    write_manifest(out, {"studio": config.model_dump(mode="json"), "item": item.model_dump()},
                   config.seed)  # fmt: skip
    done: list[str] = []

    def keep(label: str, title: str, run: dict[str, Any]) -> None:
        atomic_write_json(slate_record(label, title, run), out / "slates" / f"{label}.json")
        done.append(label)

    failed = out / "studio.failed.json"
    try:
        report = evaluate_item(item, config, on_slate=keep)
    except BaseException as err:
        atomic_write_json(
            {"error": f"{type(err).__name__}: {err}", "completed_slates": done}, failed
        )
        raise
    atomic_write_json(report, out / "studio.json")
    text = format_report(report)
    atomic_write(out / "studio.md", lambda tmp: Path(tmp).write_text(text))
    failed.unlink(missing_ok=True)
    return report
