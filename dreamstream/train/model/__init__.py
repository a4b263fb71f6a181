"""The DreamerV2 agent as torch modules and pure functions: no I/O, no processes, no settings files."""
