"""A dreamstream spec as the gymnasium spaces a Minari dataset declares, and those spaces as a spec.

The mapping is chosen so that export then import gives back the same spec (docs/minari.md, "Fidelity"):
image -> Box(0, 255, uint8), or with images="exact" a MultiDiscrete of 256 values; categorical ->
MultiDiscrete of its class counts in its dtype, or Discrete for a one-channel int64 field (how gymnasium
itself declares a discrete state); vector/scalar -> an unbounded Box of its dtype. Back, each space goes
through the one space -> field rule (`spec.field_from_space`); a dataset dreamstream exported also carries
its spec, which import uses where the spaces agree with it.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from dreamstream.datasets.spec import ActionSpec, EpisodeSpec, FieldSpec, SpecError, field_from_space


def is_discrete_state(field: FieldSpec) -> bool:
    """A field stored as one int64 class index per row: a Discrete space in Minari (one value per step)."""
    return field.kind == "categorical" and field.shape == (1,) and field.dtype == "int64"


IMAGES = ("jpeg", "exact")
"""How export declares image fields: `jpeg`, a uint8 Box 0..255 (Minari's image space, which Minari stores as
JPEG: lossy); `exact`, a MultiDiscrete of 256 values per element (stored raw as uint16, since its nvec of 256
does not fit uint8: larger, lossless)."""


def field_space(name: str, field: FieldSpec, images: str = "jpeg") -> spaces.Space:
    dtype = np.dtype(field.dtype)
    if field.kind == "image":
        if images == "exact":
            return spaces.MultiDiscrete(np.full(field.shape, 256), dtype=np.uint16)  # uint8 cannot hold 256
        return spaces.Box(0, 255, field.shape, np.uint8)
    if field.kind == "categorical":
        assert field.classes is not None
        if is_discrete_state(field):
            return spaces.Discrete(field.classes[0])
        return spaces.MultiDiscrete(np.broadcast_to(np.asarray(field.classes), field.shape).copy(), dtype=dtype)
    if field.kind in ("vector", "scalar") and dtype != np.bool_:
        info = np.finfo(dtype) if np.issubdtype(dtype, np.floating) else np.iinfo(dtype)
        low, high = (-np.inf, np.inf) if np.issubdtype(dtype, np.floating) else (info.min, info.max)
        return spaces.Box(low, high, field.shape, dtype)
    raise SpecError(f"field {name!r}: a {field.kind} {field.dtype} field has no Minari space that maps back to it")


def observation_space(spec: EpisodeSpec, images: str = "jpeg") -> spaces.Dict:
    """Every observation field, by name: a Dict even for one field, so that names survive the round trip."""
    if images not in IMAGES:
        raise SpecError(f"images {images!r} is not one of {IMAGES}")
    return spaces.Dict({name: field_space(name, field, images) for name, field in spec.observations.items()})


def action_space(action: ActionSpec) -> spaces.Space:
    if action.kind == "discrete":
        assert action.n is not None
        return spaces.Discrete(action.n)
    return spaces.Box(np.asarray(action.low, np.float32).reshape(action.shape),
                      np.asarray(action.high, np.float32).reshape(action.shape), action.shape, np.float32)


def spec_from_minari(observation: spaces.Space, action: spaces.Space, drop: frozenset[str] = frozenset()
                     ) -> EpisodeSpec:
    """The spec of a Minari dataset's spaces; SpecError naming the field and the space that cannot map.

    A Dict observation gives one field per key (but those in `drop`); any other space one field named as the
    gymnasium adapter names it (`image`, `state` for Discrete, else `vector`), so that evaluation in that
    env sees the same fields. Only flat spaces map (Box, Discrete, MultiDiscrete, inside at most one Dict):
    Text, Graph, Sequence, Tuple, nested Dict and MultiBinary have no field kind.
    """
    if isinstance(observation, spaces.Dict):
        unknown = sorted(drop - set(observation.spaces))
        if unknown:
            raise SpecError(f"cannot drop {unknown}: the observation space has {sorted(observation.spaces)}")
        items = {name: space for name, space in observation.spaces.items() if name not in drop}
        if not items:
            raise SpecError("no observation field is left once the dropped ones are dropped")
    else:
        if drop:
            raise SpecError(f"cannot drop {sorted(drop)}: the observation space {observation} is not a Dict")
        kind = field_from_space("observations", observation).kind
        items = {"image" if kind == "image" else "state" if isinstance(observation, spaces.Discrete)
                 else "vector": observation}
    for name, space in items.items():
        if isinstance(space, spaces.Discrete | spaces.MultiDiscrete) and np.any(np.asarray(space.start) != 0):
            raise SpecError(f"field {name!r}: {space} starts at {space.start}; class indices must start at 0")
        if not name.isidentifier():
            raise SpecError(f"field {name!r}: the name is not a Python identifier ({space})")
    observations = {name: field_from_space(name, space) for name, space in items.items()}
    if isinstance(action, spaces.Discrete) and int(action.start) != 0:
        raise SpecError(f"field 'action': {action} starts at {action.start}; actions must start at 0")
    try:
        action_spec = ActionSpec.from_space(action)
    except SpecError as exc:
        raise SpecError(f"field 'action': {exc}") from None
    return EpisodeSpec(observations=observations, action=action_spec)
