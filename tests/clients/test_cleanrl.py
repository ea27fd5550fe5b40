"""examples/cleanrl_ppo.py: the CleanRL-style PPO runs end to end and its pieces are sound."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "cleanrl_ppo.py"


@pytest.fixture(scope="module")
def cleanrl_ppo():
    """The example script imported as a module (its ``main`` does not run)."""
    spec = importlib.util.spec_from_file_location("cleanrl_ppo_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.mark.slow
def test_script_runs_and_prints_returns(tmp_path):
    cmd = [
        sys.executable, str(SCRIPT), "--total-timesteps", "512", "--num-envs", "4",
        "--num-steps", "64", "--update-epochs", "2",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    iterations = re.findall(r"^iteration=(\d+)/2 .*episodic_return=(\S+)", proc.stdout, re.M)
    assert [i for i, _ in iterations] == ["1", "2"], proc.stdout
    final = re.search(r"^mean_episodic_return=(-?\d+\.\d+) \(last \d+ of (\d+)", proc.stdout, re.M)
    assert final, proc.stdout
    assert np.isfinite(float(final.group(1))) and int(final.group(2)) > 0


def test_parse_args_defaults_and_flags(cleanrl_ppo):
    args = cleanrl_ppo.parse_args(
        ["--total-timesteps", "2048", "--num-envs", "8", "--no-anneal-lr", "--target-kl", "0.02"]
    )
    assert args.total_timesteps == 2048 and args.num_envs == 8
    assert args.anneal_lr is False and args.target_kl == pytest.approx(0.02)
    assert args.observation == "flat" and args.env_id == "recoworld/RecoWorld-v0"
    assert args.batch_size == 8 * args.num_steps
    assert args.num_iterations == max(2048 // args.batch_size, 1)


def test_agent_action_shape(cleanrl_ppo, recoworld_id):
    if gym.spec(recoworld_id).vector_entry_point is None:
        pytest.skip(f"{recoworld_id} registers no vector_entry_point")
    args = cleanrl_ppo.parse_args(["--num-envs", "3", "--env-id", recoworld_id])
    envs = cleanrl_ppo.make_envs(args)
    agent = cleanrl_ppo.Agent(envs)
    obs, _ = envs.reset(seed=0)
    x = torch.as_tensor(obs)
    with torch.no_grad():
        action, logprob, entropy, value = agent.get_action_and_value(x)
    k = envs.single_action_space.shape[0]
    assert action.shape == (3, k)
    assert logprob.shape == entropy.shape == (3,)
    assert value.shape == (3, 1)
    assert envs.action_space.contains(action.numpy().astype(envs.action_space.dtype))
    # re-scoring the sampled slate gives the same log-probability
    with torch.no_grad():
        _, again, _, _ = agent.get_action_and_value(x, action)
    torch.testing.assert_close(again, logprob)
    envs.step(action.numpy())
    envs.close()


def test_gae_respects_next_step_autoreset(cleanrl_ppo):
    """One slot: steps 0-1 form an episode that terminates at 1, step 2 is the autoreset
    transition, steps 3-4 an episode that is truncated at 4."""
    gamma, lam = 0.9, 0.5
    rewards = torch.tensor([[1.0], [2.0], [0.0], [3.0], [4.0]])
    values = torch.tensor([[0.5], [0.25], [7.0], [1.0], [2.0]])
    term = torch.tensor([[0.0], [1.0], [0.0], [0.0], [0.0]])
    trunc = torch.tensor([[0.0], [0.0], [0.0], [0.0], [1.0]])
    next_value = torch.tensor([6.0])  # value of the truncated episode's real last obs
    adv = cleanrl_ppo.compute_gae(rewards, values, term, trunc, next_value, gamma, lam)
    d4 = 4.0 + gamma * 6.0 - 2.0  # truncation bootstraps from the last observation
    d3 = 3.0 + gamma * 2.0 - 1.0
    d1 = 2.0 - 0.25  # termination: no bootstrap
    d0 = 1.0 + gamma * 0.25 - 0.5
    expected = [d0 + gamma * lam * d1, d1, None, d3 + gamma * lam * d4, d4]
    for t, e in enumerate(expected):
        if e is not None:  # row 2 is masked out of the loss
            assert adv[t, 0].item() == pytest.approx(e), t


def test_vector_env_is_native_and_flat(cleanrl_ppo):
    envs = cleanrl_ppo.make_envs(cleanrl_ppo.parse_args(["--num-envs", "2"]))
    assert isinstance(envs.unwrapped, gym.vector.VectorEnv)
    assert envs.unwrapped.__class__.__name__ == "RecoWorldVectorEnv"
    assert isinstance(envs.single_observation_space, gym.spaces.Box)
    envs.close()
