"""DreamerV2 agent maths (PyDreamer's feature set) and the trainer process that drives it.

What a trainer loop uses: config (ModelConfig, OptimConfig), agent (Agent), learner (Learner,
seed_everything), metrics (METRICS glossary, metrics_to_floats), snapshot (export_policy), bench (step
timing), video (log_dream_gif). Collectors import only dreamstream.train.snapshot:build_actor (named in
every snapshot payload). Inspection (docs/inspection.md): dream (load_model, DreamModel: encode, imagine,
decode, intervene), dream_report and dream_command (`dreamstream dream`).
"""
