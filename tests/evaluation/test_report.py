"""The evaluation report: leaderboard rows (sorting, formatting, significance markers), the
terminal leaderboard, the HTML page (tables, embedded plots, escaping, empty sections) and,
with headless Chromium, that the page renders and its plots decode in a real browser."""

from __future__ import annotations

import base64
import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from recoworld.evaluation.report import (
    BETTER,
    MISSING,
    WORSE,
    leaderboard_rows,
    make_figures,
    print_leaderboard,
    render_html,
    write_report,
)
from recoworld.evaluation.runner import DEFAULT_LEADERBOARD

W1, W2 = "synthetic-parametric", "movielens-llm"
POLICIES = ["popular", "random", "ppo"]  # first-appearance order; "ppo" is best
XSS = "<script>alert(1)</script>"

METRICS: dict[str, dict[str, Any]] = {
    "clicks_per_session": {
        "label": "clicks / session",
        "group": "engagement",
        "higher_is_better": True,
        "fmt": ".2f",
    },
    "session_depth": {
        "label": "session depth",
        "group": "engagement",
        "higher_is_better": True,
        "fmt": ".1f",
    },
    "return_rate": {
        "label": "return rate",
        "group": "retention",
        "higher_is_better": True,
        "fmt": ".2f",
    },
    "ndcg": {"label": "NDCG@10", "group": "ranking", "higher_is_better": True, "fmt": ".3f"},
    "ild": {"label": "ILD", "group": "beyond_accuracy", "higher_is_better": True, "fmt": ".3f"},
    "novelty": {
        "label": "novelty",
        "group": "beyond_accuracy",
        "higher_is_better": True,
        "fmt": ".2f",
    },
    "item_exposure_gini": {
        "label": "item exposure Gini",
        "group": "fairness",
        "higher_is_better": False,
        "fmt": ".3f",
    },
    "item_exposure_entropy": {
        "label": "item exposure entropy",
        "group": "fairness",
        "higher_is_better": True,
        "fmt": ".2f",
    },
    "dpfr": {"label": "DPFR", "group": "fairness", "higher_is_better": True, "fmt": ".3f"},
    "instruction_following": {
        "label": "instruction following",
        "group": "instruction",
        "higher_is_better": True,
        "fmt": ".2f",
    },
}
LEADERBOARD = list(DEFAULT_LEADERBOARD)

# world -> policy -> metric -> (mean, half width of the 95% CI)
MEANS: dict[str, dict[str, dict[str, tuple[float | None, float]]]] = {
    W1: {
        "popular": {
            "clicks_per_session": (1.20, 0.05),
            "session_depth": (6.0, 0.4),
            "return_rate": (0.55, 0.05),
            "ndcg": (0.310, 0.01),
            "ild": (0.210, 0.02),
            "novelty": (2.10, 0.1),
            "item_exposure_gini": (0.850, 0.01),
            "item_exposure_entropy": (3.10, 0.05),
            "dpfr": (0.400, 0.02),
            "instruction_following": (0.30, 0.03),
        },
        "random": {
            "clicks_per_session": (0.60, 0.05),
            "session_depth": (3.5, 0.4),
            "return_rate": (0.40, 0.05),
            "ndcg": (0.050, 0.01),
            "ild": (0.650, 0.02),
            "novelty": (4.20, 0.1),
            "item_exposure_gini": (0.900, 0.01),  # worse on a lower-is-better metric
            "item_exposure_entropy": (5.60, 0.05),
            # no "dpfr" for random: a missing cell
            "instruction_following": (None, 0.0),  # None: not available
        },
        "ppo": {
            "clicks_per_session": (1.50, 0.06),
            "session_depth": (7.5, 0.5),
            "return_rate": (0.70, 0.05),
            "ndcg": (0.320, 0.01),  # not significantly different from popular
            "ild": (0.420, 0.02),
            "novelty": (2.80, 0.1),
            "item_exposure_gini": (0.750, 0.01),  # better on a lower-is-better metric
            "item_exposure_entropy": (4.20, 0.05),
            "dpfr": (0.520, 0.02),
            "instruction_following": (0.45, 0.03),
        },
    },
    W2: {
        "popular": {
            "clicks_per_session": (0.90, 0.05),
            "return_rate": (0.35, 0.04),
            "ndcg": (0.250, 0.01),
            "ild": (0.300, 0.02),
            "item_exposure_gini": (0.800, 0.02),
        },
        "random": {
            "clicks_per_session": (0.40, 0.05),
            "return_rate": (0.42, 0.04),
            "ndcg": (0.040, 0.01),
            "ild": (0.700, 0.02),
            "item_exposure_gini": (0.300, 0.02),
        },
        "ppo": {
            "clicks_per_session": (1.10, 0.06),
            "return_rate": (0.30, 0.04),
            "ndcg": (0.270, 0.01),
            "ild": (0.350, 0.02),
            "item_exposure_gini": (0.820, 0.02),
        },
    },
}
# paired differences whose CI must straddle 0 (everything else: diff +- 0.3 * |diff|)
NOT_SIGNIFICANT = {(W1, "ppo", "ndcg")}


