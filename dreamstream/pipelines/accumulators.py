"""Mergeable statistics: each task fills accumulators from its shard, the client merges them in any order.

Every accumulator has `update(array)` (rows of one chunk, time axis first), `merge(other)` (associative
and commutative, so results can be folded as tasks finish) and `to_json()`. Sums of integers are kept
exactly; float moments use Chan's parallel update, so a merge of many shards loses no precision.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dreamstream.datasets import EpisodeSpec, FieldSpec

# Quantiles reported for every distribution, as percentiles.
QUANTILES = (5, 25, 50, 75, 95)
# Exact value counts are kept for up to this many distinct rewards (Atari's -1/0/1, MiniGrid's few values).
MAX_DISTINCT = 256
# Bins of the fixed histogram that holds rewards past MAX_DISTINCT, and the narrowest bin width (2**-60).
FINE_BINS = 1024
MIN_FINE_EXPONENT = -60
# Row blocks for image sums: a uint16 sum of uint8 values is exact up to 257 rows (257 * 255 = 65535), and
# numpy adds uint8 into uint16 twice as fast as into uint32.
IMAGE_BLOCK = 256
# Rows squared at a time: one such block's squares (uint16) stay in a core's cache, reused block after block
# (a fresh array for each block costs more in page faults than the squaring).
SQUARE_ROWS = 32
# Rows per chunk whose pixels go into the value histogram (a sample: the moments use every pixel).
HISTOGRAM_ROWS = 16
# Stages of a stats task whose seconds each ShardStats carries (summed by merge).
STAGES = ("read", "decode", "accumulate")
# Vectors with more elements than this are summarised per channel (last axis) rather than per element.
MAX_ELEMENTS = 1024


def describe(values: np.ndarray) -> dict[str, float] | None:
    """count, mean, std, min, max and the QUANTILES (p5 ... p95) of a 1-D array; None if it is empty."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    out = {"count": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
           "min": float(values.min()), "max": float(values.max())}
    for q, v in zip(QUANTILES, np.percentile(values, QUANTILES), strict=True):
        out[f"p{q}"] = float(v)
    return out


def histogram(values: np.ndarray, bins: int = 30) -> dict[str, list] | None:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return {"edges": edges.tolist(), "counts": counts.tolist()}


