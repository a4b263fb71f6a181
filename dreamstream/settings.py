"""The root configuration: one typed section per part of dreamstream, each declared beside its code.

Presets in configs/ and `--set section.key=value` overrides fill it (see dreamstream.config).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamstream.datasets.writer import WriterConfig


@dataclass
class Settings:
    """Everything a dreamstream command can be configured with."""

    data: WriterConfig = field(default_factory=WriterConfig)
