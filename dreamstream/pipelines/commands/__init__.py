"""CLI commands of the pipelines part: `stats` and `corpus` (see dreamstream.cli)."""
