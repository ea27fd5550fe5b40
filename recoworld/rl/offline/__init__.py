"""Offline RL: recording trajectories in RLlib's offline layout and training BC/MARWIL on them."""
