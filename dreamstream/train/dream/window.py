"""Which rows of an episode a dream observes and which it imagines: the defaults and their checks.

Shared by the command line (its defaults and help) and `write_report`; imports nothing heavy, so that
`dreamstream dream --help` does not load torch.
"""

from __future__ import annotations

import logging

from dreamstream.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_START = 10
DEFAULT_HORIZON = 15


def dream_window(episode_id: str, length: int, start: int | None, horizon: int, policy: bool) -> tuple[int, int]:
    """-> (last observed row, rows to imagine), checked against an episode of `length` rows.

    Under recorded actions the dream cannot pass the episode's last row (the horizon is clipped to it);
    under the policy it can, so the start may be the last row itself.
    """
    if length < 2:
        raise UserError(f"episode {episode_id} has {length} row: nothing to predict")
    last_start = length - 1 if policy else length - 2
    start = min(DEFAULT_START, last_start) if start is None else start
    if not 0 <= start <= last_start:
        raise UserError(f"--start {start} is outside episode {episode_id}: it has {length} rows, so the last "
                        f"observed row can be 0..{last_start}")
    if horizon < 1:
        raise UserError(f"--horizon must be at least 1, not {horizon}")
    if not policy and horizon > length - 1 - start:
        log.info("horizon %d clipped to %d: episode %s ends at row %d", horizon, length - 1 - start, episode_id,
                 length - 1)
        horizon = length - 1 - start
    return start, horizon