class Moments:
    """count, mean, M2 (sum of squared deviations), min and max per element of a fixed `shape`."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.n = 0
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)
        self.min = np.full(shape, np.inf)
        self.max = np.full(shape, -np.inf)

    def update(self, x: np.ndarray) -> None:
        if len(x) == 0:
            return
        x = np.asarray(x, dtype=np.float64)
        other = Moments(self.mean.shape)
        other.n = len(x)
        other.mean = x.mean(axis=0)
        other.m2 = ((x - other.mean) ** 2).sum(axis=0)
        other.min, other.max = x.min(axis=0), x.max(axis=0)
        self.merge(other)

    def merge(self, other: Moments) -> None:
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean.copy(), other.m2.copy()
            self.min, self.max = other.min.copy(), other.max.copy()
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.n / n)
        self.m2 = self.m2 + other.m2 + delta**2 * (self.n * other.n / n)
        self.n = n
        self.min = np.minimum(self.min, other.min)
        self.max = np.maximum(self.max, other.max)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n, 1))

    def to_json(self) -> dict[str, Any]:
        if self.n == 0:
            return {"count": 0}
        return {"count": self.n, "mean": self.mean.tolist(), "std": self.std.tolist(), "min": self.min.tolist(),
                "max": self.max.tolist()}


class ImageStats:
    """uint8 frames [T, H, W, C]: exact per-pixel sums and sums of squares (so per-channel mean/std and a
    mean frame), per-pixel min/max, and a per-channel histogram of pixel values from sampled rows."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape
        self.n = 0
        self.sum = np.zeros(shape, np.float64)
        self.sumsq = np.zeros(shape, np.float64)
        self.min = np.full(shape, 255, np.uint8)
        self.max = np.zeros(shape, np.uint8)
        self.values = np.zeros((shape[-1], 256), np.int64)

    def update(self, x: np.ndarray) -> None:
        flat = x.reshape(len(x), -1)  # numpy reduces a 2-D [rows, pixels] array several times faster
        squares = np.empty((min(len(x), SQUARE_ROWS), flat.shape[1]), np.uint16)
        total = np.zeros(flat.shape[1], np.uint64)
        total_sq = np.zeros(flat.shape[1], np.uint64)
        low, high = self.min.reshape(-1), self.max.reshape(-1)
        for start in range(0, len(x), IMAGE_BLOCK):
            block = flat[start:start + IMAGE_BLOCK]
            total += np.add.reduce(block, axis=0, dtype=np.uint16)
            np.minimum(low, np.minimum.reduce(block, axis=0), out=low)
            np.maximum(high, np.maximum.reduce(block, axis=0), out=high)
        for start in range(0, len(x), SQUARE_ROWS):
            block = flat[start:start + SQUARE_ROWS]
            np.square(block, dtype=np.uint16, out=squares[:len(block)])  # 255**2 fits in uint16
            total_sq += np.add.reduce(squares[:len(block)], axis=0, dtype=np.uint32)
        self.sum += total.reshape(self.shape)
        self.sumsq += total_sq.reshape(self.shape)
        self.n += len(x)
        step = max(1, len(x) // HISTOGRAM_ROWS)
        sample = x[::step].reshape(-1, self.shape[-1])
        for c in range(self.shape[-1]):
            self.values[c] += np.bincount(sample[:, c], minlength=256)

    def merge(self, other: ImageStats) -> None:
        self.n += other.n
        self.sum += other.sum
        self.sumsq += other.sumsq
        np.minimum(self.min, other.min, out=self.min)
        np.maximum(self.max, other.max, out=self.max)
        self.values += other.values

    def mean_frame(self) -> np.ndarray:
        return (self.sum / max(self.n, 1)).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        channels = self.shape[-1]
        count = self.n * int(np.prod(self.shape[:-1]))
        if count == 0:
            return {"kind": "image", "count": 0}
        s = self.sum.reshape(-1, channels).sum(0)
        sq = self.sumsq.reshape(-1, channels).sum(0)
        mean = s / count
        std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
        return {"kind": "image", "rows": self.n, "channels": channels, "mean": mean.tolist(), "std": std.tolist(),
                "min": self.min.reshape(-1, channels).min(0).tolist(),
                "max": self.max.reshape(-1, channels).max(0).tolist(),
                "value_histogram": self.values.tolist()}


class CategoricalStats:
    """Class frequencies per channel (last axis) of a categorical field, and counts of out-of-range values."""

    def __init__(self, classes: tuple[int, ...]):
        self.classes = classes
        self.counts = [np.zeros(n, np.int64) for n in classes]
        self.out_of_range = np.zeros(len(classes), np.int64)
        self.n = 0

    def update(self, x: np.ndarray) -> None:
        flat = x.reshape(-1, len(self.classes))
        for c, n in enumerate(self.classes):
            values = flat[:, c]
            negative = values < 0 if values.dtype.kind == "i" else None
            if negative is not None and negative.any():
                self.out_of_range[c] += int(negative.sum())
                values = values[~negative]
            counts = np.bincount(values, minlength=n)
            self.counts[c] += counts[:n]
            self.out_of_range[c] += int(counts[n:].sum())
        self.n += len(x)

    def merge(self, other: CategoricalStats) -> None:
        for c in range(len(self.classes)):
            self.counts[c] += other.counts[c]
        self.out_of_range += other.out_of_range
        self.n += other.n

    def to_json(self) -> dict[str, Any]:
        freqs = [(c / max(c.sum(), 1)).tolist() for c in self.counts]
        return {"kind": "categorical", "rows": self.n, "classes": list(self.classes),
                "counts": [c.tolist() for c in self.counts], "frequencies": freqs,
                "out_of_range": self.out_of_range.tolist()}


class VectorStats:
    """Per-element (or, for wide fields, per-channel) moments of a vector, scalar or flag field."""

    def __init__(self, field: FieldSpec):
        self.field = field
        size = int(np.prod(field.shape)) if field.shape else 1
        self.per_channel = size > MAX_ELEMENTS
        self.width = field.shape[-1] if self.per_channel else size
        self.moments = Moments((self.width,))

    def update(self, x: np.ndarray) -> None:
        self.moments.update(x.reshape(-1, self.width) if self.per_channel else x.reshape(len(x), self.width))

    def merge(self, other: VectorStats) -> None:
        self.moments.merge(other.moments)

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.field.kind, "shape": list(self.field.shape),
               "per": "channel" if self.per_channel else "element", **self.moments.to_json()}
        if self.field.kind == "flag" and self.moments.n:
            out["fraction_true"] = out["mean"]
        return out


def field_stats(field: FieldSpec) -> ImageStats | CategoricalStats | VectorStats:
    if field.kind == "image" and field.dtype == "uint8":
        return ImageStats(field.shape)
    if field.kind == "categorical":
        assert field.classes is not None
        return CategoricalStats(field.classes)
    return VectorStats(field)


