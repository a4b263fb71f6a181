"""DreamerV2 training (PyDreamer's feature set), grouped by job:

    model/         the agent's maths: RSSM, encoders, decoders, heads, distributions, world model,
                   actor-critic, agent, and the agent <-> policy snapshot mapping
    loop/          the trainer process: loop, learner (one optimiser step), online collection, evaluation,
                   run counters, metrics, the `dreamstream train` and `dreamstream curves` commands
    dream/         inspection of a trained world model: the dream API, its reports and videos, `dreamstream dream`
    run_folder.py  a run folder's layout and run.json (written by loop/, read by dream/ too)
    runtime.py     device, torch threads and RNG state (loop/, dream/ and bench.py)
    bench.py       training-step time (`dreamstream bench train`)

Imports point down: loop/ and dream/ use model/ and the two shared modules; loop/ uses dream/'s video
for the training GIFs, dream/ imports nothing from loop/. Collectors load policies through
dreamstream.collect.snapshot, which builds the acting model from model/ code named by a fixed registry;
they never import the trainer.
"""
