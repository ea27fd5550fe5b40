"""Evaluation report: turns a results dict (what the evaluation runner writes as
``results.json``) into figures, a terminal leaderboard and one self-contained HTML page.

This module owns the presentation only. It computes no statistics: every mean, 95%
confidence interval and paired difference against the baseline policy is read from the
results dict. Public entry points:

* ``make_figures`` - figure id -> base64 PNG (retention, engagement/diversity trade-off,
  Lorenz curves, per-segment return rate, DPFR frontier), one set per world;
* ``leaderboard_rows`` - one formatted row per policy for a world's leaderboard metrics, with
  the paired difference vs the baseline and a significance marker;
* ``print_leaderboard`` - the leaderboards as rich tables on the terminal;
* ``render_html`` / ``write_report`` - the HTML page (no external CSS, JS, fonts or images;
  plots are embedded as ``data:`` URIs), written atomically as ``report.html``.

A value of ``None`` (or a non-finite number) means "not available" and is shown as "–";
metrics missing for some (world, policy) pairs and empty sections are tolerated.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoworld.core.atomic import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from rich.console import Console

__all__ = [
    "BETTER",
    "MISSING",
    "WORSE",
    "leaderboard_rows",
    "make_figures",
    "print_leaderboard",
    "render_html",
    "write_report",
]

MISSING = "–"
BETTER = "▲"
WORSE = "▼"
DEFAULT_FMT = ".3g"
DPI = 100
# matplotlib's tab10, hard-coded so that the HTML legend uses the very same colours
TAB10 = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
GROUP_TITLES = {
    "engagement": "Engagement",
    "retention": "Retention",
    "ranking": "Ranking",
    "beyond_accuracy": "Beyond accuracy",
    "fairness": "Fairness",
    "instruction": "Instruction following",
}
FIGURE_KINDS = ("retention", "tradeoff", "dpfr", "lorenz", "segments")


# --------------------------------------------------------------------------- results index


def _num(value: Any) -> float | None:
    """``value`` as a finite float, else None (None, NaN, inf and non-numbers are missing)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _section(results: dict[str, Any], key: str) -> dict[str, Any]:
    """A per-world section of the results (``curves``, ``frontier``, ...); {} when absent."""
    value = results.get(key)
    return value if isinstance(value, dict) else {}


def _first_seen(items: list[str], new: Any) -> None:
    for item in new:
        if isinstance(item, str) and item not in items:
            items.append(item)


@dataclass
class _Index:
    """Lookups over a results dict (built once per public call)."""

    results: dict[str, Any]
    baseline: str | None
    metrics: dict[str, dict[str, Any]]
    leaderboard: list[str]
    worlds: list[str]
    policies: list[str]
    stats: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    paired: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    world_policies: dict[str, list[str]] = field(default_factory=dict)

    def info(self, metric: str) -> dict[str, Any]:
        """The metric's description, with defaults for anything not given."""
        desc = self.metrics.get(metric) or {}
        return {
            "label": str(desc.get("label") or metric),
            "group": str(desc.get("group") or "other"),
            "higher_is_better": bool(desc.get("higher_is_better", True)),
            "fmt": str(desc.get("fmt") or DEFAULT_FMT),
        }

    def mean(self, world: str, policy: str, metric: str) -> float | None:
        return _num(self.stats.get((world, policy, metric), {}).get("mean"))

    def color(self, policy: str) -> str:
        idx = self.policies.index(policy) if policy in self.policies else len(self.policies)
        return TAB10[idx % len(TAB10)]

    def world_metrics(self, world: str) -> list[str]:
        """Metrics with at least one entry for ``world``, in display order."""
        seen = {m for (w, _, m) in self.stats if w == world}
        seen |= {m for (w, _, m) in self.paired if w == world}
        order = list(self.metrics)
        _first_seen(order, (m for (w, _, m) in self.stats if w == world))
        _first_seen(order, (m for (w, _, m) in self.paired if w == world))
        return [m for m in order if m in seen]