class ActionStats:
    """Actions of transitions (rows with is_first false: the first row of an episode holds no action).

    Discrete: counts per action index. Continuous: moments per dimension and a histogram per dimension
    over the action space's bounds (or [-1, 1] where a bound is infinite), with out-of-range counts.
    """

    BINS = 20

    def __init__(self, spec: EpisodeSpec):
        action = spec.action
        self.kind = action.kind
        if self.kind == "discrete":
            self.counts = np.zeros(int(action.n), np.int64)
            self.out_of_range = 0
        else:
            size = action.size
            low = np.asarray(action.low or [-1.0] * size, np.float64).reshape(size)
            high = np.asarray(action.high or [1.0] * size, np.float64).reshape(size)
            bad = ~np.isfinite(low) | ~np.isfinite(high) | (low >= high)
            low, high = np.where(bad, -1.0, low), np.where(bad, 1.0, high)
            self.edges = np.linspace(low, high, self.BINS + 1, axis=1)  # [D, BINS+1]
            self.hist = np.zeros((size, self.BINS + 2), np.int64)  # underflow, bins, overflow
            self.moments = Moments((size,))

    def update(self, action: np.ndarray) -> None:
        if self.kind == "discrete":
            valid = (action >= 0) & (action < len(self.counts))
            self.counts += np.bincount(action[valid], minlength=len(self.counts))
            self.out_of_range += int((~valid).sum())
            return
        flat = action.reshape(len(action), -1).astype(np.float64)
        self.moments.update(flat)
        for d in range(flat.shape[1]):
            index = np.searchsorted(self.edges[d], flat[:, d], side="right")  # 0: below, BINS+1: above
            index[flat[:, d] == self.edges[d, -1]] = self.BINS  # the top edge belongs to the last bin
            self.hist[d] += np.bincount(index, minlength=self.BINS + 2)

    def merge(self, other: ActionStats) -> None:
        if self.kind == "discrete":
            self.counts += other.counts
            self.out_of_range += other.out_of_range
        else:
            self.hist += other.hist
            self.moments.merge(other.moments)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "discrete":
            total = max(int(self.counts.sum()), 1)
            return {"kind": "discrete", "n": len(self.counts), "counts": self.counts.tolist(),
                    "frequencies": (self.counts / total).tolist(), "out_of_range": self.out_of_range}
        return {"kind": "continuous", "edges": self.edges.tolist(), "counts": self.hist[:, 1:-1].tolist(),
                "below": self.hist[:, 0].tolist(), "above": self.hist[:, -1].tolist(), **self.moments.to_json()}


class FineHistogram:
    """Counts of values in FINE_BINS bins of width 2**exponent, aligned on multiples of that width: one
    fixed-size array however many values, distinct values and merges it takes.

    The exponent is a function of the range of the values seen only (`fine_exponent`), so the counts do
    not depend on the order of updates and merges; a wider range merges neighbouring bins, exactly.
    """

    def __init__(self) -> None:
        self.exponent: int | None = None  # None: no value yet
        self.first = 0  # counts[i] holds the values in [(first + i) * w, (first + i + 1) * w), w = 2**exponent
        self.counts = np.zeros(FINE_BINS, np.int64)
        self.lo, self.hi = math.inf, -math.inf

    def _moved(self, exponent: int, first: int) -> np.ndarray:
        """These counts on the grid (exponent, first); the grid is at least as coarse and covers them."""
        counts = np.zeros(FINE_BINS, np.int64)
        if self.exponent is not None:
            filled = np.flatnonzero(self.counts)
            index = ((self.first + filled) >> (exponent - self.exponent)) - first
            np.add.at(counts, index, self.counts[filled])
        return counts

    def _widen(self, lo: float, hi: float) -> None:
        lo, hi = min(lo, self.lo), max(hi, self.hi)
        exponent = fine_exponent(lo, hi)
        first = math.floor(lo / 2.0**exponent)
        self.counts = self._moved(exponent, first)
        self.exponent, self.first, self.lo, self.hi = exponent, first, lo, hi

    def add(self, values: np.ndarray, weights: np.ndarray | None = None) -> None:
        if len(values) == 0:
            return
        self._widen(float(values.min()), float(values.max()))
        assert self.exponent is not None
        index = np.floor(values / 2.0**self.exponent).astype(np.int64) - self.first
        self.counts += np.bincount(index, weights, minlength=FINE_BINS).astype(np.int64)

    def merge(self, other: FineHistogram) -> None:
        if other.exponent is None:
            return
        self._widen(other.lo, other.hi)
        assert self.exponent is not None
        self.counts += other._moved(self.exponent, self.first)

    def rebin(self, edges: np.ndarray) -> np.ndarray:
        """Counts in the bins between `edges`: each fine bin goes to the bin holding its centre."""
        bins = len(edges) - 1
        if self.exponent is None:
            return np.zeros(bins, np.int64)
        centres = (self.first + np.arange(FINE_BINS) + 0.5) * 2.0**self.exponent
        index = np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, bins - 1)
        return np.bincount(index, weights=self.counts, minlength=bins).astype(np.int64)


