"""Versioned files under a URL: how a run publishes policy snapshots and checkpoints, and how anyone reads them.

    <run>/snapshots/policy-<step>.pt + latest.json          what collectors poll and act with
    <run>/checkpoints/checkpoint-<step>.pt + latest.json    what resumes a run; what `dreamstream dream` loads

    dreamstream.versioned.pointer   `latest.json`, read as untrusted input
    dreamstream.versioned.files     VersionedFiles (save, prune, load by version) and load_torch (weights_only)
    dreamstream.versioned.formats   the snapshot and checkpoint payloads: their keys and their checks
    dreamstream.versioned.locate    a `.pt` file, a pointer's folder or a run folder -> the file it means

The trainer writes (dreamstream.train.loop), collectors read snapshots (dreamstream.collect.snapshot), the
dream API reads both (dreamstream.train.dream). This package imports only dreamstream.datasets and errors.
"""
