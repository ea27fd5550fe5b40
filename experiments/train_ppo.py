"""Train PPO with the slate RLModule: the script form of `recoworld train --algo ppo`.

python experiments/train_ppo.py [--config experiments/configs/ppo.yaml] [--out runs/ppo]
    [--resume runs/ppo/checkpoint] [--iterations N] [--seed S]
"""

from __future__ import annotations

import sys

from recoworld.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--config" not in args:
        args = ["--config", "experiments/configs/ppo.yaml", *args]
    if "--out" not in args:
        args = [*args, "--out", "runs/ppo"]
    raise SystemExit(main(["train", "--algo", "ppo", *args]))
