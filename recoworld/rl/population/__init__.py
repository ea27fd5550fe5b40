"""Multi-agent PPO on the population env: one slate module shared by every user."""