def _index(results: dict[str, Any]) -> _Index:
    baseline = results.get("baseline")
    metrics = {
        str(k): (v if isinstance(v, dict) else {})
        for k, v in (results.get("metrics") or {}).items()
    }
    leaderboard = [str(m) for m in (results.get("leaderboard_metrics") or [])] or list(metrics)
    rows = [r for r in (results.get("results") or []) if isinstance(r, dict)]
    paired = [r for r in (results.get("paired") or []) if isinstance(r, dict)]
    curves = _section(results, "curves")
    segments = _section(results, "segments")
    transcripts = _section(results, "transcripts")

    worlds: list[str] = []
    _first_seen(worlds, _section(results, "worlds"))
    _first_seen(worlds, (r.get("world") for r in rows))
    _first_seen(worlds, (r.get("world") for r in paired))
    for section in (curves, _section(results, "frontier"), segments, transcripts):
        _first_seen(worlds, section)

    policies: list[str] = []
    _first_seen(policies, (r.get("policy") for r in rows))
    _first_seen(policies, (r.get("policy") for r in paired))
    for per_policy in curves.values():
        _first_seen(policies, per_policy or {})
    for seg in segments.values():
        _first_seen(policies, (seg or {}).get("values") or {})
    for items in transcripts.values():
        _first_seen(policies, (t.get("policy") for t in items or [] if isinstance(t, dict)))
    if isinstance(baseline, str) and baseline not in policies:
        policies.append(baseline)

    idx = _Index(results, baseline, metrics, leaderboard, worlds, policies)
    for r in rows:
        idx.stats[(r.get("world"), r.get("policy"), r.get("metric"))] = r
    for r in paired:
        if baseline is None or r.get("baseline", baseline) == baseline:
            idx.paired[(r.get("world"), r.get("policy"), r.get("metric"))] = r
    for world in worlds:
        present = {p for (w, p, _) in idx.stats if w == world}
        present |= {p for (w, p, _) in idx.paired if w == world}
        idx.world_policies[world] = [p for p in policies if p in present]
    return idx


# --------------------------------------------------------------------------- formatting


def _fmt(value: Any, fmt: str, signed: bool = False) -> str:
    x = _num(value)
    if x is None:
        return MISSING
    spec = fmt
    if signed and not spec.startswith(("+", "-", " ")):
        spec = "+" + spec
    try:
        text = format(x, spec)
    except ValueError:
        text = format(x, ("+" if signed else "") + DEFAULT_FMT)
    return text


def _interval(mean: Any, lo: Any, hi: Any, fmt: str, signed: bool = False) -> str:
    """``"mean [lo, hi]"``; "–" without a mean, the bare mean without both CI bounds."""
    if _num(mean) is None:
        return MISSING
    text = _fmt(mean, fmt, signed)
    if _num(lo) is None or _num(hi) is None:
        return text
    return f"{text} [{_fmt(lo, fmt, signed)}, {_fmt(hi, fmt, signed)}]"


def _marker(lo: Any, hi: Any, higher_is_better: bool) -> str:
    """▲ when the CI of the paired difference lies entirely on the better side of 0, ▼ when it
    lies entirely on the worse side, "" otherwise (or when a bound is missing)."""
    lo_, hi_ = _num(lo), _num(hi)
    if lo_ is None or hi_ is None:
        return ""
    if lo_ > 0:
        return BETTER if higher_is_better else WORSE
    if hi_ < 0:
        return WORSE if higher_is_better else BETTER
    return ""


def _cell(idx: _Index, world: str, policy: str, metric: str) -> dict[str, Any]:
    """One (world, policy, metric) table cell: the statistic and the paired difference."""
    info = idx.info(metric)
    stat = idx.stats.get((world, policy, metric), {})
    is_baseline = policy == idx.baseline
    pair = {} if is_baseline else idx.paired.get((world, policy, metric), {})
    diff_text = ""
    if not is_baseline and pair:
        diff_text = _interval(pair.get("diff"), pair.get("lo"), pair.get("hi"), info["fmt"], True)
    return {
        "mean": _num(stat.get("mean")),
        "lo": _num(stat.get("lo")),
        "hi": _num(stat.get("hi")),
        "n": stat.get("n"),
        "text": _interval(stat.get("mean"), stat.get("lo"), stat.get("hi"), info["fmt"]),
        "diff": _num(pair.get("diff")),
        "diff_lo": _num(pair.get("lo")),
        "diff_hi": _num(pair.get("hi")),
        "diff_n": pair.get("n"),
        "diff_text": diff_text,
        "marker": _marker(pair.get("lo"), pair.get("hi"), info["higher_is_better"]) if pair else "",
    }


