"""The episode side of a dream: which episode (the dataset's episode index), its rows, and how far
predictions are from them."""

from __future__ import annotations

import numpy as np

from dreamstream.datasets.episodes import EpisodeIndex
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.errors import UserError


def episode_ids(dataset: Dataset, complete: bool = False) -> list[str]:
    """Episode ids in commit order (only the complete ones, datasets.episodes, with `complete`)."""
    index = EpisodeIndex(dataset.records())
    return [e.id for e in index.complete] if complete else index.ids


def load_episode(dataset: Dataset, episode: str | None = None) -> tuple[str, dict[str, np.ndarray]]:
    """(id, rows) of `episode`, or of the first complete episode; UserError listing a few ids if it is absent."""
    index = EpisodeIndex(dataset.records())
    if not len(index):
        raise UserError(f"dataset {dataset.url} has no committed episodes")
    if episode is None:
        episode = (index.complete or list(index))[0].id
    elif episode not in index:
        few = ", ".join(index.ids[:5])
        raise UserError(f"episode {episode!r} is not in dataset {dataset.url}; it has {len(index)} episodes, "
                        f"e.g. {few}")
    return episode, dataset.episode(episode)


def prediction_errors(spec: EpisodeSpec, episode: dict[str, np.ndarray], decoded: dict[str, np.ndarray],
                      steps: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step errors [len(steps)] of decoded predictions against the episode's rows `steps`.

    Images: mean squared error of pixels in [0, 1]. Categorical fields: share of cell channels predicted wrong.
    Vectors: mean squared error. `reward`: absolute error. `terminal`: |P(end) - is_terminal|.
    """
    out: dict[str, np.ndarray] = {}
    for name, field in spec.observations.items():
        if name not in decoded or name not in episode:
            continue
        truth, pred = episode[name][steps], decoded[name]
        if field.kind == "image":
            diff = truth.astype(np.float32) / 255.0 - pred.astype(np.float32) / 255.0
            out[name] = np.square(diff).reshape(len(steps), -1).mean(1)
        elif field.kind == "categorical":
            out[name] = (truth != pred).reshape(len(steps), -1).mean(1).astype(np.float32)
        else:
            diff = truth.astype(np.float32) - pred.astype(np.float32)
            out[name] = np.square(diff).reshape(len(steps), -1).mean(1)
    if "reward" in decoded:
        out["reward"] = np.abs(episode["reward"][steps] - decoded["reward"]).astype(np.float32)
    if "cont" in decoded:
        out["terminal"] = np.abs(episode["is_terminal"][steps].astype(np.float32) - (1.0 - decoded["cont"]))
    return out
