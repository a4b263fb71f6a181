"""`DREAMSTREAM_SMOKE=1`: any command as a seconds-long run of the same code path.

For trying a documented command before spending hours on it, and for the test suite, which runs every
command in README.md, docs/ and configs/ exactly as typed this way (tests/docs/). Each number in
configs/smoke.yaml caps the setting of the same name (budgets, model sizes, intervals); an unset budget
(None) takes the cap; other values replace the setting. Benchmarks cap their sizes the same way
(`SMOKE_CAPS` in dreamstream/bench.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import yaml

from dreamstream.config import CONFIG_DIR

ENV_VAR = "DREAMSTREAM_SMOKE"
log = logging.getLogger(__name__)


def enabled() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() not in ("", "0", "false", "no")


def settings_caps() -> dict[str, Any]:
    """The caps for settings, from configs/smoke.yaml."""
    return yaml.safe_load((CONFIG_DIR / "smoke.yaml").read_text())


def cap(target: Any, caps: Mapping[str, Any]) -> None:
    """Lower the attributes of `target` (a dataclass or an argparse namespace) to `caps`, recursively."""
    for key, limit in caps.items():
        value = getattr(target, key)
        if isinstance(limit, Mapping):
            cap(value, limit)
        elif _is_number(limit) and _is_number(value):
            setattr(target, key, type(value)(min(value, limit)))
        else:  # an unset budget (None) or a non-number takes the smoke value
            setattr(target, key, limit)


def announce() -> None:
    log.warning("%s is set: a smoke run (budgets and sizes capped by configs/smoke.yaml)", ENV_VAR)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
