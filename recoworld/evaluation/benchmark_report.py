"""Rendering the task-suite benchmark's results (``recoworld.evaluation.benchmark``):
``benchmark.md`` (one table per task), ``benchmark.html`` (one section per task with a
normalized-score bar chart; the report package's Jinja environment and template
``templates/benchmark.html.j2``) and ``check.md`` of ``recoworld tasks check``. Presentation
only: every number is read from the results dict. Plots need matplotlib; without it the
page says so and leaves them out.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from recoworld.core.atomic import atomic_write_text
from recoworld.evaluation.report.figures import png_base64
from recoworld.evaluation.report.html import environment
from recoworld.evaluation.report.index import TAB10, finite
from recoworld.evaluation.report.tables import MISSING, format_value, interval, markdown_table

TEMPLATE = "benchmark.html.j2"
COLUMNS = {  # metric -> (label, format)
    "mean_return": ("return", ".1f"),
    "return_rate": ("return rate", ".3f"),
    "session_depth": ("session depth", ".2f"),
    "click_rate": ("CTR", ".3f"),
    "follows_per_1k_steps": ("follows/1k", ".1f"),
    "gifts_per_1k_steps": ("gifts/1k", ".1f"),
}
REFS = ("random", "popular", "blind", "exploit")
NORMALIZED = ("mean_return", "return_rate", "session_depth", "click_rate")
"""Metrics whose normalized score the tables and the bar chart show."""
LEGEND = (
    "Raw cells: mean [95% CI] (baselines and oracles: bootstrap over user lives for the return, "
    "over evaluation seeds otherwise; learners: across training seeds, or over the pooled "
    "lives when there is one seed). Normalized: 0 = random, 100 = the exploiting oracle. "
    "Δ: learner − baseline, paired (common random numbers) life by life for the return and "
    "evaluation seed by seed for return rate and depth, averaged over training seeds, [95% "
    "CI of a two-level bootstrap over training seeds and units]; ▲/▼ the CI excludes 0. Gap "
    "closed = normalized return / 100."
)


def _stat_text(stats: dict[str, Any] | None, fmt: str) -> str:
    if not stats:
        return MISSING
    lo, hi = stats.get("lo"), stats.get("hi")
    pooled = stats.get("pooled")
    if (finite(lo) is None or finite(hi) is None) and isinstance(pooled, dict):
        lo, hi = pooled.get("lo"), pooled.get("hi")
    return interval(stats.get("mean"), lo, hi, fmt)


def _diff_text(diff: dict[str, Any] | None, fmt: str = ".1f") -> str:
    if not diff:
        return MISSING
    text = interval(diff.get("mean"), diff.get("lo"), diff.get("hi"), fmt, signed=True)
    lo, hi = finite(diff.get("lo")), finite(diff.get("hi"))
    mark = "▲ " if lo is not None and lo > 0 else "▼ " if hi is not None and hi < 0 else ""
    return mark + text


def policy_rows(task: dict[str, Any]) -> list[dict[str, str]]:
    """One row of cell texts per policy: raw metrics, then normalized scores."""
    rows = []
    for name, entry in task["policies"].items():
        row = {"policy": name, "kind": entry["kind"]}
        for metric, (label, fmt) in COLUMNS.items():
            row[label] = _stat_text(entry["metrics"].get(metric), fmt)
        for metric in NORMALIZED:
            norm = entry["normalized"].get(metric) or {}
            label = f"norm. {COLUMNS[metric][0]}"
            if entry["kind"] == "learner" and metric == "mean_return":
                row[label] = interval(norm.get("mean"), norm.get("lo"), norm.get("hi"), ".0f")
            else:
                row[label] = format_value(norm.get("mean"), ".0f")
        rows.append(row)
    return rows


def learner_rows(task: dict[str, Any]) -> list[dict[str, str]]:
    """One row per learner: training, paired differences, the oracle gap closed."""
    rows = []
    for name, entry in task["policies"].items():
        if entry["kind"] != "learner":
            continue
        training = entry.get("training") or {}
        steps = [t.get("env_steps") for t in training.values() if t.get("env_steps")]
        best = entry.get("vs_best_baseline") or {}
        rows.append(
            {
                "learner": name,
                "training seeds": str(len(training)),
                "env steps/run": format_value(sum(steps) / len(steps), ".0f") if steps else "–",
                "Δ vs popular": _diff_text(entry.get("vs_popular")),
                "Δ return rate vs popular": _diff_text(
                    (entry.get("vs_popular_metrics") or {}).get("return_rate"), ".3f"
                ),
                "Δ depth vs popular": _diff_text(
                    (entry.get("vs_popular_metrics") or {}).get("session_depth"), ".2f"
                ),
                "best baseline": str(best.get("baseline", MISSING)),
                "Δ vs best baseline": _diff_text(best),
                "gap closed": format_value(entry.get("gap_closed"), ".2f"),
            }
        )
    return rows


def _protocol_line(task: dict[str, Any]) -> str:
    p, meta = task["protocol"], task["task"]
    return (
        f"exploiting oracle `{meta['exploit']}`, blind oracle `{meta['blind']}`; "
        f"budget {p['budget']} {meta.get('budget_unit', 'env steps')} per run; "
        f"training seeds {p['training_seeds']}; "
        f"evaluation seeds {p['eval_seeds']} × {p['episodes']} lives ({p['users']} users)"
    )


def _expected(task: dict[str, Any]) -> dict[str, str]:
    """The pre-registered expectation of each algorithm the benchmark trained on the task."""
    expected = task["task"].get("expected") or {}
    return {a: expected[a] for a in task["protocol"]["algorithms"] if a in expected}


def learner_pair_rows(task: dict[str, Any]) -> list[dict[str, str]]:
    """One row per ordered pair of learners listed earlier/later in the task: the paired
    mean-return difference (same training seeds, same lives)."""
    names = [n for n, e in task["policies"].items() if e["kind"] == "learner"]
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = (task["policies"][a].get("vs_learners") or {}).get(b)
            if diff is not None:
                rows.append({"learners": f"{a} − {b}", "Δ mean return": _diff_text(diff)})
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    lines = [f"# {results.get('title', 'Benchmark')}", ""]
    git = results.get("git") or {}
    lines += [f"Created {results.get('created')}, git commit `{git.get('commit')}`"
              + (" (dirty)" if git.get("dirty") else "") + ".", "", LEGEND, ""]  # fmt: skip
    for key, task in results["tasks"].items():
        meta = task["task"]
        lines += [f"## {key}: {meta['summary']}", "", _protocol_line(task), ""]
        lines += [*markdown_table(policy_rows(task)), ""]
        learners = learner_rows(task)
        if learners:
            lines += [*markdown_table(learners), ""]
            pairs = learner_pair_rows(task)
            if pairs:
                lines += [*markdown_table(pairs), ""]
            lines += [f"- expected ({algo}): {text}" for algo, text in _expected(task).items()]
            lines.append("")
    return "\n".join(lines)


def write_markdown(results: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(render_markdown(results), path)


def normalized_figure(task: dict[str, Any]) -> str | None:
    """Grouped horizontal bars: each policy's normalized score per metric (error bars:
    learners' CI across training seeds), as a base64 PNG; None without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    names = list(task["policies"])
    fig = Figure(figsize=(7.5, 0.55 * len(names) + 1.4), dpi=100)
    ax = fig.add_subplot()
    height = 0.8 / len(NORMALIZED)
    y = np.arange(len(names))
    for j, metric in enumerate(NORMALIZED):
        vals, err = [], [[], []]
        for name in names:
            norm = task["policies"][name]["normalized"].get(metric) or {}
            v = finite(norm.get("mean"))
            vals.append(np.nan if v is None else v)
            lo, hi = finite(norm.get("lo")), finite(norm.get("hi"))
            learner = task["policies"][name]["kind"] == "learner"
            ok = learner and v is not None and lo is not None and hi is not None
            err[0].append(v - lo if ok else 0.0)
            err[1].append(hi - v if ok else 0.0)
        offset = (j - (len(NORMALIZED) - 1) / 2) * height
        xerr = err if any(err[0]) or any(err[1]) else None
        ax.barh(y + offset, vals, height=height, xerr=xerr, color=TAB10[j], capsize=2,
                label=COLUMNS[metric][0], error_kw={"elinewidth": 0.8})  # fmt: skip
    for x, style in ((0, "-"), (100, "--")):
        ax.axvline(x, color="#555", lw=0.8, ls=style)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("normalized score (0 = random, 100 = exploiting oracle)")
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    return png_base64(fig, dpi=None)


