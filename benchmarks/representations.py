"""Item representations compared in one run: prompt tokens per LLM user-turn, LLM user-turns/s,
and PPO return after a fixed training budget.

For each representation (``text``; ``text`` with 16 text-embedding components for the policy;
``semantic_id``; ``multimodal``):

- **prompt tokens per turn**: the LLM user's turn prompt (persona, memory, mindset, the slate
  as the representation shows it) for 64 MovieLens users and popular slates, counted with the
  embedded model's tokenizer;
- **LLM user-turns/s**: the LLM world (``simulator: llm``, generate mode: one guided JSON
  review per turn, which reads every item view) on the embedded SmolLM2-135M, ``--llm-users``
  users for ``--llm-steps`` steps (``--no-llm`` skips it); a turn whose answer stays invalid
  after the repairs is decided by the parametric model and counted (``generate_fallback``);
- **PPO return**: ``--iterations`` PPO iterations in the parametric synthetic world, then the
  mean return of 200 evaluation lives (same seeds for every representation).

    python benchmarks/representations.py [--iterations 10] [--llm-users 8] [--llm-steps 2]
        [--no-llm] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import numpy as np

VARIANTS: dict[str, dict[str, Any]] = {
    "text": {"representation": "text"},
    "text + 16 embedding dims": {"representation": "text", "representations": {"text_dim": 16}},
    "semantic_id": {"representation": "semantic_id"},
    "multimodal": {"representation": "multimodal"},
}


def prompt_tokens(variant: dict[str, Any], users: int = 64) -> float:
    """Mean prompt tokens of the LLM user's turn prompt (MovieLens world, popular slates)."""
    from transformers import AutoTokenizer

    from recoworld.envs.config import WorldConfig
    from recoworld.envs.world import World
    from recoworld.llm import prepare_embedded_model
    from recoworld.llm.prompts import chat_request
    from recoworld.policies.baselines import make_baseline

    cfg = WorldConfig.model_validate(
        {**variant, "catalog": {"source": "movielens"},
         "users": {"source": "movielens", "fitted_weights": False}}
    )  # fmt: skip
    world = World(cfg, users)
    obs, _ = world.reset(seed=0)
    slate = make_baseline("popular", world, seed=0).act(obs)
    items = np.take_along_axis(world.cands, slate, axis=1)
    rep = world.representation
    people = world.simulator.personas(world.state, np.arange(users))
    tok = AutoTokenizer.from_pretrained(str(prepare_embedded_model()))
    counts = []
    for b, person in enumerate(people):
        req = chat_request(
            "llm_user_turn", request_id=str(b), persona=person.describe(), summaries=[],
            memory=[], mindset="curious, just opened the app", instruction="",
            items=[{**rep.view(int(i), description_chars=300), "note": ""} for i in items[b]],
        )  # fmt: skip
        text = tok.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in req.messages], tokenize=False
        )
        counts.append(len(tok(text)["input_ids"]))
    world.close()
    return float(np.mean(counts))


def llm_turns_per_second(variant: dict[str, Any], users: int, steps: int) -> dict[str, float]:
    from recoworld.envs.config import WorldConfig
    from recoworld.envs.vector_env import RecoWorldVectorEnv
    from recoworld.policies.baselines import make_baseline

    cfg = WorldConfig.model_validate(
        {**variant, "simulator": "llm", "llm_user": {"mode": "generate"},
         "catalog": {"source": "movielens"},
         "users": {"source": "movielens", "fitted_weights": False},
         "llm": {"cache": False, "on_invalid": "record"}, "episode": {"text_info": "all"}}
    )  # fmt: skip
    env = RecoWorldVectorEnv(num_envs=users, config=cfg)
    try:
        obs, _ = env.reset(seed=0)
        rec = make_baseline("popular", env.world, seed=0)
        obs, *_ = env.step(rec.act(obs))  # warm-up (engine, prefix cache)
        turns, start = 0, time.perf_counter()
        for _ in range(steps):
            obs, _, _, _, info = env.step(rec.act(obs))
            turns += int(np.asarray(info["_click"]).sum())
        elapsed = time.perf_counter() - start
        stats = env.world.simulator.stats
    finally:
        env.close()
    return {"turns_per_s": turns / elapsed, "turns": turns,
            "generate_fallback": int(stats.get("generate_fallback", 0))}  # fmt: skip


def ppo_return(variant: dict[str, Any], iterations: int) -> float:
    from recoworld.envs.config import WorldConfig
    from recoworld.rl.config import TrainConfig
    from recoworld.rl.trainer import train

    world = WorldConfig.model_validate(
        {**variant, "catalog": {"source": "synthetic"}, "candidates": {"n_candidates": 20},
         "episode": {"slate_size": 3, "text_info": "none"}}
    )  # fmt: skip
    cfg = TrainConfig(iterations=iterations, eval_every=0, checkpoint_every=0, eval_episodes=200)
    with tempfile.TemporaryDirectory() as out:
        last = train(world, cfg, out, show_progress=False)
    return float(last["mean_return"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--llm-users", type=int, default=8)
    parser.add_argument("--llm-steps", type=int, default=2)
    parser.add_argument("--no-llm", action="store_true")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="these variants")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows: dict[str, dict[str, Any]] = {}
    for name, variant in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        row: dict[str, Any] = {"prompt_tokens": prompt_tokens(variant)}
        if not args.no_llm and name != "text + 16 embedding dims":  # same prompt as text
            row.update(llm_turns_per_second(variant, args.llm_users, args.llm_steps))
        row["ppo_return"] = ppo_return(variant, args.iterations)
        rows[name] = row
        print(name, row, flush=True)
    print(f"\n{'representation':<26} {'prompt tokens/turn':>18} {'LLM turns/s':>12} "
          f"{'PPO return (' + str(args.iterations) + ' it.)':>20}")  # fmt: skip
    for name, row in rows.items():
        tps = f"{row['turns_per_s']:.2f}" if "turns_per_s" in row else "-"
        print(f"{name:<26} {row['prompt_tokens']:>18.0f} {tps:>12} {row['ppo_return']:>20.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
