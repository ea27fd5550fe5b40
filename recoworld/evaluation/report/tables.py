"""Leaderboard tables: the text of each (world, policy, metric) cell ("mean [CI]", the paired
difference against the baseline and its significance marker) and the rows of a world's
leaderboard, best policy first. Shared by the terminal leaderboard and the HTML page.

A value of ``None`` (or a non-finite number) is shown as ``MISSING`` ("–").
"""

from __future__ import annotations

from typing import Any

from recoworld.evaluation.report.index import DEFAULT_FMT, ResultsIndex, build_index, finite

MISSING = "–"
BETTER = "▲"
WORSE = "▼"


def markdown_table(rows: list[dict[str, str]]) -> list[str]:
    """Lines of a Markdown table whose columns are the first row's keys ("|" escaped)."""
    if not rows:
        return []
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r[c].replace("|", "\\|") for c in cols) + " |" for r in rows]
    return lines


def arrow(higher_is_better: bool) -> str:
    """The direction shown next to a metric's label."""
    return "↑" if higher_is_better else "↓"


def format_value(value: Any, fmt: str, signed: bool = False) -> str:
    """``value`` formatted with ``fmt`` (``DEFAULT_FMT`` when ``fmt`` does not apply), with
    a sign when ``signed``; ``MISSING`` when not available."""
    x = finite(value)
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


def interval(mean: Any, lo: Any, hi: Any, fmt: str, signed: bool = False) -> str:
    """``"mean [lo, hi]"``; "–" without a mean, the bare mean without both CI bounds."""
    if finite(mean) is None:
        return MISSING
    text = format_value(mean, fmt, signed)
    if finite(lo) is None or finite(hi) is None:
        return text
    return f"{text} [{format_value(lo, fmt, signed)}, {format_value(hi, fmt, signed)}]"


def marker(lo: Any, hi: Any, higher_is_better: bool) -> str:
    """▲ when the CI of the paired difference lies entirely on the better side of 0, ▼ when it
    lies entirely on the worse side, "" otherwise (or when a bound is missing)."""
    lo_, hi_ = finite(lo), finite(hi)
    if lo_ is None or hi_ is None:
        return ""
    if lo_ > 0:
        return BETTER if higher_is_better else WORSE
    if hi_ < 0:
        return WORSE if higher_is_better else BETTER
    return ""


def cell(idx: ResultsIndex, world: str, policy: str, metric: str) -> dict[str, Any]:
    """One (world, policy, metric) table cell: the statistic and the paired difference."""
    info = idx.info(metric)
    stat = idx.stats.get((world, policy, metric), {})
    is_baseline = policy == idx.baseline
    pair = {} if is_baseline else idx.paired.get((world, policy, metric), {})
    diff_text = ""
    if not is_baseline and pair:
        diff_text = interval(pair.get("diff"), pair.get("lo"), pair.get("hi"), info["fmt"], True)
    return {
        "mean": finite(stat.get("mean")),
        "lo": finite(stat.get("lo")),
        "hi": finite(stat.get("hi")),
        "n": stat.get("n"),
        "text": interval(stat.get("mean"), stat.get("lo"), stat.get("hi"), info["fmt"]),
        "diff": finite(pair.get("diff")),
        "diff_lo": finite(pair.get("lo")),
        "diff_hi": finite(pair.get("hi")),
        "diff_n": pair.get("n"),
        "diff_text": diff_text,
        "marker": marker(pair.get("lo"), pair.get("hi"), info["higher_is_better"]) if pair else "",
    }


def _sort_policies(idx: ResultsIndex, world: str, policies: list[str]) -> list[str]:
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


def board_rows(idx: ResultsIndex, world: str) -> list[dict[str, Any]]:
    """``leaderboard_rows`` on an index already built."""
    rows = []
    for policy in _sort_policies(idx, world, idx.world_policies.get(world, [])):
        rows.append(
            {
                "policy": policy,
                "baseline": policy == idx.baseline,
                "color": idx.color(policy),
                "cells": {m: cell(idx, world, policy, m) for m in idx.leaderboard},
            }
        )
    return rows


def filled_columns(idx: ResultsIndex, rows: list[dict[str, Any]]) -> list[str]:
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
    return board_rows(build_index(results), world)
