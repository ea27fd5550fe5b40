"""Hierarchical novelty-seeking RL: a high level picks a novelty goal per session, a low
level picks slates given it."""
