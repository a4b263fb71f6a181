"""DreamerV2 agent maths (PyDreamer's feature set) and, later, the trainer process that drives it.

The modules a trainer loop uses: config (ModelConfig, OptimConfig), agent (Agent), learner (Learner,
seed_everything, metrics_to_floats), snapshot (export_policy, build_actor). Collectors import only
dreamstream.train.snapshot.build_actor.
"""
