"""Policy evaluation: metrics over logged trajectories (``metrics``), the runner that compares
policies across worlds and seeds with common random numbers (``runner``), and the HTML
report with plots and the terminal leaderboard (``report``)."""

from recoworld.evaluation.runner import (
    EvalConfig,
    EvalWorld,
    PolicySpec,
    load_eval_config,
    run_evaluation,
)

__all__ = ["EvalConfig", "EvalWorld", "PolicySpec", "load_eval_config", "run_evaluation"]
