"""The parametric (numpy) user model: state, model, compiled kernels, segments, personas and
the users fitted to MovieLens."""
