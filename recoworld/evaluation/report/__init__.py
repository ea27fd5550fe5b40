"""Evaluation report: turns a results dict (what the evaluation runner writes as
``results.json``) into figures, a terminal leaderboard and one self-contained HTML page.

This package owns the presentation only. It computes no statistics: every mean, 95%
confidence interval and paired difference against the baseline policy is read from the
results dict. Public entry points:

* ``make_figures`` - figure id -> base64 PNG (retention, engagement/diversity trade-off,
  Lorenz curves, per-segment return rate, DPFR frontier), one set per world;
* ``leaderboard_rows`` - one formatted row per policy for a world's leaderboard metrics, with
  the paired difference vs the baseline and a significance marker;
* ``print_leaderboard`` - the leaderboards as rich tables on the terminal;
* ``render_html`` / ``write_report`` - the HTML page (no external CSS, JS, fonts or images;
  plots are embedded as ``data:`` URIs), written atomically as ``report.html``.

Modules, one concern each: ``index`` (lookups over a results dict), ``tables`` (cell text,
significance markers, leaderboard rows), ``figures`` (matplotlib plots as PNGs),
``terminal`` (the rich leaderboard), ``html`` (the page, from the Jinja template
``templates/report.html.j2``).

A value of ``None`` (or a non-finite number) means "not available" and is shown as "–";
metrics missing for some (world, policy) pairs and empty sections are tolerated.
"""

from __future__ import annotations

from recoworld.evaluation.report.figures import make_figures
from recoworld.evaluation.report.html import render_html, write_report
from recoworld.evaluation.report.tables import BETTER, MISSING, WORSE, leaderboard_rows
from recoworld.evaluation.report.terminal import print_leaderboard

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
