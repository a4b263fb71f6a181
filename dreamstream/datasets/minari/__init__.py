"""Minari (the Farama offline-RL format) both ways, through the `minari` package (docs/minari.md).

`spaces` maps a dreamstream spec to gymnasium spaces and back, `rows` maps an episode's rows between the
Dreamer convention and Minari's N+1 observations / N transitions, `export` and `load` move whole datasets.
"""
