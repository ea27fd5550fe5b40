"""Report figures: per world, matplotlib plots rendered to base64 PNGs (to embed in the HTML
page as ``data:`` URIs): retention by session, the engagement/diversity trade-off, the DPFR
relevance-fairness frontier, exposure Lorenz curves and return rate per user segment. A
figure whose data is missing is left out. Policies keep one tab10 colour everywhere.
"""

from __future__ import annotations

import base64
import io
import math
from typing import TYPE_CHECKING, Any

from recoworld.core.errors import require
from recoworld.evaluation.report.index import ResultsIndex, build_index, finite, section

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
FIGURE_KINDS = ("retention", "tradeoff", "dpfr", "lorenz", "segments")


def _new_figure(width: float, height: float) -> Figure:
    require("matplotlib", "report", "the report's figures")

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def png_base64(fig: Figure, dpi: float | None = DPI) -> str:
    """``fig`` (laid out tight) as a base64-encoded PNG, to embed in HTML as a data URI
    (``dpi`` None: the figure's own)."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi if dpi is not None else "figure")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _xy(curve: Any) -> tuple[list[float], list[float]] | None:
    """A ``{"x": [...], "y": [...]}`` curve as two equal-length lists of floats, else None."""
    if not isinstance(curve, dict):
        return None
    pts = [
        (finite(x), finite(y))
        for x, y in zip(curve.get("x") or [], curve.get("y") or [], strict=False)
    ]
    pts = [(x, y) for x, y in pts if x is not None and y is not None]
    if not pts:
        return None
    return [x for x, _ in pts], [y for _, y in pts]


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, framealpha=0.85)


def _fig_retention(idx: ResultsIndex, world: str) -> Figure | None:
    curves = section(idx.results, "curves").get(world) or {}
    series = []
    for policy in idx.policies:
        surv = (curves.get(policy) or {}).get("survival_by_session") or []
        ys = [finite(v) for v in surv]
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


def _fig_tradeoff(idx: ResultsIndex, world: str) -> Figure | None:
    xm, ym = "ild", "clicks_per_session"
    pts = []
    for policy in idx.world_policies.get(world, []):
        x, y = idx.mean(world, policy, xm), idx.mean(world, policy, ym)
        if x is None or y is None:
            continue
        sx, sy = idx.stats[(world, policy, xm)], idx.stats[(world, policy, ym)]
        xerr = _err(x, finite(sx.get("lo")), finite(sx.get("hi")))
        yerr = _err(y, finite(sy.get("lo")), finite(sy.get("hi")))
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


def _fig_lorenz(idx: ResultsIndex, world: str) -> Figure | None:
    curves = section(idx.results, "curves").get(world) or {}
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


def _fig_segments(idx: ResultsIndex, world: str) -> Figure | None:
    policies, names, values = idx.segment_values(world)
    bars = {
        p: [finite((values[p].get(s) or {}).get("return_rate")) for s in names] for p in policies
    }
    if not any(v is not None for vs in bars.values() for v in vs):
        return None
    seg = section(idx.results, "segments").get(world) or {}
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


def _fig_dpfr(idx: ResultsIndex, world: str) -> Figure | None:
    frontier = section(idx.results, "frontier").get(world) or {}
    pts = [
        (finite(p[0]), finite(p[1]))
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
        rx, ry = finite(ref[0]), finite(ref[1])
        if rx is not None and ry is not None:
            alpha = finite(frontier.get("alpha"))
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
CAPTIONS = {
    "retention": "Share of users still active at each session (survival), per policy.",
    "tradeoff": "Engagement (clicks per session) against intra-list diversity: policy means "
    "with 95% CIs in both directions; dashed: the Pareto frontier of the policies.",
    "dpfr": "Relevance–fairness frontier: the line is the achievable frontier, the star the "
    "reference point; the dots are the policies' means.",
    "lorenz": "Lorenz curves of exposure over items and creators; the dotted diagonal is "
    "perfect equality (further below = more concentrated).",
    "segments": "Return rate per user segment, per policy.",
}


def figures_png(idx: ResultsIndex) -> dict[str, str]:
    """``make_figures`` on an index already built."""
    out: dict[str, str] = {}
    for world in idx.worlds:
        for kind in FIGURE_KINDS:
            fig = _FIGURES[kind](idx, world)
            if fig is None:
                continue
            try:
                out[f"{kind}_{world}"] = png_base64(fig)
            finally:
                fig.clear()
    return out


def make_figures(results: dict[str, Any]) -> dict[str, str]:
    """Figure id -> base64-encoded PNG, per world: ``retention_<world>``,
    ``tradeoff_<world>``, ``dpfr_<world>``, ``lorenz_<world>``, ``segments_<world>``; a
    figure whose data is missing is left out. Policies keep one tab10 colour everywhere (in
    order of first appearance in the results)."""
    return figures_png(build_index(results))