def _results_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows, paired = [], []
    for world, per_policy in MEANS.items():
        for policy in POLICIES:
            for metric, (mean, half) in per_policy[policy].items():
                lo = None if mean is None else mean - half
                hi = None if mean is None else mean + half
                rows.append(
                    {
                        "world": world,
                        "policy": policy,
                        "metric": metric,
                        "mean": mean,
                        "lo": lo,
                        "hi": hi,
                        "n": 2,
                    }
                )
                base = per_policy["popular"].get(metric, (None, 0.0))[0]
                if policy == "popular" or base is None:
                    continue
                diff = None if mean is None else mean - base
                if diff is None:
                    dlo = dhi = None
                elif (world, policy, metric) in NOT_SIGNIFICANT:
                    dlo, dhi = diff - 0.02, diff + 0.02
                else:
                    dlo, dhi = diff - 0.3 * abs(diff), diff + 0.3 * abs(diff)
                paired.append(
                    {
                        "world": world,
                        "policy": policy,
                        "metric": metric,
                        "baseline": "popular",
                        "diff": diff,
                        "lo": dlo,
                        "hi": dhi,
                        "n": 2,
                    }
                )
    return rows, paired


def _lorenz(power: float) -> dict[str, list[float]]:
    xs = [i / 20 for i in range(21)]
    return {"x": xs, "y": [x**power for x in xs]}


def _curves() -> dict[str, Any]:
    shape = {"popular": (0.8, 3.0), "random": (0.6, 1.5), "ppo": (0.9, 2.2)}
    return {
        world: {
            p: {
                "survival_by_session": [round(keep**s, 4) for s in range(8)],
                "lorenz_items": _lorenz(power),
                "lorenz_creators": _lorenz(power * 0.7 + 0.3),
            }
            for p, (keep, power) in shape.items()
        }
        for world in (W1, W2)
    }


