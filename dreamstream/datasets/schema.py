"""Checked reading of the small JSON files of a dataset (commit records, cards, meta.json).

Every byte read from a store is untrusted: `load_json` refuses input over a byte budget or nested deeper
than a limit *before* parsing (so deep nesting is a clean error, not a RecursionError), and `Obj` reads
the parsed value with typed getters. An int field takes an exact int (not bool, float or str); a float
field takes an int or a finite float. A failure is a `SchemaError` holding the key path
(`samples[3].steps`); the caller adds the file and raises `DatasetError` (see records.py, card.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import fsspec
import numpy as np

MAX_DEPTH = 32
"""Deepest nesting of objects/arrays accepted in any dataset JSON file (cards nest about 6 levels)."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_BLOCK = 2**20


class SchemaError(ValueError):
    """A JSON value that breaks its file's schema, at `key` (a path such as `spec.action.n`)."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"key {key!r}: {problem}" if key else problem)


def read_bounded(fs: fsspec.AbstractFileSystem, path: str, max_bytes: int) -> bytes:
    """The file's bytes, reading at most `max_bytes + 1` of them (a huge file is refused, not loaded)."""
    with fs.open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SchemaError("", f"file is larger than the {max_bytes} bytes allowed")
    return data


def load_json(raw: bytes, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `raw` as JSON after checking its size and its nesting depth."""
    if len(raw) > max_bytes:
        raise SchemaError("", f"{len(raw)} bytes, more than the {max_bytes} allowed")
    if _too_deep(raw, max_depth):
        raise SchemaError("", f"nested deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise SchemaError("", f"not valid JSON: {exc}") from None


def _too_deep(raw: bytes, max_depth: int) -> bool:
    """Does the nesting of brackets outside strings ever pass `max_depth`? A running sum over the brackets,
    in blocks (bounded memory), never recursive: a crafted file cannot exhaust the stack. Unbalanced
    brackets are left to the JSON parser to refuse."""
    brackets = np.frombuffer(_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS), np.uint8)
    depth = 0
    for start in range(0, len(brackets), _BLOCK):
        block = brackets[start : start + _BLOCK]
        opens = (block == ord("[")) | (block == ord("{"))
        levels = depth + np.cumsum(opens.view(np.int8) * 2 - 1, dtype=np.int32)
        if int(levels.max()) > max_depth:
            return True
        depth = int(levels[-1])
    return False


def describe(value: Any) -> str:
    """A short, safe rendering of a value for an error message."""
    text = repr(value) if isinstance(value, (bool, int, float, str)) or value is None else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def exact_int(value: Any, key: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise SchemaError(key, f"expected an integer, got {describe(value)}")
    if not low <= value <= high:
        raise SchemaError(key, f"{value} is outside {low}..{high}")
    return value


def number(value: Any, key: str) -> float:
    """An int or a finite float (JSON has no other numbers we accept: NaN and Infinity are refused)."""
    if type(value) not in (int, float) or not math.isfinite(value):
        raise SchemaError(key, f"expected a finite number, got {describe(value)}")
    return float(value)


def boolean(value: Any, key: str) -> bool:
    if type(value) is not bool:
        raise SchemaError(key, f"expected true or false, got {describe(value)}")
    return value


def string(value: Any, key: str, max_len: int, pattern: re.Pattern[str] | None = None) -> str:
    if type(value) is not str:
        raise SchemaError(key, f"expected a string, got {describe(value)}")
    if len(value) > max_len:
        raise SchemaError(key, f"string of {len(value)} characters, more than {max_len}")
    if pattern is not None and not pattern.fullmatch(value):
        raise SchemaError(key, f"{describe(value)} does not match {pattern.pattern}")
    return value


def items(value: Any, key: str, min_len: int, max_len: int) -> Iterator[tuple[str, Any]]:
    """(key path, element) for each element of a JSON array of `min_len..max_len` elements."""
    if type(value) is not list:
        raise SchemaError(key, f"expected an array, got {describe(value)}")
    if not min_len <= len(value) <= max_len:
        raise SchemaError(key, f"array of {len(value)} elements, expected {min_len}..{max_len}")
    return ((f"{key}[{i}]", v) for i, v in enumerate(value))


class Obj:
    """A JSON object under validation: each getter checks one member and names its key path on failure."""

    def __init__(self, value: Any, key: str = ""):
        if type(value) is not dict:
            raise SchemaError(key, f"expected an object, got {describe(value)}")
        self.value, self.key = value, key

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def get(self, name: str, default: Any = ...) -> Any:
        """The raw member; `default` (when given) if it is absent."""
        if name in self.value:
            return self.value[name]
        if default is ...:
            raise SchemaError(self.path(name), "missing")
        return default

    def integer(self, name: str, low: int, high: int) -> int:
        return exact_int(self.get(name), self.path(name), low, high)

    def number(self, name: str) -> float:
        return number(self.get(name), self.path(name))

    def boolean(self, name: str) -> bool:
        return boolean(self.get(name), self.path(name))

    def string(self, name: str, max_len: int, pattern: re.Pattern[str] | None = None, default: Any = ...) -> str:
        return string(self.get(name, default), self.path(name), max_len, pattern)

    def obj(self, name: str, default: Any = ...) -> Obj:
        return Obj(self.get(name, default), self.path(name))

    def items(self, name: str, min_len: int, max_len: int) -> Iterator[tuple[str, Any]]:
        return items(self.get(name), self.path(name), min_len, max_len)

    def equal(self, name: str, expected: Any) -> None:
        """The member must be exactly `expected` (same type: `true` is not `1`)."""
        value = self.get(name)
        if type(value) is not type(expected) or value != expected:
            raise SchemaError(self.path(name), f"is {describe(value)}, expected {describe(expected)}")
