"""CleanRL-style single-file PPO on RecoWorld (after CleanRL's ``ppo_multidiscrete.py``).

    python examples/cleanrl_ppo.py --total-timesteps 2048 --num-envs 8

The environments are RecoWorld's native vector env (``vectorization_mode=
"vector_entry_point"``: B users in one batched world, no per-env Python loop) with the
``"flat"`` observation view, a single float ``Box``, so the agent is CleanRL's plain MLP.
The action is the ``MultiDiscrete([M] * k)`` slate: one categorical over the M candidates
per slot, as CleanRL does for MultiDiscrete actions (a repeated index is an empty slot, which
the policy learns to avoid because it earns nothing).

RecoWorld's vector env uses Gymnasium's ``NEXT_STEP`` autoreset: the step that ends an
episode returns its real last observation, and the *next* step ignores the action and
returns the first observation of a new user with reward 0. This file therefore (1) bootstraps
truncated episodes from that real last observation, (2) cuts GAE at every episode end and
(3) leaves the autoreset transitions out of the loss (``valid`` below).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import time
import typing
from collections import deque
from dataclasses import dataclass

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np
import torch
from torch import nn, optim
from torch.distributions.categorical import Categorical

import recoworld  # noqa: F401  (registers recoworld/RecoWorld-v0)


@dataclass
class Args:
    exp_name: str = "cleanrl_ppo"
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """sets `torch.backends.cudnn.deterministic`"""
    cuda: bool = False
    """use CUDA when available"""
    torch_threads: int = 1
    """torch CPU threads (small MLPs are fastest on one)"""

    env_id: str = "recoworld/RecoWorld-v0"
    """the id of the environment"""
    observation: str = "flat"
    """observation view: the MLP needs 'flat' (one float Box)"""
    config: str | None = None
    """optional WorldConfig YAML (catalog, candidates, episode, reward)"""
    total_timesteps: int = 200_000
    """total timesteps of the experiment (all envs together)"""
    learning_rate: float = 2.5e-4
    """the learning rate of the optimizer"""
    num_envs: int = 8
    """the number of users stepped together in the vector env"""
    num_steps: int = 128
    """the number of steps to run in each environment per policy rollout"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda for the general advantage estimation"""
    num_minibatches: int = 4
    """the number of mini-batches"""
    update_epochs: int = 4
    """the K epochs to update the policy"""
    norm_adv: bool = True
    """advantages normalization"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """use a clipped loss for the value function"""
    ent_coef: float = 0.01
    """coefficient of the entropy"""
    vf_coef: float = 0.5
    """coefficient of the value function"""
    max_grad_norm: float = 0.5
    """the maximum norm for the gradient clipping"""
    target_kl: float | None = None
    """the target KL divergence threshold"""
    hidden: int = 64
    """width of the two hidden layers"""
    log_every: int = 1
    """print the running mean episodic return every this many iterations"""

    # filled in at runtime
    batch_size: int = 0
    minibatch_size: int = 0
    num_iterations: int = 0


def parse_args(argv: list[str] | None = None) -> Args:
    """``Args`` from the command line (``--total-timesteps 2048``, ``--no-anneal-lr``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    hints = typing.get_type_hints(Args)
    for field in dataclasses.fields(Args):
        if field.name in ("batch_size", "minibatch_size", "num_iterations"):
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
            continue
        base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
        parser.add_argument(flag, type=base, default=field.default, metavar=base.__name__.upper())
    args = Args(**vars(parser.parse_args(argv)))
    args.batch_size = args.num_envs * args.num_steps
    args.minibatch_size = max(args.batch_size // args.num_minibatches, 1)
    args.num_iterations = max(args.total_timesteps // args.batch_size, 1)
    return args


def make_envs(args: Args) -> gym.vector.VectorEnv:
    kwargs: dict[str, typing.Any] = {"observation": args.observation}
    if args.config is not None:
        kwargs["config"] = args.config
    envs = gym.make_vec(
        args.env_id, num_envs=args.num_envs, vectorization_mode="vector_entry_point", **kwargs
    )
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    assert isinstance(envs.single_action_space, gym.spaces.MultiDiscrete), "slate expected"
    assert isinstance(envs.single_observation_space, gym.spaces.Box), "use observation='flat'"
    return envs


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Actor-critic MLP over the flat observation; one categorical per slate slot."""

    def __init__(self, envs: gym.vector.VectorEnv, hidden: int = 64) -> None:
        super().__init__()
        obs_dim = int(np.prod(envs.single_observation_space.shape))
        self.nvec = [int(n) for n in envs.single_action_space.nvec]
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, sum(self.nvec)), std=0.01),
        )

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(
        self, x: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Slate [B, k], its log-probability [B], entropy [B] and value [B, 1]."""
        split_logits = torch.split(self.actor(x), self.nvec, dim=1)
        dists = [Categorical(logits=logits) for logits in split_logits]
        if action is None:
            action = torch.stack([d.sample() for d in dists], dim=1)
        logprob = torch.stack([d.log_prob(a) for a, d in zip(action.T, dists, strict=True)])
        entropy = torch.stack([d.entropy() for d in dists])
        return action, logprob.sum(0), entropy.sum(0), self.critic(x)


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    terminations: torch.Tensor,
    truncations: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """GAE advantages [T, B] for a ``NEXT_STEP``-autoreset rollout.

    Row t holds the observation ``obs[t]``, its value, and what step t returned (reward,
    terminated, truncated); ``obs[t + 1]`` is the observation step t returned, so when step
    t ended the episode it is the episode's real last observation: a truncated episode
    bootstraps from its value, a terminated one from nothing. Advantages never run across an
    episode end. The autoreset rows (the step after an end) get meaningless advantages and
    must be masked out of the loss.
    """
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(next_value)
    for t in reversed(range(num_steps)):
        nextvalues = next_value if t == num_steps - 1 else values[t + 1]
        nonterminal = 1.0 - terminations[t]
        continues = 1.0 - torch.maximum(terminations[t], truncations[t])
        delta = rewards[t] + gamma * nextvalues * nonterminal - values[t]
        lastgaelam = delta + gamma * gae_lambda * continues * lastgaelam
        advantages[t] = lastgaelam
    return advantages


def train(args: Args) -> list[float]:
    """Run PPO; returns the episodic returns seen during training."""
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)  # minibatch shuffling
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.torch_threads)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

    envs = make_envs(args)
    agent = Agent(envs, args.hidden).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    shape = (args.num_steps, args.num_envs)
    obs = torch.zeros(shape + envs.single_observation_space.shape, device=device)
    actions = torch.zeros(shape + envs.single_action_space.shape, device=device)
    logprobs = torch.zeros(shape, device=device)
    rewards = torch.zeros(shape, device=device)
    terminations = torch.zeros(shape, device=device)
    truncations = torch.zeros(shape, device=device)
    valid = torch.zeros(shape, dtype=torch.bool, device=device)
    values = torch.zeros(shape, device=device)

    global_step = 0
    start_time = time.time()
    episodic_returns: list[float] = []
    recent: deque[float] = deque(maxlen=100)
    next_obs_np, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(next_obs_np, device=device)
    # True where the previous step ended the slot's episode: this step is the autoreset.
    autoreset = torch.zeros(args.num_envs, dtype=torch.bool, device=device)

    for iteration in range(1, args.num_iterations + 1):
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / args.num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            valid[step] = ~autoreset

            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob

            next_obs_np, reward, term, trunc, infos = envs.step(action.cpu().numpy())
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32, device=device)
            terminations[step] = torch.as_tensor(term, dtype=torch.float32, device=device)
            truncations[step] = torch.as_tensor(trunc, dtype=torch.float32, device=device)
            next_obs = torch.as_tensor(next_obs_np, device=device)
            autoreset = torch.as_tensor(np.logical_or(term, trunc), device=device)

            if "episode" in infos:
                done = infos["_episode"]
                returns = infos["episode"]["r"][done].tolist()
                episodic_returns.extend(returns)
                recent.extend(returns)

        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)[0]
            advantages = compute_gae(
                rewards, values, terminations, truncations, next_value,
                args.gamma, args.gae_lambda,
            )  # fmt: skip
            returns_t = advantages + values

        # flatten the batch, keeping the real transitions only
        keep = valid.reshape(-1)
        b_obs = obs.reshape((-1, *envs.single_observation_space.shape))[keep]
        b_logprobs = logprobs.reshape(-1)[keep]
        b_actions = actions.reshape((-1, *envs.single_action_space.shape))[keep]
        b_advantages = advantages.reshape(-1)[keep]
        b_returns = returns_t.reshape(-1)[keep]
        b_values = values.reshape(-1)[keep]

        n = b_obs.shape[0]
        minibatch_size = max(min(args.minibatch_size, n), 1)
        b_inds = np.arange(n)
        clipfracs = []
        for _epoch in range(args.update_epochs):
            rng.shuffle(b_inds)
            for start in range(0, n, minibatch_size):
                mb_inds = b_inds[start : start + minibatch_size]

                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb_inds], b_actions.long()[mb_inds]
                )
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()

                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs += [((ratio - 1.0).abs() > args.clip_coef).float().mean().item()]

                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv and len(mb_inds) > 1:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (
                        mb_advantages.std() + 1e-8
                    )

                # Policy loss
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(
                    ratio, 1 - args.clip_coef, 1 + args.clip_coef
                )
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                # Value loss
                newvalue = newvalue.view(-1)
                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(
                        newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef
                    )
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

            if args.target_kl is not None and approx_kl > args.target_kl:
                break

        if iteration % args.log_every == 0 or iteration == args.num_iterations:
            mean_return = f"{np.mean(recent):.3f}" if recent else "n/a"
            sps = int(global_step / (time.time() - start_time))
            print(
                f"iteration={iteration}/{args.num_iterations} global_step={global_step} "
                f"episodes={len(episodic_returns)} episodic_return={mean_return} "
                f"v_loss={v_loss.item():.3f} pg_loss={pg_loss.item():.3f} "
                f"entropy={entropy_loss.item():.3f} approx_kl={approx_kl.item():.4f} "
                f"clipfrac={np.mean(clipfracs):.3f} SPS={sps}",
                flush=True,
            )

    envs.close()
    return episodic_returns


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    returns = train(args)
    if returns:
        last = returns[-100:]
        print(
            f"mean_episodic_return={np.mean(last):.3f} (last {len(last)} of "
            f"{len(returns)} episodes)"
        )
    else:
        print("mean_episodic_return=n/a (no episode finished; raise --total-timesteps)")


if __name__ == "__main__":
    main()
