"""TorchRL (0.14) on every registered RecoWorld id, used the way its docs show.

``GymEnv(id, observation=view)`` (keyword arguments TorchRL does not know go to
``gym.make``), ``check_env_specs``, random rollouts, ``SerialEnv`` / ``ParallelEnv`` of two
and a ``Collector`` driven by a small tensordict policy. See docs/clients/torchrl.md.

TorchRL maps a ``MultiDiscrete`` space to stacked ``OneHot`` (default) or ``Categorical``
(``categorical_action_encoding=True``) specs over ``[0, n)`` and drops Gymnasium's
``start``: ``recent_ids`` (``MultiDiscrete([N + 1] * H, start=-1)``, -1 padded) does not fit
its spec. The ``"features"`` and ``"flat"`` views work as they are; ``"features+ids"``
needs ``shift_recent_ids`` below (padding 0, item i as i + 1). Gymnasium vector envs go
through ``GymWrapper`` only with ``autoreset_mode=DISABLED``: the native batched env takes
``autoreset_mode="Disabled"`` for that (its default, ``NEXT_STEP``, is rejected).
"""

from __future__ import annotations

import functools
import sys

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torchrl")

import torch
from tensordict.nn import TensorDictModule
from torchrl.collectors import Collector, RandomPolicy
from torchrl.data import Categorical, OneHot
from torchrl.envs import GymEnv, GymWrapper, ParallelEnv, SerialEnv
from torchrl.envs.utils import check_env_specs
from torchrl.modules import ProbabilisticActor

SMALL = {
    "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "text_info": "none"},
}
FEATURE_KEYS = ("candidates", "user", "history", "instruction")


def shift_recent_ids(env: gym.Env) -> gym.Env:
    """``env`` (``"features+ids"`` view) with ``recent_ids`` shifted by one: 0 = padding,
    item i = i + 1, as ``MultiDiscrete([N + 1] * H)`` with no ``start`` (what TorchRL can
    represent)."""
    space = env.observation_space
    recent = space["recent_ids"]
    shifted = gym.spaces.MultiDiscrete(recent.nvec.copy())
    new_space = gym.spaces.Dict({**space.spaces, "recent_ids": shifted})
    return gym.wrappers.TransformObservation(
        env, lambda obs: {**obs, "recent_ids": obs["recent_ids"] + 1}, new_space
    )


def _slate_spec(env, categorical: bool, m: int, k: int) -> None:
    """The slate ``MultiDiscrete([M] * k)`` is k stacked ``Categorical(M)`` (shape (k,)) or
    ``OneHot(M)`` (shape (k, M)) specs."""
    spec = env.action_spec
    if categorical:
        assert isinstance(spec, Categorical) and spec.shape == (k,) and spec.space.n == m
    else:
        assert isinstance(spec, OneHot) and spec.shape == (k, m) and spec.space.n == m


@pytest.mark.parametrize("categorical", [True, False], ids=["categorical", "onehot"])
@pytest.mark.parametrize("view", ["features", "flat"])
def test_gym_env_specs_and_rollout(recoworld_id, view, categorical):
    torch.manual_seed(0)
    env = GymEnv(recoworld_id, observation=view, categorical_action_encoding=categorical)
    gym_env = env._env.unwrapped
    assert gym_env.observation_view == view  # the kwarg reached gym.make
    m, k = int(gym_env.action_space.nvec[0]), len(gym_env.action_space.nvec)
    _slate_spec(env, categorical, m, k)
    obs_spec = env.observation_spec
    if view == "flat":
        assert set(obs_spec.keys()) == {"observation"}
        assert obs_spec["observation"].shape == gym_env.observation_space.shape
        assert obs_spec["observation"].dtype == torch.float32
    else:
        assert set(obs_spec.keys()) == set(FEATURE_KEYS)
        for key in FEATURE_KEYS:
            assert obs_spec[key].shape == gym_env.observation_space[key].shape
    check_env_specs(env, seed=0)

    td = env.rollout(20, break_when_any_done=False)  # random actions from the spec
    assert td.batch_size == (20,)
    assert torch.isfinite(td["next", "reward"]).all()
    actions = td["action"] if categorical else td["action"].argmax(-1)
    assert actions.shape == (20, k) and ((actions >= 0) & (actions < m)).all()
    env.close()


