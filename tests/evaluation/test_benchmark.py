"""The task-suite benchmark (``recoworld.evaluation.benchmark``) and its commands: config
validation and the budget -> iterations mapping, the aggregation's statistics, the
references-only quick run (fast), and — marked slow, Ray started once per session with
``num_env_runners=0`` — the quick profile end to end with training, its resumability, and
``recoworld benchmark --quick``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from recoworld.cli import main
from recoworld.evaluation import benchmark, benchmark_report
from recoworld.evaluation.benchmark import (
    BenchmarkConfig,
    aggregate_task,
    iterations_for,
    run_benchmark,
    steps_per_iteration,
    task_keys,
)
from recoworld.tasks import load_task


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from recoworld.rl.runtime import ensure_ray

    ensure_ray(2)
    yield
    ray.shutdown()


# ---------------------------------------------------------------------- config
def test_config_defaults_and_names() -> None:
    cfg = BenchmarkConfig()
    assert cfg.tasks == task_keys() and "Population-v0" in cfg.tasks
    assert cfg.training_seeds() == [0, 1, 2, 3, 4]
    cfg = BenchmarkConfig(tasks=["MovieLens", "recoworld/Creators-v0"], algos=["ppo"])
    assert cfg.tasks == ["MovieLens-v1", "Creators-v0"]  # a bare name: its latest version
    task = load_task("MovieLens-v0")
    assert cfg.budget_for(task) == task.budget_steps
    assert cfg.eval_seeds_for(task) == task.check_seeds
    assert (cfg.episodes_for(task), cfg.users_for(task)) == (task.eval_episodes, task.eval_users)
    quick = BenchmarkConfig(quick=True)
    assert quick.training_seeds() == [0] and quick.budget_for(task) == 256
    assert quick.eval_seeds_for(task) == task.check_seeds[:1]
    assert quick.episodes_for(task) == 16
    # explicit values win over the quick profile
    assert BenchmarkConfig(quick=True, seeds=[3, 4], budget=512).budget_for(task) == 512
    assert BenchmarkConfig(quick=True, seeds=[3, 4]).training_seeds() == [3, 4]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"tasks": ["Nope-v0"]}, "unknown task 'Nope-v0'; valid tasks: ColdStart-v0"),
        ({"algos": ["ppo", "dqn"]}, "unknown algorithm 'dqn'; valid algorithms: hrl, hrl_"),
        ({"train": {"iterations": 3}}, "set by the benchmark"),
        ({"budget": 0}, "greater than or equal to 1"),
    ],
)
def test_config_errors_name_the_bad_value(raw, needle) -> None:
    with pytest.raises(ValidationError, match=None) as err:
        BenchmarkConfig.model_validate(raw)
    assert needle in str(err.value)


def test_budget_maps_to_iterations_per_algorithm() -> None:
    cfg = BenchmarkConfig(train={"ppo": {"train_batch_size": 1000}})
    for algo in ("ppo", "hrl", "rliv_ua"):
        train = cfg.train_config(algo, seed=2, budget=2500)
        assert steps_per_iteration(train) == 1000 and train.iterations == 3
        assert train.seed == 2 and train.algo == algo
        assert train.eval_every == 0 and train.checkpoint_every == 0
    ts = cfg.train_config("slate_ts", seed=0, budget=100_000)
    assert steps_per_iteration(ts) == ts.slate_ts.steps_per_iteration == 512
    assert ts.iterations == math.ceil(100_000 / 512)
    assert iterations_for(ts, 1) == 1
    quick = BenchmarkConfig(quick=True)
    for algo in ("ppo", "slate_ts"):
        train = quick.train_config(algo, 0, quick.budget_for(load_task("ColdStart-v0")))
        assert steps_per_iteration(train) == 128 and train.iterations == 2
        assert train.num_envs == 8


# ---------------------------------------------------------------------- statistics
def _run(returns, **metrics) -> dict:
    base = {"return_rate": 0.5, "session_depth": 10.0, "click_rate": 0.5,
            "follows_per_1k_steps": 1.0, "gifts_per_1k_steps": 0.0}  # fmt: skip
    return {**base, **metrics, "mean_return": float(np.mean(returns)),
            "episode_returns": list(map(float, returns))}  # fmt: skip


def test_aggregate_normalizes_and_pairs_across_training_seeds() -> None:
    task = load_task("Creators-v0")  # baselines: random, popular, linucb
    rng = np.random.default_rng(0)
    lives = {name: [rng.normal(mu, 1.0, 20) for _ in range(2)]  # 2 evaluation seeds
             for name, mu in (("random", 1.0), ("popular", 3.0), ("linucb", 4.0),
                              ("blind", 5.0), ("exploit", 9.0))}  # fmt: skip
    refs = {n: [_run(x, click_rate=0.1 * i) for i, x in enumerate(v)] for n, v in lives.items()}
    # learner seed 0 plays the exploiting oracle's lives, seed 1 popular + 1 on every life
    learner = {0: refs["exploit"], 1: [_run(np.asarray(x) + 1.0) for x in lives["popular"]]}
    agg = aggregate_task(task, refs, {"ppo": learner})
    pol = agg["policies"]
    assert agg["best_baseline"] == "linucb"
    assert [pol[n]["kind"] for n in pol] == ["baseline"] * 3 + ["oracle"] * 2 + ["learner"]
    assert pol["random"]["normalized"]["mean_return"]["mean"] == pytest.approx(0.0)
    assert pol["exploit"]["normalized"]["mean_return"]["mean"] == pytest.approx(100.0)
    assert pol["exploit"]["gap_closed"] == pytest.approx(1.0)
    m = pol["ppo"]["metrics"]["mean_return"]
    exploit, popular = (float(np.concatenate(lives[n]).mean()) for n in ("exploit", "popular"))
    assert m["per_seed"] == pytest.approx([exploit, popular + 1.0])
    assert m["n"] == 2 and m["lo"] <= m["mean"] <= m["hi"]
    assert m["pooled"]["n"] == 80  # 2 training seeds x 2 evaluation seeds x 20 lives
    norm = pol["ppo"]["normalized"]["mean_return"]
    assert norm["per_seed"][0] == pytest.approx(100.0)
    assert pol["ppo"]["gap_closed"] == pytest.approx(norm["mean"] / 100)
    vs = pol["ppo"]["vs_popular"]
    assert vs["n"] == 40 and vs["mean"] == pytest.approx((exploit - popular + 1.0) / 2)
    assert vs["lo"] < vs["mean"] < vs["hi"]
    # the two-level bootstrap carries the spread between training seeds: two seeds that
    # disagree give a wider interval than two identical seeds with the same mean
    same = {0: learner[1], 1: learner[1]}
    vs_same = aggregate_task(task, refs, {"ppo": same})["policies"]["ppo"]["vs_popular"]
    assert vs["hi"] - vs["lo"] > vs_same["hi"] - vs_same["lo"]
    assert pol["ppo"]["vs_best_baseline"]["baseline"] == "linucb"
    # metrics other than the return: CI over evaluation seeds, normalized per metric
    assert pol["random"]["metrics"]["click_rate"]["n"] == 2
    assert math.isnan(pol["random"]["normalized"]["click_rate"]["mean"])  # same anchors


# ---------------------------------------------------------------------- runs (no training)
def test_quick_references_only_writes_everything_and_resumes(tmp_path) -> None:
    cfg = BenchmarkConfig(tasks=["Instructions-v0"], algos=[], quick=True)
    results = run_benchmark(cfg, tmp_path, show_progress=False)
    for name in (
        "benchmark.json",
        "benchmark.md",
        "benchmark.html",
        "benchmark.png",
        "manifest.json",
    ):
        assert (tmp_path / name).is_file(), name
    task = results["tasks"]["Instructions-v0"]
    assert set(task["policies"]) == {"random", "popular", "blind", "exploit", "linucb",
                                     "instruction"}  # fmt: skip
    for metric in ("mean_return", "return_rate", "session_depth", "click_rate"):
        assert task["policies"]["random"]["normalized"][metric]["mean"] == pytest.approx(0.0)
        assert task["policies"]["exploit"]["normalized"][metric]["mean"] == pytest.approx(100.0)
    assert task["protocol"]["episodes"] == 16 and task["protocol"]["eval_seeds"] == [1000]
    saved = json.loads((tmp_path / "benchmark.json").read_text())
    assert saved["tasks"]["Instructions-v0"]["best_baseline"] == task["best_baseline"]
    md = (tmp_path / "benchmark.md").read_text()
    assert "## Instructions-v0" in md and "| exploit | oracle |" in md
    html = (tmp_path / "benchmark.html").read_text()
    assert 'id="task-Instructions-v0"' in html and 'id="policies-Instructions-v0"' in html
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["protocol"]["Instructions-v0"]["users"] == 16 and manifest["packages"]

    ref = tmp_path / "references" / "Instructions-v0.json"
    before = ref.stat().st_mtime_ns
    again = run_benchmark(cfg, tmp_path, show_progress=False)
    assert ref.stat().st_mtime_ns == before
    assert (
        again["tasks"]["Instructions-v0"]["policies"]["popular"]["metrics"]
        == (saved["tasks"]["Instructions-v0"]["policies"]["popular"]["metrics"])
    )
    # another protocol in the same directory is an error, not a silent mix
    with pytest.raises(benchmark.ConfigError, match="another protocol"):
        run_benchmark(cfg.model_copy(update={"episodes": 8}), tmp_path, show_progress=False)


# ---------------------------------------------------------------------- CLI (no training)
def test_cli_tasks_lists_the_suite(capsys) -> None:
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for key in ("recoworld/MovieLens-v0", "recoworld/NoveltyIntent-v0", "static_novelty"):
        assert key in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["benchmark", "--quick", "--tasks", "Nope"], "--tasks: unknown task 'Nope'; valid "),
        (["benchmark", "--quick", "--algos", "ppo,dqn"], "--algos: unknown algorithm 'dqn'"),
        (["tasks", "check", "--tasks", "Foo-v1"], "--tasks: unknown task 'Foo-v1'"),
    ],
)
def test_cli_bad_names_are_one_clear_line(argv, needle, capsys, tmp_path) -> None:
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: ") and needle in err[0], err
    assert "Traceback" not in "\n".join(err)


def test_cli_tasks_check_writes_json_and_markdown(tmp_path, capsys) -> None:
    out = tmp_path / "check"
    code = main(["tasks", "check", "--tasks", "NoveltyIntent", "--seeds", "1000",
                 "--episodes", "8", "--users", "8", "--out", str(out), "--quiet"])  # fmt: skip
    assert code in (0, 1)  # 1: not valid at this tiny size
    printed = capsys.readouterr().out
    assert "NoveltyIntent-v0" in printed and "exploit − blind" in printed
    checks = json.loads((out / "check.json").read_text())
    assert checks["NoveltyIntent-v0"]["seeds"] == [1000]
    assert "| NoveltyIntent-v0 |" in (out / "check.md").read_text()
    assert main(["tasks", "check", "--tasks", "NoveltyIntent", "--seeds", "1000",
                 "--write-reference"]) == 2  # fmt: skip
    assert "task's own protocol" in capsys.readouterr().err


# ---------------------------------------------------------------------- training (slow)
@pytest.mark.slow
def test_quick_profile_trains_evaluates_and_resumes(ray_session, tmp_path, monkeypatch) -> None:
    cfg = BenchmarkConfig(tasks=["NoveltyIntent-v0"], quick=True)  # ppo, hrl_flat, hrl
    calls: list[tuple[str, int]] = []
    real = benchmark.train_run

    def counting(task, train_cfg, train_dir):
        calls.append((train_cfg.algo, train_cfg.seed))
        return real(task, train_cfg, train_dir)

    monkeypatch.setattr(benchmark, "train_run", counting)
    results = run_benchmark(cfg, tmp_path, show_progress=False)
    assert sorted(calls) == [("hrl", 0), ("hrl", 0), ("ppo", 0)]  # hrl_flat trains hrl
    task = results["tasks"]["NoveltyIntent-v0"]
    for algo in ("ppo", "hrl_flat", "hrl"):
        entry = task["policies"][algo]
        assert entry["kind"] == "learner"
        assert np.isfinite(entry["metrics"]["mean_return"]["mean"])
        assert np.isfinite(entry["gap_closed"])
        assert entry["vs_popular"]["n"] == 16 and "baseline" in entry["vs_best_baseline"]
        training = entry["training"]["0"]
        assert training["iterations"] == 2 and training["env_steps"] >= 256
        assert (tmp_path / "runs" / "NoveltyIntent-v0" / algo / "seed_0" / "checkpoint").is_dir()
    assert task["policies"]["random"]["normalized"]["mean_return"]["mean"] == pytest.approx(0)
    assert task["policies"]["exploit"]["normalized"]["mean_return"]["mean"] == pytest.approx(100)
    md = (tmp_path / "benchmark.md").read_text()
    assert "| ppo | learner |" in md and "Δ vs popular" in md and "expected (hrl)" in md

    # rerun: finished runs are read back, not trained again
    result = tmp_path / "runs" / "NoveltyIntent-v0" / "ppo" / "seed_0.json"
    before = result.stat().st_mtime_ns
    calls.clear()
    again = run_benchmark(cfg, tmp_path, show_progress=False)
    assert calls == [] and result.stat().st_mtime_ns == before
    assert (
        again["tasks"]["NoveltyIntent-v0"]["policies"]["ppo"]["metrics"]
        == (task["policies"]["ppo"]["metrics"])
    )

    # an interrupted run (training outputs, no result file) is trained again from scratch
    result.unlink()
    stale = tmp_path / "runs" / "NoveltyIntent-v0" / "ppo" / "seed_0" / "stale.txt"
    stale.write_text("left by an interrupted run")
    run_benchmark(cfg, tmp_path, show_progress=False)
    assert calls == [("ppo", 0)] and result.is_file() and not stale.exists()


@pytest.mark.slow
def test_cli_benchmark_quick(ray_session, tmp_path, capsys) -> None:
    out = tmp_path / "bench"
    code = main(["benchmark", "--quick", "--tasks", "ColdStart", "--algos", "slate_ts",
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "ColdStart-v0" in printed and "slate_ts" in printed
    for name in ("benchmark.json", "benchmark.md", "benchmark.html", "manifest.json"):
        assert (out / name).is_file(), name
    assert (out / "runs" / "ColdStart-v0" / "slate_ts" / "seed_0.json").is_file()


def test_variants_train_their_base_algorithm_with_fixed_settings() -> None:
    config = BenchmarkConfig(tasks=["ColdStart"], algos=["slate_ts_plain", "hrl_flat"], quick=True)
    ts = config.train_config("slate_ts_plain", 0, 256)
    assert ts.algo == "slate_ts" and ts.algo_settings.exploration == "plain"
    assert ts.algo_settings.steps_per_iteration == 128  # the quick profile reaches variants
    flat = config.train_config("hrl_flat", 0, 4096)
    assert flat.algo == "hrl" and flat.algo_settings.mode == "flat"
    assert config.train_config("slate_ts_greedy", 0, 256).algo_settings.exploration == "greedy"


def test_cached_slate_ts_runs_survive_a_change_of_ppo_defaults(tmp_path) -> None:
    """Slate TS reads neither ``train.ppo`` nor ``train.model``: a cached run made under
    other PPO settings is still its protocol; any other change is an error."""
    config = BenchmarkConfig(tasks=["ColdStart"], algos=["slate_ts"], quick=True)
    cfg = config.train_config("slate_ts", 0, 256).model_dump(mode="json")
    path = tmp_path / "seed_0.json"
    old = {**cfg, "ppo": {**cfg["ppo"], "lr": 0.123}, "model": {**cfg["model"], "hidden": [7]}}
    path.write_text(json.dumps({"fingerprint": {"budget": 256, "train": old}, "runs": []}))
    assert benchmark._read_cached(path, {"budget": 256, "train": cfg}) is not None
    other = {**cfg, "slate_ts": {**cfg["slate_ts"], "lr": 0.5}}
    with pytest.raises(benchmark.ConfigError, match="another protocol"):
        benchmark._read_cached(path, {"budget": 256, "train": other})
    ppo = config.train_config("ppo", 0, 256).model_dump(mode="json")
    path.write_text(json.dumps({"fingerprint": {"train": {**ppo, "ppo": {"lr": 1}}}}))
    with pytest.raises(benchmark.ConfigError, match="differs in: train"):
        benchmark._read_cached(path, {"train": ppo})


def test_learners_on_one_task_are_compared_pairwise_by_seed_and_life() -> None:
    task = load_task("NoveltyIntent-v0")
    rng = np.random.default_rng(1)
    lives = {n: rng.normal(mu, 1.0, 30) for n, mu in (("random", 0.0), ("popular", 1.0),
             ("linucb", 2.0), ("blind", 3.0), ("exploit", 5.0))}  # fmt: skip
    refs = {n: [_run(x)] for n, x in lives.items()}
    base = lives["linucb"]
    a = {s: [_run(base + 1.0 + s)] for s in (0, 1)}
    b = {s: [_run(base + s)] for s in (0, 1)}
    c = {5: [_run(base)]}  # other training seeds: not paired
    agg = aggregate_task(task, refs, {"hrl": a, "ppo": b, "other": c})["policies"]
    diff = agg["hrl"]["vs_learners"]["ppo"]
    assert diff["mean"] == pytest.approx(1.0) and diff["lo"] == pytest.approx(1.0)
    assert agg["ppo"]["vs_learners"]["hrl"]["mean"] == pytest.approx(-1.0)
    assert "other" not in agg["hrl"]["vs_learners"]
    rows = benchmark_report.learner_pair_rows({"policies": agg})
    assert rows[0]["learners"] == "hrl − ppo" and "+1.0" in rows[0]["Δ mean return"]


def test_cli_train_overrides_are_json_with_a_clear_error(capsys) -> None:
    assert main(["benchmark", "--quick", "--train", "{bad", "--out", "unused"]) == 2
    assert "--train: not JSON" in capsys.readouterr().err
    assert main(["benchmark", "--quick", "--train", '{"seed": 3}', "--out", "unused"]) == 2
    assert "['seed'] are set by the benchmark" in capsys.readouterr().err


def test_population_task_trains_ppo_only(tmp_path) -> None:
    config = BenchmarkConfig(tasks=["Population"], algos=["ppo", "slate_ts"], quick=True)
    with pytest.raises(benchmark.ConfigError, match=r"population .*not 'slate_ts'"):
        run_benchmark(config, tmp_path, show_progress=False)
    assert not (tmp_path / "references").exists()  # refused before any run


@pytest.mark.slow
def test_quick_profile_trains_the_population(ray_session, tmp_path) -> None:
    """Population-v0: multi-agent PPO (one shared module) trains on the budget in user
    steps, and its module serves every user of the evaluation population."""
    results = run_benchmark(BenchmarkConfig(tasks=["Population"], quick=True), tmp_path,
                            show_progress=False)  # fmt: skip
    task = results["tasks"]["Population-v0"]
    ppo = task["policies"]["ppo"]
    assert ppo["kind"] == "learner" and np.isfinite(ppo["metrics"]["mean_return"]["mean"])
    training = ppo["training"]["0"]
    assert training["iterations"] == 2 and training["env_steps"] >= 256  # user steps
    manifest = tmp_path / "runs" / "Population-v0" / "ppo" / "seed_0" / "manifest.json"
    assert json.loads(manifest.read_text())["config"]["population"]["n_users"] == 256
    assert ppo["vs_popular"]["n"] == 16  # the quick profile's 16 users, paired by slot
    assert "budget 256 user steps per run" in (tmp_path / "benchmark.md").read_text()