def build_results() -> dict[str, Any]:
    rows, paired = _results_rows()
    return {
        "title": "RecoWorld evaluation <smoke> & friends",
        "created": "2025-01-02T03:04:05+00:00",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "config": {"seeds": [0, 1], "policies": POLICIES, "episodes": 200},
        "baseline": "popular",
        "seeds": [0, 1],
        "worlds": {
            W1: {"simulator": "parametric", "catalog": "synthetic", "users": 64, "episodes": 200},
            W2: {"simulator": "llm", "catalog": "movielens", "users": 8, "episodes": 16},
        },
        "metrics": METRICS,
        "leaderboard_metrics": LEADERBOARD,
        "results": rows,
        "paired": paired,
        "curves": _curves(),
        "frontier": {
            W1: {
                "x_metric": "ndcg",
                "y_metric": "item_exposure_entropy",
                "points": [[0.05, 5.6], [0.15, 5.2], [0.25, 4.5], [0.33, 3.0]],
                "reference": [0.33, 5.6],
                "alpha": 0.5,
            }
        },
        "segments": {
            world: {
                "segment_label": "novelty seeking (static propensity tercile)",
                "values": {
                    p: {
                        seg: {
                            "return_rate": 0.3 + 0.1 * k + 0.05 * j,
                            "clicks_per_session": 0.8 + 0.2 * k,
                            "users": 20 + j,
                        }
                        for j, seg in enumerate(["low", "mid", "high"])
                    }
                    for k, p in enumerate(POLICIES)
                },
            }
            for world in (W1, W2)
        },
        "transcripts": {
            W1: [
                {
                    "policy": "ppo",
                    "episode_id": 3,
                    "seed": 0,
                    "left": False,
                    "text": "step 1: slate [12, 7, 3]\nuser clicked 7\nstep 2: user left",
                }
            ],
            W2: [
                {
                    "policy": "popular",
                    "episode_id": 5,
                    "seed": 1,
                    "left": True,
                    "text": f"step 1: the user typed {XSS} & <b>bold</b>\nthen left",
                }
            ],
        },
        "notes": ["LLM world uses the tiny embedded model; not a fidelity claim <ok>"],
    }


@pytest.fixture
def results() -> dict[str, Any]:
    return copy.deepcopy(build_results())


# --------------------------------------------------------------------------- leaderboard


def test_leaderboard_rows_sorted_best_first(results):
    rows = leaderboard_rows(results, W1)
    assert [r["policy"] for r in rows] == ["ppo", "popular", "random"]
    assert [r["baseline"] for r in rows] == [False, True, False]
    assert all(list(r["cells"]) == LEADERBOARD for r in rows)
    # world 2: random retains best, ppo worst
    assert [r["policy"] for r in leaderboard_rows(results, W2)] == ["random", "popular", "ppo"]


def test_leaderboard_sort_honours_lower_is_better(results):
    results["leaderboard_metrics"] = ["item_exposure_gini", "return_rate"]
    rows = leaderboard_rows(results, W1)
    assert [r["policy"] for r in rows] == ["ppo", "popular", "random"]  # 0.75 < 0.85 < 0.90
    rows = leaderboard_rows(results, W2)
    assert [r["policy"] for r in rows] == ["random", "popular", "ppo"]  # 0.30 < 0.80 < 0.82


def _set_paired(results, world, policy, metric, diff, lo, hi):
    for row in results["paired"]:
        if (row["world"], row["policy"], row["metric"]) == (world, policy, metric):
            row.update(diff=diff, lo=lo, hi=hi)
            return
    raise AssertionError(f"no paired row {world}/{policy}/{metric}")


def test_leaderboard_rows_formatting(results):
    _set_paired(results, W1, "ppo", "return_rate", 0.15, 0.08, 0.22)
    _set_paired(results, W1, "random", "return_rate", -0.15, -0.22, -0.08)
    rows = {r["policy"]: r for r in leaderboard_rows(results, W1)}
    ppo = rows["ppo"]["cells"]
    assert ppo["return_rate"]["text"] == "0.70 [0.65, 0.75]"
    assert ppo["session_depth"]["text"] == "7.5 [7.0, 8.0]"
    assert ppo["return_rate"]["mean"] == pytest.approx(0.70)
    assert ppo["return_rate"]["diff_text"] == "+0.15 [+0.08, +0.22]"
    assert ppo["return_rate"]["diff"] == pytest.approx(0.15)
    assert rows["random"]["cells"]["return_rate"]["diff_text"] == "-0.15 [-0.22, -0.08]"
    # the baseline has no paired difference and no marker
    base = rows["popular"]["cells"]
    assert base["return_rate"]["text"] == "0.55 [0.50, 0.60]"
    assert all(c["diff_text"] == "" and c["marker"] == "" for c in base.values())
    # a metric missing for a policy renders as "–", with no difference
    assert rows["random"]["cells"]["dpfr"]["text"] == MISSING
    assert rows["random"]["cells"]["dpfr"]["mean"] is None
    assert rows["random"]["cells"]["dpfr"]["diff_text"] == ""


