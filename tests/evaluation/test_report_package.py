"""The report package: its modules (one concern each, documented), the HTML template shipped
as package data and loaded with autoescaping, and escaping of every kind of text that comes
from the results (element text and attribute values alike)."""

from __future__ import annotations

import copy
import importlib
import pkgutil
import re
from importlib import resources
from typing import Any

import recoworld.evaluation.report as report
from recoworld.evaluation.report import render_html
from recoworld.evaluation.report.html import TEMPLATE, environment

from .test_report import POLICIES, W1, W2, build_results

ATTACK = "\"'><img src=x onerror=alert(1)><script>alert(2)</script>"


def test_public_names_unchanged():
    assert sorted(report.__all__) == [
        "BETTER",
        "MISSING",
        "WORSE",
        "leaderboard_rows",
        "make_figures",
        "print_leaderboard",
        "render_html",
        "write_report",
    ]
    for name in report.__all__:
        assert getattr(report, name) is not None


def test_every_module_is_documented():
    names = [m.name for m in pkgutil.iter_modules(report.__path__)]
    assert {"figures", "html", "index", "tables", "terminal"} <= set(names)
    for name in names:
        module = importlib.import_module(f"{report.__name__}.{name}")
        assert module.__doc__ and module.__doc__.strip(), name


def test_template_is_package_data_with_autoescape():
    path = resources.files(report).joinpath("templates", TEMPLATE)
    assert path.is_file()
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    env = environment()
    assert env.autoescape(TEMPLATE) is True  # a ".j2" name is not ".html": checked explicitly
    assert env.autoescape("any-other-name.txt") is True
    assert env.autoescape(None) is True
    # the page is rendered from that file, not from a string held in Python
    assert env.get_template(TEMPLATE).filename.endswith(TEMPLATE)
    for info in pkgutil.iter_modules(report.__path__):
        source = resources.files(report).joinpath(f"{info.name}.py").read_text(encoding="utf-8")
        assert "<!DOCTYPE" not in source, info.name


def _attacked(results: dict[str, Any]) -> dict[str, Any]:
    """Attack text in every place of the results that reaches the page."""
    r = copy.deepcopy(results)
    evil_world, evil_policy = f"w{ATTACK}", f"p{ATTACK}"
    rename = {W1: evil_world}
    for row in r["results"] + r["paired"]:
        row["world"] = rename.get(row["world"], row["world"])
        if row["policy"] == "random":
            row["policy"] = evil_policy
    for key in ("curves", "segments", "transcripts", "frontier"):
        if W1 in r[key]:
            r[key][evil_world] = r[key].pop(W1)
    r["worlds"] = {evil_world: {"simulator": ATTACK, ATTACK: 1}, W2: r["worlds"][W2]}
    r["metrics"]["ndcg"]["label"] = f"NDCG{ATTACK}"
    r["metrics"][f"m{ATTACK}"] = {"label": "evil metric", "group": ATTACK}
    r["results"].append({"world": W2, "policy": "ppo", "metric": f"m{ATTACK}", "mean": 1.0, "n": 1})
    r["segments"][W2]["segment_label"] = ATTACK
    r["segments"][W2]["values"]["ppo"][f"seg{ATTACK}"] = {"return_rate": 0.5, "users": ATTACK}
    r["transcripts"][evil_world][0].update(policy=evil_policy, seed=ATTACK, text=ATTACK)
    r["title"] = r["git_commit"] = r["created"] = ATTACK
    r["seeds"] = [ATTACK]
    r["baseline"] = "popular"
    r["notes"] = [ATTACK]
    r["curves"], r["frontier"] = {}, {}  # fewer plots (faster); the trade-off plots remain
    r["config"] = {"x": ATTACK}
    return r


def test_results_text_is_escaped_everywhere():
    page = render_html(_attacked(build_results()))
    assert page.count("<script") == 1  # only the report's own plot-check script
    assert "<img src=x" not in page and "onerror=alert(1)>" not in page
    # no attribute value is broken out of: every quote of the attack text is an entity
    assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    for attr in re.findall(r'(?:id|title|href|alt)="([^"]*)"', page):
        assert "<" not in attr and ">" not in attr, attr
    assert 'id="fig-tradeoff_w&#34;&#39;&gt;&lt;img' in page  # a plot of the attacked world
    # the escaped names still label the tables and the policies still get their rows
    assert 'id="leaderboard-w&#34;&#39;&gt;&lt;img' in page
    for policy in POLICIES:
        if policy != "random":
            assert f"<b>{policy}</b>" in page
