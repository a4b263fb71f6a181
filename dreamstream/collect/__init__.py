"""Collectors: environments (Atari, MiniGrid, any gymnasium id) -> policy -> episode shards (docs/collect.md).

    dreamstream.collect.config      EnvConfig, CollectConfig (light: the root Settings nests them)
    dreamstream.collect.envs        make_env(EnvConfig): the adapters and their episode specs
    dreamstream.collect.policies    the Policy interface, RandomPolicy, make_policy
    dreamstream.collect.expert      the scripted MiniGrid expert
    dreamstream.collect.snapshot    SnapshotPolicy: published trainer snapshots, hot-reloaded
    dreamstream.collect.collector   Collector: N spawned worker processes writing one dataset
    dreamstream.collect.command     `dreamstream collect`
    dreamstream.collect.bench       `dreamstream bench collect`

This package imports only the light config module eagerly; import the others where they are used.
"""

from dreamstream.collect.config import CollectConfig, EnvConfig

__all__ = ["CollectConfig", "EnvConfig"]
