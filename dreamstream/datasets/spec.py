"""Field and action specs: the shapes, dtypes and kinds that every part of dreamstream agrees on.

A spec is derived from the environment's gymnasium spaces (never hand-set) and recorded in the dataset
card, so that readers, the loader and the model can all size themselves from the data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from dreamstream.datasets.schema import Obj, SchemaError, describe, exact_int, items, string
from dreamstream.errors import UserError

FIELD_KINDS = ("image", "categorical", "vector", "scalar", "flag")
DTYPES = ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
          "float16", "float32", "float64")
"""The only dtypes a field may have: plain numbers, never objects, strings or structured records."""
MAX_NDIM, MAX_DIM = 8, 2**16
MAX_ROW_ELEMENTS = 2**24
"""Most elements in one row of one field: readers size buffers from the spec, so it is bounded."""
MAX_CLASSES = 2**31
MAX_FIELDS = 64
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

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
        if self.dtype not in DTYPES:
            raise SpecError(f"dtype {self.dtype!r} is not one of {DTYPES}")
        if len(self.shape) > MAX_NDIM or not all(1 <= d <= MAX_DIM for d in self.shape):
            raise SpecError(f"shape {self.shape} needs at most {MAX_NDIM} axes of 1..{MAX_DIM}")
        if math.prod(self.shape) > MAX_ROW_ELEMENTS:
            raise SpecError(f"shape {self.shape} has more than {MAX_ROW_ELEMENTS} elements per row")
        if self.kind == "categorical":
            if not self.classes or not self.shape or len(self.classes) != self.shape[-1]:
                raise SpecError(f"categorical field needs one class count per channel of shape {self.shape}")
            if not np.issubdtype(np.dtype(self.dtype), np.integer):
                raise SpecError(f"categorical field has dtype {self.dtype}; it needs an integer dtype")
        elif self.classes is not None:
            raise SpecError(f"only categorical fields have classes ({self.kind} field)")
        if self.kind == "image" and (self.dtype != "uint8" or len(self.shape) != 3):
            raise SpecError(f"image field is {self.dtype}{list(self.shape)}; images are uint8 [H, W, C]")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype, "kind": self.kind}
        if self.classes is not None:
            out["classes"] = list(self.classes)
        return out

    @classmethod
    def from_json(cls, data: Any, key: str = "") -> FieldSpec:
        """A field from JSON, every value checked; raises SchemaError naming the key."""
        obj = Obj(data, key)
        classes = obj.get("classes", None)
        if classes is not None:
            classes = tuple(exact_int(v, k, 1, MAX_CLASSES) for k, v in items(classes, obj.path("classes"), 1, MAX_DIM))
        return _built(key, cls, shape=_shape(obj, "shape"), dtype=obj.string("dtype", 16),
                      kind=obj.string("kind", 16), classes=classes)

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
    def from_json(cls, data: Any, key: str = "") -> ActionSpec:
        """An action space from JSON, every value checked; raises SchemaError naming the key."""
        obj = Obj(data, key)
        kind = obj.string("kind", 16)
        if kind == "discrete":
            return cls(kind="discrete", n=obj.integer("n", 1, MAX_CLASSES))
        if kind != "continuous":
            raise SchemaError(obj.path("kind"), f"{describe(kind)} is not 'discrete' or 'continuous'")
        shape = _shape(obj, "shape")
        size = math.prod(shape)
        if size > MAX_ROW_ELEMENTS:
            raise SchemaError(obj.path("shape"), f"{list(shape)} has more than {MAX_ROW_ELEMENTS} elements")
        low, high = (tuple(_bound(v, k) for k, v in obj.items(name, size, size)) for name in ("low", "high"))
        return cls(kind="continuous", shape=shape, low=low, high=high)


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
    def from_json(cls, data: Any, key: str = "") -> EpisodeSpec:
        """A spec from JSON, every value checked; raises SchemaError naming the key (a ValueError)."""
        obj = Obj(data, key)
        fields = obj.obj("observations")
        if not 1 <= len(fields.value) <= MAX_FIELDS:
            raise SchemaError(fields.key, f"{len(fields.value)} observation fields, expected 1..{MAX_FIELDS}")
        observations = {}
        for name, value in fields.value.items():
            string(name, fields.key, 64, FIELD_NAME)
            observations[name] = FieldSpec.from_json(value, fields.path(name))
        return _built(key, cls, observations=observations, action=ActionSpec.from_json(obj.get("action"),
                                                                                        obj.path("action")))

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


def _shape(obj: Obj, name: str) -> tuple[int, ...]:
    return tuple(exact_int(v, k, 1, MAX_DIM) for k, v in obj.items(name, 0, MAX_NDIM))


def _bound(value: Any, key: str) -> float:
    """An action bound: a number, infinite allowed (unbounded Box axes), NaN refused."""
    if type(value) not in (int, float) or math.isnan(value):
        raise SchemaError(key, f"expected a number, got {describe(value)}")
    return float(value)


def _built(key: str, cls: Any, **kwargs: Any) -> Any:
    """`cls(**kwargs)`, its own SpecError checks reported as a SchemaError at `key`."""
    try:
        return cls(**kwargs)
    except SpecError as exc:
        raise SchemaError(key, str(exc)) from None


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


def spec_difference(want: EpisodeSpec, got: EpisodeSpec) -> str:
    """How `got` differs from `want`, in one line naming each field (and the action); "" when they are equal.

    The one description of a spec mismatch: a model against a dataset, a snapshot against an env, corpus
    sources against each other.
    """
    diffs = []
    for name in sorted(set(want.observations) | set(got.observations)):
        a, b = want.observations.get(name), got.observations.get(name)
        if a is None:
            diffs.append(f"extra field {name!r} ({_describe(b)})")
        elif b is None:
            diffs.append(f"no field {name!r} ({_describe(a)})")
        elif a != b:
            diffs.append(f"field {name!r} is {_describe(b)}, not {_describe(a)}")
    if want.action != got.action:
        diffs.append(f"action {got.action.to_json()}, not {want.action.to_json()}")
    return "; ".join(diffs)


def _describe(field: FieldSpec) -> str:
    classes = f" classes {list(field.classes)}" if field.classes else ""
    return f"{field.kind} {field.dtype} {list(field.shape)}{classes}"