def test_features_plus_ids_needs_the_recent_ids_shift(recoworld_id):
    """TorchRL drops ``start=-1``; with ``shift_recent_ids`` the view checks and rolls out."""
    raw = gym.make(recoworld_id, observation="features+ids")
    space = raw.observation_space
    n_items = int(space["candidate_ids"].nvec[0])
    h = space["recent_ids"].shape[0]
    assert space["recent_ids"].start.tolist() == [-1] * h

    # default one-hot encoding: the spec is one-hot over [0, N + 1); reset's -1 padding
    # cannot be one-hot encoded
    env = GymEnv(recoworld_id, observation="features+ids")
    assert env.observation_spec["recent_ids"].shape == (h, n_items + 1)
    assert env.observation_spec["candidate_ids"].shape == (space["candidate_ids"].shape[0],
                                                           n_items)  # fmt: skip
    with pytest.raises(RuntimeError, match="non-negative"):
        env.reset()
    env.close()

    # categorical encoding: Categorical(N + 1) over [0, N], so -1 is outside the spec
    env = GymEnv(recoworld_id, observation="features+ids", categorical_action_encoding=True)
    spec = env.observation_spec["recent_ids"]
    assert isinstance(spec, Categorical) and spec.shape == (h,) and spec.space.n == n_items + 1
    td = env.reset()
    assert (td["recent_ids"] == -1).all() and not spec.is_in(td["recent_ids"])
    with pytest.raises(AssertionError):
        check_env_specs(env, seed=0)
    env.close()

    # the shift: padding 0, item i as i + 1, inside Categorical(N + 1)
    for categorical in (True, False):
        wrapped = GymWrapper(shift_recent_ids(gym.make(recoworld_id, observation="features+ids")),
                             categorical_action_encoding=categorical)  # fmt: skip
        check_env_specs(wrapped, seed=0)
        wrapped.close()
    wrapped = GymWrapper(shift_recent_ids(raw), categorical_action_encoding=True)
    td = wrapped.rollout(40, break_when_any_done=False)
    recent = td["next", "recent_ids"]
    assert recent.min() >= 0 and recent.max() <= n_items
    assert (recent > 0).any()  # some clicks: item ids + 1
    assert ((td["candidate_ids"] >= 0) & (td["candidate_ids"] < n_items)).all()
    wrapped.close()


def _make_flat(recoworld_id: str) -> GymEnv:
    return GymEnv(recoworld_id, observation="flat", categorical_action_encoding=True)


def test_serial_env_of_two(recoworld_id):
    env = SerialEnv(2, functools.partial(_make_flat, recoworld_id))
    check_env_specs(env, seed=0)
    td = env.rollout(10, break_when_any_done=False)
    assert td.batch_size == (2, 10)
    assert td["observation"].shape[:2] == (2, 10)
    assert not torch.equal(td["observation"][0], td["observation"][1])  # two different users
    env.close()


@pytest.mark.skipif(sys.platform != "linux", reason="forks the workers (fast); spawn is ~20 s")
def test_parallel_env_of_two(recoworld_id):
    env = ParallelEnv(2, functools.partial(_make_flat, recoworld_id), mp_start_method="fork")
    try:
        td = env.rollout(10, break_when_any_done=False)
        assert td.batch_size == (2, 10)
        assert torch.isfinite(td["next", "reward"]).all()
    finally:
        env.close()


class SlateScores(torch.nn.Module):
    """flat observation -> logits [..., k, M] (one categorical per slot)."""

    def __init__(self, n_in: int, m: int, k: int) -> None:
        super().__init__()
        self.m, self.k = m, k
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_in, 32), torch.nn.Tanh(), torch.nn.Linear(32, k * m)
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).unflatten(-1, (self.k, self.m))


