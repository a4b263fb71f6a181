"""Field and action specs: the shapes, dtypes and kinds that every part of dreamstream agrees on.

A spec is derived from the environment's gymnasium spaces (never hand-set) and recorded in the dataset
card, so that readers, the loader and the model can all size themselves from the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from dreamstream.errors import UserError

FIELD_KINDS = ("image", "categorical", "vector", "scalar", "flag")

# Fields that every episode row carries besides the observation fields (Dreamer/RLDS convention).
REWARD, ACTION = "reward", "action"
FLAGS = ("is_first", "is_last", "is_terminal")
RESERVED = (ACTION, REWARD, *FLAGS)


class SpecError(UserError, ValueError):
    """A space, field or array that does not fit the spec."""


@dataclass(frozen=True)
class FieldSpec:
    """One per-step field: `shape` excludes the time axis.

    `classes` is set for categorical fields only: the number of classes of each channel of the last axis
    (a MiniGrid cell is object, colour, state), so a model can one-hot it without guessing.
    """

    shape: tuple[int, ...]
    dtype: str
    kind: str
    classes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise SpecError(f"unknown field kind {self.kind!r}; expected one of {FIELD_KINDS}")
        np.dtype(self.dtype)  # raises TypeError on a bad dtype name
        if self.kind == "categorical":
            if not self.classes or not self.shape or len(self.classes) != self.shape[-1]:
                raise SpecError(f"categorical field needs one class count per channel of shape {self.shape}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype, "kind": self.kind}
        if self.classes is not None:
            out["classes"] = list(self.classes)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FieldSpec:
        classes = data.get("classes")
        return cls(
            shape=tuple(int(x) for x in data["shape"]),
            dtype=str(data["dtype"]),
            kind=str(data["kind"]),
            classes=tuple(int(x) for x in classes) if classes is not None else None,
        )

    def check(self, name: str, array: np.ndarray) -> None:
        """Raise SpecError unless `array` is a [T, *shape] array of this field's dtype."""
        if array.dtype != np.dtype(self.dtype):
            raise SpecError(f"field {name!r}: dtype {array.dtype} but the spec says {self.dtype}")
        if tuple(array.shape[1:]) != self.shape:
            raise SpecError(f"field {name!r}: step shape {tuple(array.shape[1:])} but the spec says {self.shape}")


@dataclass(frozen=True)
class ActionSpec:
    """The action space: `n` actions for discrete, `shape`/`low`/`high` for continuous (Box) spaces."""

    kind: str  # "discrete" | "continuous"
    n: int | None = None
    shape: tuple[int, ...] = ()
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    @classmethod
    def from_space(cls, space: spaces.Space) -> ActionSpec:
        if isinstance(space, spaces.Discrete):
            return cls(kind="discrete", n=int(space.n))
        if isinstance(space, spaces.Box):
            return cls(
                kind="continuous",
                shape=tuple(space.shape),
                low=tuple(float(x) for x in np.ravel(space.low)),
                high=tuple(float(x) for x in np.ravel(space.high)),
            )
        raise SpecError(f"unsupported action space {space}; dreamstream handles Discrete and Box")

    @property
    def field(self) -> FieldSpec:
        """How actions are stored: integer indices for discrete spaces, float32 vectors otherwise."""
        if self.kind == "discrete":
            return FieldSpec(shape=(), dtype="int64", kind="scalar")
        return FieldSpec(shape=self.shape, dtype="float32", kind="vector")

    @property
    def size(self) -> int:
        """Width of the action as the model sees it (one-hot size or vector size)."""
        return int(self.n) if self.kind == "discrete" else int(np.prod(self.shape))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "discrete":
            out["n"] = self.n
        else:
            out.update(shape=list(self.shape), low=list(self.low or ()), high=list(self.high or ()))
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActionSpec:
        if data["kind"] == "discrete":
            return cls(kind="discrete", n=int(data["n"]))
        return cls(
            kind="continuous",
            shape=tuple(int(x) for x in data["shape"]),
            low=tuple(float(x) for x in data["low"]),
            high=tuple(float(x) for x in data["high"]),
        )