def _sort_policies(idx: _Index, world: str, policies: list[str]) -> list[str]:
    """Best first by the first leaderboard metric; missing values last, ties in input order."""
    if not idx.leaderboard:
        return list(policies)
    metric = idx.leaderboard[0]
    higher = idx.info(metric)["higher_is_better"]

    def key(item: tuple[int, str]) -> tuple[int, float, int]:
        pos, policy = item
        m = idx.mean(world, policy, metric)
        if m is None:
            return (1, 0.0, pos)
        return (0, -m if higher else m, pos)

    return [p for _, p in sorted(enumerate(policies), key=key)]


def _leaderboard_rows(idx: _Index, world: str) -> list[dict[str, Any]]:
    rows = []
    for policy in _sort_policies(idx, world, idx.world_policies.get(world, [])):
        rows.append(
            {
                "policy": policy,
                "baseline": policy == idx.baseline,
                "color": idx.color(policy),
                "cells": {m: _cell(idx, world, policy, m) for m in idx.leaderboard},
            }
        )
    return rows


def _filled_columns(idx: _Index, rows: list[dict[str, Any]]) -> list[str]:
    """The leaderboard metrics with a value for at least one policy (the columns shown)."""
    return [
        m
        for m in idx.leaderboard
        if any(row["cells"][m]["mean"] is not None or row["cells"][m]["diff_text"] for row in rows)
    ]


def leaderboard_rows(results: dict[str, Any], world: str) -> list[dict[str, Any]]:
    """One row per policy evaluated in ``world``, best first by the first leaderboard metric.

    Each row is ``{"policy": str, "baseline": bool, "color": str, "cells": {metric: cell}}``
    with one cell per leaderboard metric (in ``results["leaderboard_metrics"]`` order)::

        {"text": "0.70 [0.65, 0.75]",         # mean [95% CI], "–" when not available
         "mean", "lo", "hi", "n",             # the raw values (None when not available)
         "diff_text": "+0.15 [+0.10, +0.20]", # paired diff vs the baseline ("" for it)
         "diff", "diff_lo", "diff_hi", "diff_n",
         "marker": "▲" | "▼" | ""}            # significantly better / worse / neither

    The marker honours the metric's ``higher_is_better``: for a lower-is-better metric a
    CI entirely below 0 is "▲".
    """
    return _leaderboard_rows(_index(results), world)


# --------------------------------------------------------------------------- figures


def _new_figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def _png_b64(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _xy(curve: Any) -> tuple[list[float], list[float]] | None:
    """A ``{"x": [...], "y": [...]}`` curve as two equal-length lists of floats, else None."""
    if not isinstance(curve, dict):
        return None
    pts = [
        (_num(x), _num(y)) for x, y in zip(curve.get("x") or [], curve.get("y") or [], strict=False)
    ]
    pts = [(x, y) for x, y in pts if x is not None and y is not None]
    if not pts:
        return None
    return [x for x, _ in pts], [y for _, y in pts]


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, framealpha=0.85)


def _fig_retention(idx: _Index, world: str) -> Figure | None:
    curves = _section(idx.results, "curves").get(world) or {}
    series = []
    for policy in idx.policies:
        surv = (curves.get(policy) or {}).get("survival_by_session") or []
        ys = [_num(v) for v in surv]
        if any(v is not None for v in ys):
            series.append((policy, ys))
    if not series:
        return None
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(6.4, 3.8)
    ax = fig.subplots()
    for policy, ys in series:
        xs = list(range(1, len(ys) + 1))
        ys_plot = [math.nan if v is None else v for v in ys]
        ax.plot(xs, ys_plot, marker="o", ms=3, label=policy, color=idx.color(policy))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("session")
    ax.set_ylabel("share of users reaching it")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Retention by session — {world}")
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


def _pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-dominated points (both coordinates higher is better), sorted by x."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 >= x and y2 >= y) and (x2 > x or y2 > y)
            for j, (x2, y2) in enumerate(points)
            if j != i
        )
        if not dominated and (x, y) not in front:
            front.append((x, y))
    return sorted(front)


