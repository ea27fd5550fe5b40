"""The HTML report: one self-contained page (inline CSS, plots embedded as ``data:`` URIs,
no external CSS, JS, fonts or images) rendered from the Jinja template
``templates/report.html.j2`` (package data) and written atomically as ``report.html``.

Autoescaping is on for the template: every text that comes from the results (titles, notes,
policy and world names, transcripts of what users typed) is HTML-escaped.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoworld.core.atomic import atomic_write
from recoworld.evaluation.report.figures import CAPTIONS, FIGURE_KINDS, figures_png
from recoworld.evaluation.report.index import ResultsIndex, build_index, first_seen, section
from recoworld.evaluation.report.tables import (
    BETTER,
    MISSING,
    WORSE,
    arrow,
    board_rows,
    cell,
    filled_columns,
    format_value,
)

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"
GROUP_TITLES = {
    "engagement": "Engagement",
    "retention": "Retention",
    "ranking": "Ranking",
    "beyond_accuracy": "Beyond accuracy",
    "fairness": "Fairness",
    "instruction": "Instruction following",
}


@cache
def environment() -> jinja2.Environment:
    """The Jinja environment of the report's templates (package data, loaded once).
    Autoescaping is on for ``.html.j2`` templates and, to be safe, for any other name."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("recoworld.evaluation.report", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=True, default=True
        ),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _template() -> jinja2.Template:
    return environment().get_template(TEMPLATE)


def _text(value: Any) -> str:
    return MISSING if value is None else str(value)


def _world_context(idx: ResultsIndex, world: str, figures: dict[str, str]) -> dict[str, Any]:
    results = idx.results
    settings = section(results, "worlds").get(world)
    board = board_rows(idx, world)
    order = [row["policy"] for row in board]

    groups: dict[str, dict[str, Any]] = {}
    for metric in idx.world_metrics(world):
        info = idx.info(metric)
        group = groups.setdefault(
            info["group"],
            {
                "title": GROUP_TITLES.get(info["group"], info["group"].replace("_", " ").title()),
                "metrics": [],
            },
        )
        group["metrics"].append(
            {
                "name": metric,
                "label": info["label"],
                "arrow": arrow(info["higher_is_better"]),
                "cells": [cell(idx, world, p, metric) for p in order],
            }
        )

    figs = []
    for kind in FIGURE_KINDS:
        fid = f"{kind}_{world}"
        if fid in figures:
            figs.append(
                {
                    "id": fid,
                    "data": figures[fid],
                    "alt": f"{kind} plot for {world}",
                    "caption": CAPTIONS[kind],
                    "wide": kind == "lorenz",
                }
            )

    policies, names, values = idx.segment_values(world)
    rfmt = idx.info("return_rate")["fmt"]
    cfmt = idx.info("clicks_per_session")["fmt"]
    segments = []
    for name in names:
        first = True
        for policy in policies:
            v = values[policy].get(name)
            if not isinstance(v, dict):
                continue
            segments.append(
                {
                    "segment": name,
                    "first": first,
                    "policy": policy,
                    "baseline": policy == idx.baseline,
                    "color": idx.color(policy),
                    "users": _text(v.get("users")),
                    "return_rate": format_value(v.get("return_rate"), rfmt),
                    "clicks": format_value(v.get("clicks_per_session"), cfmt),
                }
            )
            first = False
    seg = section(results, "segments").get(world) or {}

    transcripts = [
        {
            "policy": _text(t.get("policy")),
            "seed": _text(t.get("seed")),
            "episode_id": _text(t.get("episode_id")),
            "left": None if t.get("left") is None else bool(t.get("left")),
            "text": str(t.get("text") or ""),
        }
        for t in section(results, "transcripts").get(world) or []
        if isinstance(t, dict)
    ]
    measured = {m["name"] for g in groups.values() for m in g["metrics"]}
    columns = [
        {
            "name": m,
            "label": idx.info(m)["label"],
            "arrow": arrow(idx.info(m)["higher_is_better"]),
        }
        for m in filled_columns(idx, board)
    ]
    return {
        "name": world,
        "columns": columns,
        "settings": settings if isinstance(settings, dict) else {},
        "unmeasured": [idx.info(m)["label"] for m in idx.metrics if m not in measured],
        "leaderboard": board,
        "groups": list(groups.values()),
        "figures": figs,
        "segments": segments,
        "segment_label": str(seg.get("segment_label") or "segment"),
        "transcripts": transcripts,
    }


def render_html(results: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (inline CSS, plots as ``data:`` URIs, a
    small inline script that records on ``<body>`` how many plots decoded:
    ``data-plots-loaded`` / ``data-plots-total``). All text from ``results`` is escaped."""
    idx = build_index(results)
    figures = figures_png(idx)
    worlds_meta = section(results, "worlds")
    world_settings = [
        {"name": w, "settings": s} for w, s in worlds_meta.items() if isinstance(s, dict)
    ]
    setting_keys: list[str] = []
    for w in world_settings:
        first_seen(setting_keys, w["settings"])
    config = results.get("config")
    seeds = results.get("seeds") or []
    first = idx.leaderboard[0] if idx.leaderboard else None
    context = {
        "title": str(results.get("title") or "RecoWorld evaluation"),
        "created": results.get("created"),
        "git_commit": results.get("git_commit"),
        "seeds": ", ".join(str(s) for s in seeds),
        "baseline": idx.baseline,
        "world_settings": world_settings,
        "setting_keys": setting_keys,
        "notes": [str(n) for n in results.get("notes") or []],
        "config": json.dumps(config, indent=2, default=str) if config else "",
        "worlds": [_world_context(idx, w, figures) for w in idx.worlds],
        "sort_label": idx.info(first)["label"] if first else "policy",
        "marker_class": {BETTER: "m-better", WORSE: "m-worse"},
        "return_label": idx.info("return_rate")["label"],
        "clicks_label": idx.info("clicks_per_session")["label"],
    }
    return _template().render(**context)


def write_report(results: dict[str, Any], out_dir: str | Path) -> Path:
    """Render the report and write it atomically as ``<out_dir>/report.html`` (creating
    ``out_dir``); returns the path."""
    path = Path(out_dir) / "report.html"
    text = render_html(results)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