@dataclass(frozen=True)
class EpisodeSpec:
    """Every field of an episode row: observation fields, then action, reward and the three flags."""

    observations: dict[str, FieldSpec]
    action: ActionSpec
    fields: dict[str, FieldSpec] = field(init=False)

    def __post_init__(self) -> None:
        clash = sorted(set(self.observations) & set(RESERVED))
        if clash:
            raise SpecError(f"observation fields {clash} clash with reserved row fields {RESERVED}")
        for name in self.observations:
            if not name.isidentifier():
                raise SpecError(f"field name {name!r} must be a Python identifier (no dots or dashes)")
        all_fields = dict(self.observations)
        all_fields[ACTION] = self.action.field
        all_fields[REWARD] = FieldSpec(shape=(), dtype="float32", kind="scalar")
        for flag in FLAGS:
            all_fields[flag] = FieldSpec(shape=(), dtype="bool", kind="flag")
        object.__setattr__(self, "fields", all_fields)

    def to_json(self) -> dict[str, Any]:
        return {
            "observations": {k: v.to_json() for k, v in self.observations.items()},
            "action": self.action.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EpisodeSpec:
        return cls(
            observations={k: FieldSpec.from_json(v) for k, v in data["observations"].items()},
            action=ActionSpec.from_json(data["action"]),
        )

    def check_chunk(self, arrays: dict[str, np.ndarray]) -> int:
        """Check a chunk's arrays against the spec; return its step count. Raises SpecError naming the field."""
        missing = sorted(set(self.fields) - set(arrays))
        if missing:
            raise SpecError(f"missing fields {missing}")
        extra = sorted(set(arrays) - set(self.fields))
        if extra:
            raise SpecError(f"fields {extra} are not in the spec")
        steps = {name: len(a) for name, a in arrays.items()}
        if len(set(steps.values())) != 1:
            raise SpecError(f"fields disagree on the number of steps: {steps}")
        for name, spec in self.fields.items():
            spec.check(name, arrays[name])
        return next(iter(steps.values()))


def field_from_space(name: str, space: spaces.Space) -> FieldSpec:
    """Derive a FieldSpec from one observation space.

    uint8 Box with a trailing 1 or 3 channel axis -> image; other Box -> vector (scalar if shape ());
    MultiDiscrete -> categorical with its class counts; Discrete -> categorical with one channel.
    """
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        if space.dtype == np.uint8 and len(shape) == 3 and shape[-1] in (1, 3):
            return FieldSpec(shape=shape, dtype="uint8", kind="image")
        dtype = "float32" if np.issubdtype(space.dtype, np.floating) else str(space.dtype)
        return FieldSpec(shape=shape, dtype=dtype, kind="scalar" if shape == () else "vector")
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec)
        classes = tuple(int(x) for x in nvec.reshape(-1, nvec.shape[-1])[0])
        if not (nvec == np.asarray(classes)).all():
            raise SpecError(f"field {name!r}: MultiDiscrete class counts must be equal along all but the last axis")
        dtype = "uint8" if max(classes) <= 256 else "int64"
        return FieldSpec(shape=tuple(nvec.shape), dtype=dtype, kind="categorical", classes=classes)
    if isinstance(space, spaces.Discrete):
        return FieldSpec(shape=(1,), dtype="int64", kind="categorical", classes=(int(space.n),))
    raise SpecError(f"field {name!r}: unsupported observation space {space}")


def spec_from_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> EpisodeSpec:
    """Build the episode spec from an env's spaces. A non-Dict observation becomes the field `obs`."""
    if isinstance(observation_space, spaces.Dict):
        items = dict(observation_space.spaces)
    else:
        items = {"obs": observation_space}
    observations = {name: field_from_space(name, space) for name, space in items.items()}
    return EpisodeSpec(observations=observations, action=ActionSpec.from_space(action_space))
