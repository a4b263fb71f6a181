"""Collectors: environments (Atari, MiniGrid, any gymnasium id) -> policy -> episode shards (docs/collect.md).

    dreamstream.collect.config      EnvConfig, CollectConfig (light: commands' settings nest them)
    dreamstream.collect.envs        make_env(EnvConfig): the adapters and their episode specs
    dreamstream.collect.policies    the Policy interface, make_policy (a policy by name or location)
    dreamstream.collect.random_policy  RandomPolicy
    dreamstream.collect.expert      the scripted MiniGrid expert
    dreamstream.collect.snapshot    SnapshotPolicy: published trainer snapshots, hot-reloaded
    dreamstream.collect.loop        collect_loop: envs -> policy -> rows (each worker's loop)
    dreamstream.collect.results     Episode, WorkerState, Summary: what a collection run reports
    dreamstream.collect.protocol    WorkerTask and the messages between the parent and a worker
    dreamstream.collect.worker      worker_main: one worker process (envs, policy, its own writer)
    dreamstream.collect.collector   Collector: the parent of N spawned workers writing one dataset
    dreamstream.collect.progress    progress bar / log lines, and MLflow metrics, of a run
    dreamstream.collect.command     `dreamstream collect`
    dreamstream.collect.bench       `dreamstream bench collect`

This package imports only the light config module eagerly; import the others where they are used.
"""

from dreamstream.collect.config import CollectConfig, EnvConfig

__all__ = ["CollectConfig", "EnvConfig"]