def test_collector_random_and_tensordict_policy(recoworld_id):
    torch.manual_seed(0)
    env = GymEnv(recoworld_id, observation="flat", categorical_action_encoding=True,
                 config=SMALL)  # fmt: skip
    k, m = env.action_spec.shape[0], env.action_spec.space.n

    random = Collector(env, RandomPolicy(env.action_spec), frames_per_batch=16, total_frames=32)
    batches = list(random)
    random.shutdown()
    assert [b.batch_size for b in batches] == [(16,), (16,)]

    module = TensorDictModule(
        SlateScores(env.observation_spec["observation"].shape[-1], m, k),
        in_keys=["observation"], out_keys=["logits"],
    )  # fmt: skip
    actor = ProbabilisticActor(
        module, in_keys=["logits"], distribution_class=torch.distributions.Categorical,
        spec=env.action_spec, return_log_prob=True,
    )  # fmt: skip
    # not recurrent: no InitTracker / primer transforms to add (silences a FutureWarning)
    collector = Collector(env, actor, frames_per_batch=32, total_frames=64,
                          auto_register_policy_transforms=False)  # fmt: skip
    optim = torch.optim.Adam(actor.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in actor.parameters()]
    n = 0
    for batch in collector:
        n += 1
        assert batch.batch_size == (32,) and batch["action"].shape == (32, k)
        assert env.action_spec.is_in(batch["action"][0])
        # REINFORCE on the batch's rewards: gradients reach the policy
        logits = module(batch.select("observation"))["logits"]
        dist = torch.distributions.Categorical(logits=logits)
        logp = dist.log_prob(batch["action"]).sum(-1)
        loss = -(logp * batch["next", "reward"].squeeze(-1)).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
    collector.shutdown()
    assert n == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, actor.parameters(), strict=True))
    env.close()


def test_flat_obs_matches_the_gym_env(recoworld_id):
    """TorchRL's observation is the env's own observation, unchanged (``set_seed`` resets
    the Gymnasium env with the seed; the next ``reset`` brings the next user)."""
    env = GymEnv(recoworld_id, observation="flat", categorical_action_encoding=True)
    env.set_seed(5)
    td = env.reset()
    ref = gym.make(recoworld_id, observation="flat")
    ref.reset(seed=5)
    obs, _ = ref.reset()
    np.testing.assert_array_equal(td["observation"].numpy(), obs)
    env.close()


def test_gymnasium_vector_envs(recoworld_id):
    """TorchRL takes a Gymnasium vector env whose autoreset mode is DISABLED (it resets
    finished users itself); the native batched env (NEXT_STEP only) is rejected."""
    disabled = {"autoreset_mode": gym.vector.AutoresetMode.DISABLED}
    vec = gym.make_vec(recoworld_id, num_envs=3, vectorization_mode="sync", observation="flat",
                       vector_kwargs=disabled)  # fmt: skip
    env = GymWrapper(vec, categorical_action_encoding=True)
    assert env.batch_size == (3,)
    check_env_specs(env, seed=0)
    td = env.rollout(40, break_when_any_done=False)
    assert td.batch_size == (3, 40) and td["next", "done"].any()  # users left and came anew
    env.close()

    native = gym.make_vec(recoworld_id, num_envs=3, vectorization_mode="vector_entry_point",
                          observation="flat")  # fmt: skip
    assert native.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    with pytest.raises(RuntimeError, match=r"auto-reset mode"):
        GymWrapper(native, categorical_action_encoding=True)
    native.close()

    # the native batched env in DISABLED mode: TorchRL drives it, resetting ended users
    native = gym.make_vec(recoworld_id, num_envs=4, vectorization_mode="vector_entry_point",
                          autoreset_mode="Disabled")  # fmt: skip
    env = GymWrapper(native, categorical_action_encoding=True)
    assert env.batch_size == (4,)
    check_env_specs(env, seed=0)
    td = env.rollout(40, break_when_any_done=False)
    assert td.batch_size == (4, 40) and td["next", "done"].any()
    env.close()
