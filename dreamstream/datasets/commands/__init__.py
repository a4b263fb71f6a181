"""CLI commands of the datasets part: `validate` and `inspect` (see dreamstream.cli)."""