def write_summary_png(results: dict[str, Any], path: str | Path) -> Path | None:
    """One panel per task: every policy's normalized mean return (learners with their CI
    across training seeds), oracles and baselines in grey; written atomically as PNG.
    None (nothing written) without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from recoworld.core.atomic import atomic_write

    tasks = list(results["tasks"].items())
    rows = max(len(t["policies"]) for _, t in tasks)
    fig = Figure(figsize=(4.2 * len(tasks), 0.32 * rows + 1.4), dpi=100)
    for i, (key, task) in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), i + 1)
        names = list(task["policies"])
        for y, name in enumerate(names):
            entry = task["policies"][name]
            norm = entry["normalized"]["mean_return"]
            v, lo, hi = (finite(norm.get(k)) for k in ("mean", "lo", "hi"))
            learner = entry["kind"] == "learner"
            xerr = [[v - lo], [hi - v]] if learner and None not in (v, lo, hi) else None
            ax.barh(y, v if v is not None else 0.0, xerr=xerr, capsize=2,
                    color=TAB10[0] if learner else "#bbbbbb")  # fmt: skip
        for x, style in ((0, "-"), (100, "--")):
            ax.axvline(x, color="#555", lw=0.8, ls=style)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("normalized return", fontsize=8)
    fig.tight_layout()
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))


def render_html(results: dict[str, Any]) -> str:
    """The benchmark as one self-contained page (plots as ``data:`` URIs; text escaped)."""
    import json

    notes = []
    plots = importlib.util.find_spec("matplotlib") is not None
    if not plots:
        notes.append("matplotlib is not installed: the bar charts are left out.")
    sections = []
    for key, task in results["tasks"].items():
        meta = task["task"]
        sections.append(
            {
                "key": key,
                "meta": meta,
                "protocol": _protocol_line(task),
                "policies": policy_rows(task),
                "learners": learner_rows(task),
                "expected": _expected(task),
                "figure": normalized_figure(task) if plots else None,
            }
        )
    git = results.get("git") or {}
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            title=results.get("title", "Benchmark"),
            created=results.get("created"),
            git_commit=git.get("commit"),
            legend=LEGEND,
            notes=notes,
            config=json.dumps(results.get("config"), indent=2),
            tasks=sections,
        )
    )


def write_html(results: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(render_html(results), path)


def check_rows(checks: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """One row per task of ``recoworld tasks check``."""
    rows = []
    for key, c in checks.items():
        ret = c["metrics"]["mean_return"]
        d = c["difference"]
        rows.append(
            {
                "task": key,
                **{name: format_value((ret.get(name) or {}).get("mean"), ".1f") for name in REFS},
                "exploit − blind [95% CI]": interval(
                    d.get("mean"), d.get("lo"), d.get("hi"), ".1f", signed=True
                ),
                "required": format_value(c.get("required"), ".1f"),
                "valid": "yes" if c.get("valid") else "NO",
            }
        )
    return rows


def check_markdown(checks: dict[str, dict[str, Any]]) -> str:
    lines = ["# Task phenomenon checks", ""]
    lines += [
        "Mean return of the reference policies; valid when the lower end of the paired 95% "
        "CI of exploit − blind exceeds the required margin × (exploit − random).",
        "",
    ]
    lines += [*markdown_table(check_rows(checks)), ""]
    for key, c in checks.items():
        lines.append(f"- {key}: seeds {c['seeds']}, {c['episodes']} lives per seed, "
                     f"{c['users']} users; oracles {c['exploit']} / {c['blind']}")  # fmt: skip
    return "\n".join(lines) + "\n"
