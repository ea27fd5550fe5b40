"""Dynamic slate recommendation with a Bayesian GRU user model and in-slate Thompson
sampling (FINN.no, 2021)."""
