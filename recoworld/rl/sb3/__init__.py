"""Stable-Baselines3 support: ``SlatePolicy``, a shared candidate scorer with a Plackett-Luce
slate (``recoworld.rl.sb3.slate_policy``)."""

from recoworld.rl.sb3.slate_policy import SlateDistribution, SlatePolicy

__all__ = ["SlateDistribution", "SlatePolicy"]
