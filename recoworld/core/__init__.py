"""Helpers every other package builds on: config base and YAML reading, statistics (one
bootstrap), atomic writes, run manifests, progress bars, paths and typed errors. Imports
nothing else from RecoWorld."""
