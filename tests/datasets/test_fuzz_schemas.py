"""Property tests of the record, card and meta.json parsers: any JSON value, any mutation of a valid file
and any damage to its bytes gives either a valid object or a DatasetError; never another exception or a
hang. Budget: 200 examples per test, a few seconds each. A crash found here becomes a named test in
test_schemas.py."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamstream.datasets import DatasetCard, DatasetError, FieldSpec, spec_from_spaces
from dreamstream.datasets.card import parse_card
from dreamstream.datasets.records import CommitRecord, SampleRow, parse_meta, parse_record

BUDGET = settings(max_examples=200, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=24,
)


def valid_record() -> dict[str, Any]:
    rows = [SampleRow(key=f"ep{e}-{c:04d}", episode=f"ep{e}", chunk=c, start=10 * c, steps=10, reward_sum=1.5,
                      is_first=c == 0, is_last=c == 1, is_terminal=c == 1 and e == 0, policy="random",
                      policy_version=3, created=1.0e9) for e in range(2) for c in range(2)]
    return CommitRecord(name="w0-000001", bytes=9000, sha256="0" * 64, writer="w0", created=1.0e9,
                        samples=tuple(rows)).to_json()


def valid_card() -> dict[str, Any]:
    base = spec_from_spaces(spaces.Dict(image=spaces.Box(0, 255, (8, 8, 3), np.uint8),
                                        vector=spaces.Box(-1, 1, (3,), np.float32)),
                            spaces.Box(-1, 1, (2,), np.float32))
    grid = FieldSpec((5, 5, 2), "uint8", "categorical", (11, 6))
    spec = type(base)(observations={**base.observations, "grid": grid}, action=base.action)
    card = DatasetCard.create(spec, "Test-v0", preset="test", env_config={"size": 8, "kind": "x"},
                              lineage={"kind": "corpus", "sources": [{"name": "a"}]})
    return card.to_json()


def valid_meta() -> dict[str, Any]:
    return {**valid_record()["samples"][1], "env": "Test-v0", "writer": "w0", "format_version": 1}


def places(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a JSON tree: the places a mutation can hit."""
    out, stack = [], [value]
    while stack:
        node = stack.pop()
        members = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in members:
            out.append((node, key))
            stack.append(child)
    return out


@st.composite
def mutated(draw: st.DrawFn, make: Any) -> bytes:
    """A valid file with one to three mutations: a value replaced, a key deleted, or a key added."""
    data = make()
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(places(data)))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            container[key] = draw(json_values)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=8))] = draw(json_values)
        else:
            container.append(draw(json_values))
        if not places(data):
            break
    return json.dumps(data).encode()


@st.composite
def damaged(draw: st.DrawFn, make: Any) -> bytes:
    """A valid file's bytes, truncated or with bytes flipped, dropped or inserted."""
    raw = bytearray(json.dumps(make()).encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw) - 1))
        action = draw(st.sampled_from(["flip", "drop", "insert", "truncate"]))
        if action == "flip":
            raw[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "drop":
            del raw[at]
        elif action == "insert":
            raw[at:at] = draw(st.sampled_from([b"[", b"{", b"]", b'"', b"\\", b"-", b"1e999", b"NaN", b"\xff"]))
        else:
            del raw[at:]
        if not raw:
            break
    return bytes(raw)


def parses_or_refuses(parse: Any, raw: bytes) -> Any:
    """The parser's result, or None for a DatasetError; anything else fails the test."""
    try:
        return parse(raw)
    except DatasetError:
        return None


def check_record(raw: bytes) -> None:
    record = parses_or_refuses(lambda r: parse_record(r, "w0-000001"), raw)
    if record is not None:  # whatever is accepted is a sane record and survives a round trip
        assert all(1 <= row.steps for row in record.samples) and record.steps <= record.bytes
        assert all(math.isfinite(row.reward_sum) for row in record.samples)
        assert parse_record(record.dumps(), record.name) == record


def check_card(raw: bytes) -> None:
    card = parses_or_refuses(parse_card, raw)
    if card is not None:
        assert parse_card(json.dumps(card.to_json()).encode()) == card


def check_meta(raw: bytes) -> None:
    meta = parses_or_refuses(lambda r: parse_meta(r, "shards/w0-000001.tar", "ep0-0001"), raw)
    assert meta is None or isinstance(meta, dict)


@BUDGET
@given(json_values)
def test_any_json_value_as_a_record(value):
    check_record(json.dumps(value).encode())


@BUDGET
@given(mutated(valid_record))
def test_mutated_records(raw):
    check_record(raw)


@BUDGET
@given(damaged(valid_record))
def test_damaged_record_bytes(raw):
    check_record(raw)


@BUDGET
@given(json_values)
def test_any_json_value_as_a_card(value):
    check_card(json.dumps(value).encode())


@BUDGET
@given(mutated(valid_card))
def test_mutated_cards(raw):
    check_card(raw)


@BUDGET
@given(damaged(valid_card))
def test_damaged_card_bytes(raw):
    check_card(raw)


@BUDGET
@given(mutated(valid_meta))
def test_mutated_meta(raw):
    check_meta(raw)


def test_the_valid_files_parse():
    """The seeds of the mutations are themselves valid (else every mutation would be refused trivially)."""
    assert parse_record(json.dumps(valid_record()).encode(), "w0-000001").steps == 40
    assert parse_card(json.dumps(valid_card()).encode()).spec.action.kind == "continuous"
    assert parse_meta(json.dumps(valid_meta()).encode(), "s", "k")["chunk"] == 1
