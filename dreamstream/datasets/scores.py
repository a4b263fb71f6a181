"""Reference scores: the returns of a random and of an expert policy on a dataset's task, so that a return
reads as a normalised score (0 = random, 1 = expert), as D4RL and Minari (`ref_min_score`,
`ref_max_score`) report them. A corpus recipe sets them (`reference_scores:`); the card carries them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dreamstream.datasets.schema import Obj, SchemaError

if TYPE_CHECKING:
    from dreamstream.datasets.card import DatasetCard


@dataclass(frozen=True)
class ReferenceScores:
    """Episode returns of reference policies on the dataset's task."""

    random: float
    """Mean return of a uniformly random policy (normalised score 0)."""
    expert: float
    """Mean return of an expert policy (normalised score 1)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.random) and math.isfinite(self.expert)):
            raise ValueError(f"reference scores must be finite numbers, got random={self.random}, "
                             f"expert={self.expert}")
        if self.random == self.expert:
            raise ValueError(f"reference scores random and expert are both {self.random}: no scale to normalise by")

    def to_json(self) -> dict[str, float]:
        return {"random": self.random, "expert": self.expert}

    @classmethod
    def from_json(cls, data: Any, key: str = "reference_scores") -> ReferenceScores:
        """Scores from JSON, every value checked; raises SchemaError naming the key."""
        obj = Obj(data, key)
        unknown = sorted(set(obj.value) - {"random", "expert"})
        if unknown:
            raise SchemaError(obj.path(unknown[0]), "unknown key (reference scores hold random and expert)")
        try:
            return cls(random=obj.number("random"), expert=obj.number("expert"))
        except ValueError as exc:
            if isinstance(exc, SchemaError):
                raise
            raise SchemaError(key, str(exc)) from None


def normalised_score(card_or_scores: DatasetCard | ReferenceScores | None, episode_return: float) -> float | None:
    """(return - random) / (expert - random): 0 for the random policy's return, 1 for the expert's; None
    when there are no reference scores (a card without them, or None)."""
    scores = getattr(card_or_scores, "reference_scores", card_or_scores)
    if scores is None:
        return None
    if not isinstance(scores, ReferenceScores):
        raise TypeError(f"expected a DatasetCard or ReferenceScores, got {type(scores).__name__}")
    return (float(episode_return) - scores.random) / (scores.expert - scores.random)