def test_leaderboard_markers(results):
    rows = {r["policy"]: r["cells"] for r in leaderboard_rows(results, W1)}
    # significantly better / worse on a higher-is-better metric
    assert rows["ppo"]["return_rate"]["marker"] == BETTER
    assert rows["random"]["return_rate"]["marker"] == WORSE
    # not significant: the CI of the difference straddles 0
    assert rows["ppo"]["ndcg"]["diff_lo"] < 0 < rows["ppo"]["ndcg"]["diff_hi"]
    assert rows["ppo"]["ndcg"]["marker"] == ""
    # lower is better: a negative difference is better, a positive one worse
    assert rows["ppo"]["item_exposure_gini"]["diff"] < 0
    assert rows["ppo"]["item_exposure_gini"]["marker"] == BETTER
    assert rows["random"]["item_exposure_gini"]["diff"] > 0
    assert rows["random"]["item_exposure_gini"]["marker"] == WORSE


def test_leaderboard_none_values_and_unknown_world(results):
    results["results"].append(
        {"world": W2, "policy": "ppo", "metric": "dpfr", "mean": None, "lo": None, "hi": None}
    )
    results["paired"].append(
        {"world": W2, "policy": "ppo", "metric": "dpfr", "baseline": "popular", "diff": None}
    )
    rows = {r["policy"]: r["cells"] for r in leaderboard_rows(results, W2)}
    assert rows["ppo"]["dpfr"]["text"] == MISSING
    assert rows["ppo"]["dpfr"]["diff_text"] == MISSING
    assert rows["ppo"]["dpfr"]["marker"] == ""
    assert leaderboard_rows(results, "no-such-world") == []


def test_print_leaderboard_lists_policies(results):
    from rich.console import Console

    console = Console(record=True, width=200)
    print_leaderboard(results, console=console)
    text = console.export_text()
    for world in (W1, W2):
        assert world in text
    for policy in POLICIES:
        assert policy in text
    assert "return rate" in text and "0.70 [0.65, 0.75]" in text
    assert BETTER in text and WORSE in text
    assert "significantly better" in text  # the legend


def test_print_leaderboard_empty():
    from rich.console import Console

    console = Console(record=True, width=120)
    print_leaderboard({"results": [], "metrics": {}}, console=console)
    assert "No results" in console.export_text()


# --------------------------------------------------------------------------- figures and HTML


def test_make_figures_ids_and_pngs(results):
    figures = make_figures(results)
    expected = {f"{kind}_{W1}" for kind in ("retention", "tradeoff", "lorenz", "segments", "dpfr")}
    expected |= {f"{kind}_{W2}" for kind in ("retention", "tradeoff", "lorenz", "segments")}
    assert set(figures) == expected  # no frontier for world 2: no dpfr figure
    for data in figures.values():
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_make_figures_skips_missing_data(results):
    results["curves"] = {}
    results["frontier"] = {}
    results["segments"] = {W1: {"segment_label": "x", "values": {}}}
    results["results"] = [r for r in results["results"] if r["metric"] != "ild"]
    assert make_figures(results) == {}