def fine_exponent(lo: float, hi: float) -> int:
    """The smallest power of two whose aligned bins over [lo, hi] number at most FINE_BINS, and whose bin
    indices stay exact integers (|value| / width under 2**52). Grows with the range, never shrinks."""
    exponent = MIN_FINE_EXPONENT
    if hi > lo:
        exponent = max(exponent, math.frexp((hi - lo) / (FINE_BINS - 1))[1])
    magnitude = max(abs(lo), abs(hi))
    if magnitude > 0:
        exponent = max(exponent, math.frexp(magnitude)[1] - 52)
    while math.floor(hi / 2.0**exponent) - math.floor(lo / 2.0**exponent) >= FINE_BINS:
        exponent += 1
    return exponent


class RewardStats:
    """Rewards of transitions: moments, and exact counts per distinct value while there are at most
    MAX_DISTINCT of them; past that, one FineHistogram, re-binned over the rewards' range at the end.
    Either way its size is bounded, however many chunks and distinct values it sees."""

    def __init__(self) -> None:
        self.moments = Moments(())
        self.values: dict[float, int] | None = {}
        self.fine = FineHistogram()
        self.nonzero = 0

    def update(self, reward: np.ndarray) -> None:
        reward = reward.astype(np.float64)
        self.moments.update(reward)
        self.nonzero += int(np.count_nonzero(reward))
        if self.values is not None:
            values, counts = np.unique(reward, return_counts=True)
            if len(values) > MAX_DISTINCT:  # past exact counts already: never build a dict this large
                self._coarsen()
            else:
                for v, c in zip(values.tolist(), counts.tolist(), strict=True):
                    self.values[v] = self.values.get(v, 0) + c
                if len(self.values) > MAX_DISTINCT:
                    self._coarsen()
                return
        self.fine.add(reward)

    def _coarsen(self) -> None:
        """Move the exact counts into the fine histogram and keep counting there."""
        if self.values:
            self.fine.add(np.array(list(self.values)), np.array(list(self.values.values())))
        self.values = None

    def merge(self, other: RewardStats) -> None:
        self.moments.merge(other.moments)
        self.nonzero += other.nonzero
        self.fine.merge(other.fine)
        if self.values is not None and other.values is not None:
            for v, c in other.values.items():
                self.values[v] = self.values.get(v, 0) + c
            if len(self.values) > MAX_DISTINCT:
                self._coarsen()
            return
        if other.values:  # we are past exact counts: fold the other's counts in as fine bins
            self.fine.add(np.array(list(other.values)), np.array(list(other.values.values())))
        self._coarsen()

    def to_json(self, bins: int = 40) -> dict[str, Any]:
        out: dict[str, Any] = {"nonzero": self.nonzero, **self.moments.to_json()}
        if self.moments.n == 0:
            return out
        if self.values is not None:
            items = sorted(self.values.items())
            out["values"] = [v for v, _ in items]
            out["counts"] = [c for _, c in items]
            return out
        lo, hi = float(self.moments.min), float(self.moments.max)
        hi = hi if hi > lo else lo + 1e-9
        edges = np.linspace(lo, hi, bins + 1)
        out["edges"] = edges.tolist()
        out["counts"] = self.fine.rebin(edges).tolist()
        return out


class ShardStats:
    """Everything one task computes from the rows of its shard; merged across tasks by the client."""

    def __init__(self, spec: EpisodeSpec, deep: bool):
        self.rows = 0
        self.transitions = 0
        self.seconds = dict.fromkeys(STAGES, 0.0)  # filled by the task that reads the shard
        self.actions = ActionStats(spec)
        self.rewards = RewardStats()
        self.fields = {name: field_stats(field) for name, field in spec.observations.items()} if deep else {}

    def update(self, arrays: dict[str, np.ndarray]) -> None:
        moves = ~arrays["is_first"]
        self.rows += len(moves)
        self.transitions += int(moves.sum())
        self.actions.update(arrays["action"][moves])
        self.rewards.update(arrays["reward"][moves])
        for name, stats in self.fields.items():
            stats.update(arrays[name])

    def merge(self, other: ShardStats) -> None:
        for stage in STAGES:
            self.seconds[stage] += other.seconds[stage]
        self.rows += other.rows
        self.transitions += other.transitions
        self.actions.merge(other.actions)
        self.rewards.merge(other.rewards)
        for name, stats in self.fields.items():
            stats.merge(other.fields[name])
