"""Dask jobs over episode datasets: statistics, validation at scale, and offline corpus building.

Depends on dreamstream.datasets only; nothing in dreamstream.datasets imports this package (the
`validate` command imports it lazily when asked to run on a cluster). See docs/pipelines.md.
"""