def test_render_html_tables_figures_and_escaping(results):
    page = render_html(results)
    assert page.startswith("<!DOCTYPE html>")
    for world in (W1, W2):
        assert f'<table id="leaderboard-{world}" class="leaderboard">' in page
        assert f'id="metrics-{world}"' in page
        assert f'id="segments-{world}"' in page
    figures = make_figures(results)
    for fid in figures:
        assert f'<img class="plot" id="fig-{fid}"' in page
    assert page.count('<img class="plot"') == len(figures)
    assert page.count("data:image/png;base64,") == len(figures)
    # every metric group and a metric label from each
    for heading in ("Engagement", "Retention", "Ranking", "Beyond accuracy", "Fairness"):
        assert heading in page
    assert "Instruction following" in page and "instruction following" in page
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    # results text is escaped
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "RecoWorld evaluation &lt;smoke&gt; &amp; friends" in page
    assert "not a fidelity claim &lt;ok&gt;" in page
    assert page.count("<script>") == 1  # only the report's own plot-check script
    # header: commit, seeds, world settings; transcripts with their metadata
    assert "0123456789abcdef0123456789abcdef01234567" in page
    assert "seeds 0, 1" in page
    assert "parametric" in page and "movielens" in page
    assert "user left" in page and "user stayed" in page
    assert "episode 5" in page and "seed 1" in page
    # a leaderboard metric without any value in a world gets no column there
    board2 = page.split(f'id="leaderboard-{W2}"')[1].split("</table>")[0]
    assert "session depth" not in board2 and "return rate" in board2
    board1 = page.split(f'id="leaderboard-{W1}"')[1].split("</table>")[0]
    assert "session depth" in board1
    assert "data-plots" not in page.split("<script>")[0]
    assert "plotsLoaded" in page and "plotsTotal" in page


def test_render_html_empty_sections(results):
    results["curves"] = {}
    results["transcripts"] = []
    results["segments"] = {}
    results.pop("frontier")
    results["notes"] = []
    page = render_html(results)
    for world in (W1, W2):
        assert f'id="leaderboard-{world}"' in page
        assert f'id="fig-tradeoff_{world}"' in page  # still drawn from the metric means
        assert f'id="fig-retention_{world}"' not in page
    assert "dpfr_" not in page and "lorenz_" not in page and "Transcripts" not in page


def test_render_html_minimal_results():
    page = render_html({})
    assert "No results" in page and "<img" not in page
    page = render_html(
        {
            "title": "t",
            "worlds": {"w": {"users": 1}},
            "metrics": {},
            "results": [{"world": "w", "policy": "a", "metric": "m", "mean": 0.5, "n": 1}],
            "paired": [],
            "curves": {},
            "frontier": {},
            "segments": {},
            "transcripts": {},
            "notes": [],
        }
    )
    assert 'id="leaderboard-w"' in page and "0.5" in page


def test_write_report(results, tmp_path):
    path = write_report(results, tmp_path / "nested" / "out")
    assert path == tmp_path / "nested" / "out" / "report.html"
    assert path.read_text(encoding="utf-8") == render_html(results)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left


# --------------------------------------------------------------------------- headless browser

CHROMIUM_MISSING = (
    "headless Chromium not found: install Debian's chromium package (apt-get install "
    "chromium), as .ci/run does"
)


def _chromium() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,2400",
        "--virtual-time-budget=5000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(results, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip(CHROMIUM_MISSING)
    path = write_report(results, tmp_path / "report")
    url = path.resolve().as_uri()

    dom = _run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    loaded = re.search(r'data-plots-loaded="(\d+)"', dom.stdout)
    total = re.search(r'data-plots-total="(\d+)"', dom.stdout)
    assert loaded and total, dom.stdout[:2000]
    n_figures = len(make_figures(results))
    assert int(total.group(1)) == n_figures > 0
    assert int(loaded.group(1)) == int(total.group(1))
    for world in (W1, W2):
        assert f'id="leaderboard-{world}"' in dom.stdout
    for policy in POLICIES:
        assert policy in dom.stdout
    assert "<script>alert(1)" not in dom.stdout

    shot = tmp_path / "shot.png"
    run = _run_chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}", url)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 0

    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(shot)  # floats in [0, 1], H x W x (3|4)
    rgb = np.asarray(pixels)[..., :3]
    assert rgb.shape[0] >= 1000 and rgb.shape[1] >= 1000
    assert float(rgb.std()) > 0.05  # not a blank page
    non_white = (rgb < 0.95).any(axis=-1).mean()
    assert non_white > 0.05, f"only {non_white:.1%} of the pixels are not white"
