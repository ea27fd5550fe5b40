"""Pieces shared by the RLlib algorithms: the slate scoring RLModule, the Plackett-Luce slate
distribution, its settings, and trained modules as Recommenders."""
