"""PPO on the slate scoring module."""