def _err(mean: float, lo: float | None, hi: float | None) -> tuple[float, float]:
    below = 0.0 if lo is None else max(mean - lo, 0.0)
    above = 0.0 if hi is None else max(hi - mean, 0.0)
    return below, above


def _fig_tradeoff(idx: _Index, world: str) -> Figure | None:
    xm, ym = "ild", "clicks_per_session"
    pts = []
    for policy in idx.world_policies.get(world, []):
        x, y = idx.mean(world, policy, xm), idx.mean(world, policy, ym)
        if x is None or y is None:
            continue
        sx, sy = idx.stats[(world, policy, xm)], idx.stats[(world, policy, ym)]
        xerr = _err(x, _num(sx.get("lo")), _num(sx.get("hi")))
        yerr = _err(y, _num(sy.get("lo")), _num(sy.get("hi")))
        pts.append((policy, x, y, xerr, yerr))
    if not pts:
        return None
    fig = _new_figure(6.4, 4.2)
    ax = fig.subplots()
    for policy, x, y, xerr, yerr in pts:
        color = idx.color(policy)
        ax.errorbar(
            [x],
            [y],
            xerr=[[xerr[0]], [xerr[1]]],
            yerr=[[yerr[0]], [yerr[1]]],
            fmt="o",
            color=color,
            ecolor=color,
            elinewidth=1,
            capsize=3,
            label=policy,
        )
        ax.annotate(policy, (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8)
    # Pareto frontier in "better" orientation (a lower-is-better metric is negated)
    sx = 1.0 if idx.info(xm)["higher_is_better"] else -1.0
    sy = 1.0 if idx.info(ym)["higher_is_better"] else -1.0
    front = _pareto([(sx * x, sy * y) for _, x, y, _, _ in pts])
    if len(front) >= 2:
        fx = [sx * x for x, _ in front]
        fy = [sy * y for _, y in front]
        ax.step(fx, fy, where="pre", ls="--", color="0.35", lw=1.2, label="Pareto frontier")
    ax.set_xlabel(f"{idx.info(xm)['label']} (diversity)")
    ax.set_ylabel(f"{idx.info(ym)['label']} (engagement)")
    ax.margins(0.12)
    ax.set_title(f"Engagement vs diversity (mean, 95% CI) — {world}")
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


def _fig_lorenz(idx: _Index, world: str) -> Figure | None:
    curves = _section(idx.results, "curves").get(world) or {}
    panels: dict[str, list[tuple[str, list[float], list[float]]]] = {}
    for key in ("lorenz_items", "lorenz_creators"):
        panels[key] = []
        for policy in idx.policies:
            xy = _xy((curves.get(policy) or {}).get(key))
            if xy is not None:
                panels[key].append((policy, *xy))
    if not any(panels.values()):
        return None
    fig = _new_figure(9.6, 4.0)
    axes = fig.subplots(1, 2)
    for ax, (key, title) in zip(
        axes, (("lorenz_items", "items"), ("lorenz_creators", "creators")), strict=True
    ):
        ax.plot([0, 1], [0, 1], ls=":", color="0.5", lw=1, label="equality")
        for policy, xs, ys in panels[key]:
            ax.plot(xs, ys, label=policy, color=idx.color(policy))
        if not panels[key]:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(f"cumulative share of {title} (least exposed first)")
        ax.set_ylabel("cumulative share of exposure")
        ax.set_title(f"Exposure Lorenz curve: {title}")
        ax.grid(alpha=0.3)
        _legend(ax)
    fig.suptitle(world, fontsize=10)
    return fig


def _segment_values(idx: _Index, world: str) -> tuple[list[str], list[str], dict[str, Any]]:
    seg = _section(idx.results, "segments").get(world) or {}
    values = seg.get("values") or {}
    policies = [p for p in idx.policies if isinstance(values.get(p), dict)]
    names: list[str] = []
    for policy in policies:
        _first_seen(names, values[policy])
    return policies, names, values


def _fig_segments(idx: _Index, world: str) -> Figure | None:
    policies, names, values = _segment_values(idx, world)
    bars = {p: [_num((values[p].get(s) or {}).get("return_rate")) for s in names] for p in policies}
    if not any(v is not None for vs in bars.values() for v in vs):
        return None
    seg = _section(idx.results, "segments").get(world) or {}
    fig = _new_figure(max(6.4, 1.4 * len(names) + 2), 3.8)
    ax = fig.subplots()
    width = 0.8 / max(len(policies), 1)
    for k, policy in enumerate(policies):
        xs = [i - 0.4 + width * (k + 0.5) for i in range(len(names))]
        pairs = [(x, v) for x, v in zip(xs, bars[policy], strict=True) if v is not None]
        ax.bar(
            [x for x, _ in pairs],
            [v for _, v in pairs],
            width=width,
            label=policy,
            color=idx.color(policy),
        )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_xlabel(str(seg.get("segment_label") or "segment"))
    ax.set_ylabel(idx.info("return_rate")["label"])
    ax.set_title(f"Return rate by user segment — {world}")
    ax.grid(alpha=0.3, axis="y")
    _legend(ax)
    return fig


def _fig_dpfr(idx: _Index, world: str) -> Figure | None:
    frontier = _section(idx.results, "frontier").get(world) or {}
    pts = [
        (_num(p[0]), _num(p[1]))
        for p in frontier.get("points") or []
        if isinstance(p, list | tuple) and len(p) >= 2
    ]
    pts = sorted((x, y) for x, y in pts if x is not None and y is not None)
    if not pts:
        return None
    xm = str(frontier.get("x_metric") or "ndcg")
    ym = str(frontier.get("y_metric") or "item_exposure_entropy")
    fig = _new_figure(6.4, 4.2)
    ax = fig.subplots()
    ax.plot(
        [x for x, _ in pts], [y for _, y in pts], "-", color="0.3", marker=".", label="frontier"
    )
    ref = frontier.get("reference")
    if isinstance(ref, list | tuple) and len(ref) >= 2:
        rx, ry = _num(ref[0]), _num(ref[1])
        if rx is not None and ry is not None:
            alpha = _num(frontier.get("alpha"))
            label = "reference" + (f" (α = {alpha:g})" if alpha is not None else "")
            ax.plot([rx], [ry], marker="*", ms=14, ls="", color="black", label=label)
    for policy in idx.world_policies.get(world, []):
        x, y = idx.mean(world, policy, xm), idx.mean(world, policy, ym)
        if x is None or y is None:
            continue
        ax.plot([x], [y], "o", color=idx.color(policy), label=policy)
        ax.annotate(policy, (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8)
    ax.set_xlabel(idx.info(xm)["label"])
    ax.set_ylabel(idx.info(ym)["label"])
    ax.margins(0.1)
    ax.set_title(f"Relevance–fairness frontier (DPFR) — {world}")
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


_FIGURES = {
    "retention": _fig_retention,
    "tradeoff": _fig_tradeoff,
    "dpfr": _fig_dpfr,
    "lorenz": _fig_lorenz,
    "segments": _fig_segments,
}
_CAPTIONS = {
    "retention": "Share of users still active at each session (survival), per policy.",
    "tradeoff": "Engagement (clicks per session) against intra-list diversity: policy means "
    "with 95% CIs in both directions; dashed: the Pareto frontier of the policies.",
    "dpfr": "Relevance–fairness frontier: the line is the achievable frontier, the star the "
    "reference point; the dots are the policies' means.",
    "lorenz": "Lorenz curves of exposure over items and creators; the dotted diagonal is "
    "perfect equality (further below = more concentrated).",
    "segments": "Return rate per user segment, per policy.",
}


def _make_figures(idx: _Index) -> dict[str, str]:
    out: dict[str, str] = {}
    for world in idx.worlds:
        for kind in FIGURE_KINDS:
            fig = _FIGURES[kind](idx, world)
            if fig is None:
                continue
            try:
                out[f"{kind}_{world}"] = _png_b64(fig)
            finally:
                fig.clear()
    return out


def make_figures(results: dict[str, Any]) -> dict[str, str]:
    """Figure id -> base64-encoded PNG, per world: ``retention_<world>``,
    ``tradeoff_<world>``, ``dpfr_<world>``, ``lorenz_<world>``, ``segments_<world>``; a
    figure whose data is missing is left out. Policies keep one tab10 colour everywhere (in
    order of first appearance in the results)."""
    return _make_figures(_index(results))


# --------------------------------------------------------------------------- terminal


def print_leaderboard(results: dict[str, Any], console: Console | None = None) -> None:
    """Print one rich table per world (policies x leaderboard metrics, best first), each
    cell "mean [95% CI]" plus, for non-baseline policies, the paired difference vs the
    baseline with its marker; the marker legend follows."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    idx = _index(results)
    printed = False
    for world in idx.worlds:
        rows = _leaderboard_rows(idx, world)
        if not rows:
            continue
        metrics = _filled_columns(idx, rows)
        table = Table(title=world, title_style="bold", show_lines=True)
        table.add_column("policy", no_wrap=True)
        for metric in metrics:
            info = idx.info(metric)
            arrow = "↑" if info["higher_is_better"] else "↓"
            table.add_column(f"{info['label']} {arrow}", justify="right", overflow="fold")
        for row in rows:
            name = Text(row["policy"], style="bold")
            if row["baseline"]:
                name.append(" (baseline)", style="dim")
            cells: list[Text] = [name]
            for metric in metrics:
                cell = row["cells"][metric]
                text = Text(cell["text"])
                if cell["diff_text"]:
                    text.append("\n")
                    if cell["marker"]:
                        style = "green" if cell["marker"] == BETTER else "red"
                        text.append(f"{cell['marker']} ", style=style)
                    text.append(f"Δ {cell['diff_text']}", style="dim")
                cells.append(text)
            table.add_row(*cells)
        console.print(table)
        printed = True
    if not printed:
        console.print("No results to show.")
        return
    baseline = idx.baseline or "the baseline"
    console.print(
        Text(
            f"Cells: mean [95% CI]; Δ: paired difference vs {baseline} [95% CI]. "
            f"{BETTER} significantly better, {WORSE} significantly worse than {baseline} "
            "(the CI of the difference excludes 0); ↑/↓: higher/lower is better.",
            style="dim",
        )
    )


# --------------------------------------------------------------------------- HTML


_TEMPLATE = """<!DOCTYPE html>
{% macro cell_td(cell) %}
<td{% if cell.n is not none %} title="n = {{ cell.n }}"{% endif %}>{{ cell.text }}
{%- if cell.diff_text %}<span class="diff">
{%- if cell.marker %}<span class="{{ marker_class[cell.marker] }}">{{ cell.marker }}</span>
{{- " " }}{% endif %}
Δ {{ cell.diff_text }}</span>{% endif %}</td>
{% endmacro %}
{% macro policy_name(row) %}
<span class="swatch" style="background: {{ row.color }}"></span><b>{{ row.policy }}</b>
{%- if row.baseline %} <span class="base">(baseline)</span>{% endif %}
{% endmacro %}
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
:root { --fg: #1d2327; --muted: #5f6b73; --line: #d9dee2; --head: #f3f5f7; --accent: #2b6cb0;
        --good: #1e7d32; --bad: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica,
       Arial, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1400px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 21px; margin: 40px 0 10px; padding-top: 12px;
     border-top: 3px solid var(--accent); }
h3 { font-size: 16px; margin: 26px 0 8px; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.meta { color: var(--muted); margin: 0 0 12px; }
.meta span + span::before { content: " · "; }
.notes { background: #fff8e1; border-left: 4px solid #f0b429; padding: 8px 14px 8px 28px;
         margin: 12px 0; }
.scroll { overflow: auto; max-height: 85vh; border: 1px solid var(--line); border-radius: 4px;
          margin: 6px 0 4px; width: fit-content; max-width: 100%; }
table { border-collapse: separate; border-spacing: 0; width: 100%;
        font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right;
         vertical-align: top; white-space: nowrap; font-size: 13px; }
th { background: var(--head); font-weight: 600; }
thead th { position: sticky; top: 0; z-index: 2; }
th:first-child, td:first-child, table.segments td:nth-child(2),
table.segments th:nth-child(2) { text-align: left; }
tbody tr:hover td { background: #f8fafc; }
tr.group th { text-align: left; background: #e8eef5; }
table.small { width: auto; margin: 6px 0 12px; border: 1px solid var(--line); }
.diff { display: block; color: var(--muted); font-size: 11px; white-space: normal; }
table.leaderboard thead th { white-space: normal; }
.m-better { color: var(--good); font-weight: 700; }
.m-worse { color: var(--bad); font-weight: 700; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          margin-right: 6px; }
.base { color: var(--muted); font-weight: 400; font-size: 12px; }
.legend { color: var(--muted); font-size: 12px; margin: 2px 0 12px; }
.figs { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 4px; padding: 8px;
         flex: 0 1 calc(50% - 8px); min-width: 420px; max-width: 680px; }
figure.wide { flex-basis: 100%; max-width: 1000px; }
figure img { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; max-width: 640px; margin-top: 4px; }
details.transcript { border: 1px solid var(--line); border-radius: 4px; margin: 6px 0; }
details.transcript summary { cursor: pointer; padding: 6px 10px; background: var(--head); }
details.transcript pre { margin: 0; padding: 10px; white-space: pre-wrap; max-height: 480px;
                         overflow: auto; font-size: 12px; }
.left { color: var(--bad); }
.stayed { color: var(--good); }
.empty { color: var(--muted); font-style: italic; }
</style>
</head>
<body>
<main>
<header>
<h1>{{ title }}</h1>
<p class="meta">
  <span>created {{ created or "–" }}</span>
  <span>git commit <code>{{ git_commit or "–" }}</code></span>
  <span>seeds {{ seeds or "–" }}</span>
  <span>baseline <b>{{ baseline or "–" }}</b></span>
</p>
{% if world_settings %}
<table class="small settings" id="worlds">
<thead><tr><th>world</th>
{% for k in setting_keys %}<th>{{ k }}</th>{% endfor %}
</tr></thead>
<tbody>
{% for w in world_settings %}
<tr><td><a href="#world-{{ w.name }}">{{ w.name }}</a></td>
{% for k in setting_keys %}<td>{{ w.settings.get(k, "–") }}</td>{% endfor %}
</tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% if notes %}
<ul class="notes" id="notes">
{% for n in notes %}<li>{{ n }}</li>
{% endfor %}
</ul>
{% endif %}
{% if config %}
<details><summary>run configuration</summary><pre>{{ config }}</pre></details>
{% endif %}
</header>
{% if not worlds %}<p class="empty">No results.</p>{% endif %}
{% for w in worlds %}
<section class="world" id="world-{{ w.name }}">
<h2>{{ w.name }}</h2>
{% if w.settings %}
<p class="meta">
{% for k, v in w.settings.items() %}<span>{{ k }} {{ v }}</span>{% endfor %}
</p>
{% endif %}
<h3>Leaderboard</h3>
{% if w.leaderboard %}
<div class="scroll">
<table id="leaderboard-{{ w.name }}" class="leaderboard">
<thead><tr><th>policy</th>
{% for c in w.columns %}<th title="{{ c.name }}">{{ c.label }} {{ c.arrow }}</th>
{% endfor %}
</tr></thead>
<tbody>
{% for row in w.leaderboard %}
<tr>
<td>{{ policy_name(row) }}</td>
{% for c in w.columns %}{{ cell_td(row.cells[c.name]) }}{% endfor %}
</tr>
{% endfor %}
</tbody>
</table>
</div>
<p class="legend">Cells: mean [95% CI]; Δ: paired difference vs
{{ baseline or "the baseline" }} [95% CI]. <span class="m-better">▲</span> significantly
better, <span class="m-worse">▼</span> significantly worse (the CI of the difference
excludes 0). ↑/↓: higher/lower is better. Sorted by {{ sort_label }}.</p>
{% else %}
<p class="empty">No results for this world.</p>
{% endif %}
{% if w.groups %}
<h3>All metrics</h3>
<div class="scroll">
<table id="metrics-{{ w.name }}" class="metrics">
<thead><tr><th>metric</th>
{% for row in w.leaderboard %}<th>{{ policy_name(row) }}</th>
{% endfor %}
</tr></thead>
<tbody>
{% for g in w.groups %}
<tr class="group"><th colspan="{{ w.leaderboard | length + 1 }}">{{ g.title }}</th></tr>
{% for m in g.metrics %}
<tr><td title="{{ m.name }}">{{ m.label }} {{ m.arrow }}</td>
{% for cell in m.cells %}{{ cell_td(cell) }}{% endfor %}
</tr>
{% endfor %}
{% endfor %}
</tbody>
</table>
</div>
{% if w.unmeasured %}
<p class="legend">Not measured in this world: {{ w.unmeasured | join(", ") }}.</p>
{% endif %}
{% endif %}
{% if w.figures %}
<h3>Figures</h3>
<div class="figs">
{% for f in w.figures %}
<figure{% if f.wide %} class="wide"{% endif %}>
<img class="plot" id="fig-{{ f.id }}" alt="{{ f.alt }}" src="data:image/png;base64,{{ f.data }}">
<figcaption>{{ f.caption }}</figcaption>
</figure>
{% endfor %}
</div>
{% endif %}
{% if w.segments %}
<h3>User segments</h3>
<p class="meta">{{ w.segment_label }}</p>
<table class="small segments" id="segments-{{ w.name }}">
<thead><tr><th>segment</th><th>policy</th><th>users</th>
<th>{{ return_label }}</th><th>{{ clicks_label }}</th></tr></thead>
<tbody>
{% for s in w.segments %}
<tr><td>{% if s.first %}<b>{{ s.segment }}</b>{% endif %}</td><td>{{ policy_name(s) }}</td>
<td>{{ s.users }}</td><td>{{ s.return_rate }}</td><td>{{ s.clicks }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% if w.transcripts %}
<h3>Transcripts</h3>
{% for t in w.transcripts %}
<details class="transcript">
<summary><b>{{ t.policy }}</b> · seed {{ t.seed }} · episode {{ t.episode_id }} ·
{% if t.left is none %}–{% elif t.left %}<span class="left">user left</span>
{%- else %}<span class="stayed">user stayed</span>{% endif %}</summary>
<pre>{{ t.text }}</pre>
</details>
{% endfor %}
{% endif %}
</section>
{% endfor %}
</main>
<script>
window.addEventListener("load", function () {
  var plots = document.querySelectorAll("img.plot");
  var loaded = 0;
  for (var i = 0; i < plots.length; i++) {
    if (plots[i].complete && plots[i].naturalWidth > 0) { loaded++; }
  }
  document.body.dataset.plotsLoaded = String(loaded);
  document.body.dataset.plotsTotal = String(plots.length);
});
</script>
</body>
</html>
"""


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_TEMPLATE)


def _text(value: Any) -> str:
    return MISSING if value is None else str(value)


def _world_context(idx: _Index, world: str, figures: dict[str, str]) -> dict[str, Any]:
    results = idx.results
    settings = _section(results, "worlds").get(world)
    board = _leaderboard_rows(idx, world)
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
                "arrow": "↑" if info["higher_is_better"] else "↓",
                "cells": [_cell(idx, world, p, metric) for p in order],
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
                    "caption": _CAPTIONS[kind],
                    "wide": kind == "lorenz",
                }
            )

    policies, names, values = _segment_values(idx, world)
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
                    "return_rate": _fmt(v.get("return_rate"), rfmt),
                    "clicks": _fmt(v.get("clicks_per_session"), cfmt),
                }
            )
            first = False
    seg = _section(results, "segments").get(world) or {}

    transcripts = [
        {
            "policy": _text(t.get("policy")),
            "seed": _text(t.get("seed")),
            "episode_id": _text(t.get("episode_id")),
            "left": None if t.get("left") is None else bool(t.get("left")),
            "text": str(t.get("text") or ""),
        }
        for t in _section(results, "transcripts").get(world) or []
        if isinstance(t, dict)
    ]
    measured = {m["name"] for g in groups.values() for m in g["metrics"]}
    columns = [
        {
            "name": m,
            "label": idx.info(m)["label"],
            "arrow": "↑" if idx.info(m)["higher_is_better"] else "↓",
        }
        for m in _filled_columns(idx, board)
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
    idx = _index(results)
    figures = _make_figures(idx)
    worlds_meta = _section(results, "worlds")
    world_settings = [
        {"name": w, "settings": s} for w, s in worlds_meta.items() if isinstance(s, dict)
    ]
    setting_keys: list[str] = []
    for w in world_settings:
        _first_seen(setting_keys, w["settings"])
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
