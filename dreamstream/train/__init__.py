"""DreamerV2 training (PyDreamer's feature set), grouped by job:

    model/   the agent's maths: RSSM, encoders, decoders, heads, distributions, world model, actor-critic, agent
    loop/    the trainer process: loop, learner (one optimiser step), online collection, checkpoints,
             policy snapshots, evaluation, metrics, the `dreamstream train` command
    dream/   inspection of a trained world model: the dream API, its reports and videos, `dreamstream dream`
    bench.py training-step time (`dreamstream bench train`)

Collectors load policies through dreamstream.collect.snapshot, which builds the acting model from
model/ code named by a fixed registry; they never import the trainer.
"""
