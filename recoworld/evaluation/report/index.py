"""The results index: lookups over a results dict (what ``results.json`` holds), built once
per public call and shared by the tables, the figures and the HTML page.

It knows which worlds and policies the results cover (in order of first appearance), each
(world, policy, metric) statistic and paired difference against the baseline, the metrics'
descriptions (with defaults for anything not given) and one tab10 colour per policy. It
tolerates missing and malformed sections: a value that is ``None`` or not a finite number
counts as "not available".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DEFAULT_FMT = ".3g"
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


def finite(value: Any) -> float | None:
    """``value`` as a finite float, else None (None, NaN, inf and non-numbers are missing)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def section(results: dict[str, Any], key: str) -> dict[str, Any]:
    """A per-world section of the results (``curves``, ``frontier``, ...); {} when absent."""
    value = results.get(key)
    return value if isinstance(value, dict) else {}


def first_seen(items: list[str], new: Any) -> None:
    """Append to ``items`` the strings of ``new`` not in it yet (keeps first-seen order)."""
    for item in new:
        if isinstance(item, str) and item not in items:
            items.append(item)


@dataclass
class ResultsIndex:
    """Lookups over a results dict (build it with ``build_index``)."""

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
        return finite(self.stats.get((world, policy, metric), {}).get("mean"))

    def color(self, policy: str) -> str:
        idx = self.policies.index(policy) if policy in self.policies else len(self.policies)
        return TAB10[idx % len(TAB10)]

    def world_metrics(self, world: str) -> list[str]:
        """Metrics with at least one entry for ``world``, in display order."""
        seen = {m for (w, _, m) in self.stats if w == world}
        seen |= {m for (w, _, m) in self.paired if w == world}
        order = list(self.metrics)
        first_seen(order, (m for (w, _, m) in self.stats if w == world))
        first_seen(order, (m for (w, _, m) in self.paired if w == world))
        return [m for m in order if m in seen]

    def segment_values(self, world: str) -> tuple[list[str], list[str], dict[str, Any]]:
        """(policies with segment values, segment names, policy -> segment -> values) of
        ``world``'s ``segments`` section."""
        seg = section(self.results, "segments").get(world) or {}
        values = seg.get("values") or {}
        policies = [p for p in self.policies if isinstance(values.get(p), dict)]
        names: list[str] = []
        for policy in policies:
            first_seen(names, values[policy])
        return policies, names, values


def build_index(results: dict[str, Any]) -> ResultsIndex:
    """The ``ResultsIndex`` of ``results``."""
    baseline = results.get("baseline")
    metrics = {
        str(k): (v if isinstance(v, dict) else {})
        for k, v in (results.get("metrics") or {}).items()
    }
    leaderboard = [str(m) for m in (results.get("leaderboard_metrics") or [])] or list(metrics)
    rows = [r for r in (results.get("results") or []) if isinstance(r, dict)]
    paired = [r for r in (results.get("paired") or []) if isinstance(r, dict)]
    curves = section(results, "curves")
    segments = section(results, "segments")
    transcripts = section(results, "transcripts")

    worlds: list[str] = []
    first_seen(worlds, section(results, "worlds"))
    first_seen(worlds, (r.get("world") for r in rows))
    first_seen(worlds, (r.get("world") for r in paired))
    for part in (curves, section(results, "frontier"), segments, transcripts):
        first_seen(worlds, part)

    policies: list[str] = []
    first_seen(policies, (r.get("policy") for r in rows))
    first_seen(policies, (r.get("policy") for r in paired))
    for per_policy in curves.values():
        first_seen(policies, per_policy or {})
    for seg in segments.values():
        first_seen(policies, (seg or {}).get("values") or {})
    for items in transcripts.values():
        first_seen(policies, (t.get("policy") for t in items or [] if isinstance(t, dict)))
    if isinstance(baseline, str) and baseline not in policies:
        policies.append(baseline)

    idx = ResultsIndex(results, baseline, metrics, leaderboard, worlds, policies)
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
