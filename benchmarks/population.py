"""Throughput of the population: N coupled parametric users vs Google RecSim, in one run.

A population of ``--users`` long-lived parametric users (synthetic catalog, 10 candidates,
slates of 2 as in RecSim's ``interest_evolution``, ``text_info: none``, no arrivals, a long
``max_cycles``) with every coupling on (trending slots, sharing along the friendship graph,
creators publishing held-back items, the creator ledger and exposure Gini every step) is
stepped by uniformly random slates, drawn before the timed loop, through

(a) the batched core ``Population.step`` ([capacity, k] actions), and
(b) the PettingZoo API ``PopulationEnv.step`` (a dict of actions, one per present agent;
    building the dict is the caller's cost and is not timed; the env's per-agent
    observation/reward/info dicts are),

and RecSim's single-user steps/s is measured in the same run (``recsim_baseline``: its own
venv ``.bench-venv/recsim``, created on first use). Throughput is user-steps per second of
wall clock, a user-step being one alive user's step (users who leave for good stop
counting). Where the time goes is split into the world's own phases, the coupling
(``response_hook`` = ``Population.couple``: ledger, trending, sharing, publishing;
``candidate_hook`` = ``Population.inject``: shared, follower and trending slots) and, for
(b), the PettingZoo wrapping. One core.

    python benchmarks/population.py [--users 10000] [--steps 40] [--json out.json]
        [--default-users]

Users are long-lived (patient, long sessions; see ``LONG_LIVED``) so that the N users stay
present through the timed window: with the default users and random slates a population of
10,000 falls to ~50 within 40 steps while every slot is still stepped. ``--default-users``
adds that case as a third row.

Targets (issue 20): population core >= 60x RecSim in user-steps/s, PettingZoo API >= 20x.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from recsim_baseline import ensure_recsim_venv, run_recsim

from recoworld.envs.population.population import Population, PopulationEnv
from recoworld.evaluation import throughput

TARGETS = {"core": 60.0, "pettingzoo": 20.0}  # issue 20: x RecSim user-steps/s
# Long-lived users (``throughput.LONG_LIVED``): under random slates users with the default
# patience leave within a few steps and, in a population, never come back (10,000 -> ~50
# alive in 40 steps), while the world still steps every slot. The timed window should hold
# the N users the benchmark is about, so users are made patient and sessions long; the
# per-step work is the same kernels.
population_config = throughput.population_config


class Timers:
    """Wraps the population's coupling and the world's two phases to split the time of one
    population step: ``world_step`` (``World.respond`` + ``World.advance``), of which
    ``candidate_hook`` (``Population.inject``: shared, follower and trending slots) runs
    inside ``advance``; ``response_hook`` (``Population.couple``: ledger, trending, sharing,
    publishing) runs between the phases."""

    def __init__(self, pop: Population) -> None:
        self.seconds = {"candidate_hook": 0.0, "response_hook": 0.0, "world_step": 0.0}
        world = pop.world

        def timed(fn: Any, key: str) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                out = fn(*args, **kwargs)
                self.seconds[key] += time.perf_counter() - t0
                return out

            return wrapper

        pop.inject = timed(pop.inject, "candidate_hook")  # type: ignore[method-assign]
        pop.couple = timed(pop.couple, "response_hook")  # type: ignore[method-assign]
        world.respond = timed(world.respond, "world_step")  # type: ignore[method-assign]
        world.advance = timed(world.advance, "world_step")  # type: ignore[method-assign]

    def reset(self) -> None:
        for key in self.seconds:
            self.seconds[key] = 0.0

    def split(self, total: float) -> dict[str, float]:
        """Shares of ``total``: the world's own phases (slot injection excluded), each
        coupling part, the rest."""
        s = self.seconds
        own = s["world_step"] - s["candidate_hook"]
        out = {
            "world_step_own": own,
            "response_hook": s["response_hook"],
            "candidate_hook": s["candidate_hook"],
            "other": total - s["world_step"] - s["response_hook"],
        }
        return {k: v / total for k, v in out.items()}


def slates(pop: Population, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    m, k = pop.world.n_candidates, pop.world.slate_size
    return [np.argsort(rng.random((pop.capacity, m)), axis=1)[:, :k] for _ in range(n)]


def measure_core(users: int, steps: int, seed: int = 0, long_lived: bool = True) -> dict[str, Any]:
    pop = Population(population_config(users, steps, long_lived))
    timers = Timers(pop)
    pop.reset(seed)
    acts = slates(pop, 8, seed)
    for i in range(3):  # warm-up (numba compilation)
        pop.step(acts[i])
    timers.reset()
    user_steps = 0
    start = time.perf_counter()
    for i in range(steps):
        user_steps += int(pop.alive.sum())
        pop.step(acts[i % len(acts)])
    elapsed = time.perf_counter() - start
    label = "" if long_lived else ", default users"
    return {
        "api": f"Population.step (batched core{label})",
        "users": users,
        "capacity": pop.capacity,
        "steps": steps,
        "user_steps": user_steps,
        "alive_at_end": int(pop.alive.sum()),
        "seconds": elapsed,
        "user_steps_per_s": user_steps / elapsed,
        "time_split": timers.split(elapsed),
        "n_released": int(pop.n_released),
        "exposure_gini": float(pop.exposure_gini[-1]),
    }


def measure_pettingzoo(users: int, steps: int, seed: int = 0) -> dict[str, Any]:
    env = PopulationEnv(population_config(users, steps))
    pop = env.population
    timers = Timers(pop)
    env.reset(seed=seed)
    acts = slates(pop, 8, seed)
    index = {a: i for i, a in enumerate(env.possible_agents)}

    def action_dict(i: int) -> dict[str, np.ndarray]:
        a = acts[i % len(acts)]
        return {agent: a[index[agent]] for agent in env.agents}

    for i in range(3):
        env.step(action_dict(i))
    timers.reset()
    user_steps = 0
    elapsed = 0.0
    for i in range(steps):
        actions = action_dict(i)  # the caller's side: not timed
        user_steps += len(actions)
        t0 = time.perf_counter()
        env.step(actions)
        elapsed += time.perf_counter() - t0
    split = timers.split(elapsed)
    split["pettingzoo_wrapping"] = split.pop("other")
    return {
        "api": "PopulationEnv.step (PettingZoo)",
        "users": users,
        "capacity": pop.capacity,
        "steps": steps,
        "user_steps": user_steps,
        "alive_at_end": len(env.agents),
        "seconds": elapsed,
        "user_steps_per_s": user_steps / elapsed,
        "time_split": split,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per API")
    parser.add_argument("--steps-recsim", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--default-users",
        action="store_true",
        help="also time the core with default (impatient) users: the population shrinks",
    )
    args = parser.parse_args()

    python = ensure_recsim_venv()
    recsim = run_recsim(python, steps=args.steps_recsim, seed=args.seed)
    core = measure_core(args.users, args.steps, args.seed)
    pz = measure_pettingzoo(args.users, args.steps, args.seed)
    rows = [core, pz]
    if args.default_users:
        rows.append(measure_core(args.users, args.steps, args.seed, long_lived=False))

    base = recsim["steps_per_s"]
    print(
        "RecSim interest_evolution (random policy, 10 candidates, slate 2): "
        f"{base:,.0f} steps/s  [{recsim['steps']} steps, {recsim['episodes']} episodes]"
    )
    print(
        f"RecoWorld population: {args.users:,} parametric users (long-lived unless noted), "
        f"every coupling on, {args.steps} timed steps, random slates; user-steps count the "
        "users alive at each step"
    )
    head = f"{'API':<50}{'user-steps/s':>14}{'x RecSim':>10}{'alive at end':>14}"
    print(f"{head}  time split")
    for r in rows:
        split = ", ".join(f"{k} {v:.0%}" for k, v in r["time_split"].items())
        ratio = r["user_steps_per_s"] / base
        print(
            f"{r['api']:<50}{r['user_steps_per_s']:>14,.0f}{ratio:>9.1f}x"
            f"{r['alive_at_end']:>14,}  {split}"
        )
    for r in rows:
        ratio = r["user_steps_per_s"] / base
        target = TARGETS["pettingzoo" if "PettingZoo" in r["api"] else "core"]
        verdict = "meets" if ratio >= target else "MISSES"
        print(f"{r['api']}: {ratio:.1f}x RecSim — {verdict} the >= {target:.0f}x target")
    if args.json:
        result = {"recsim": recsim, "population": rows, "target_ratios": TARGETS}
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
