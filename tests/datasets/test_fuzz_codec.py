"""Property tests over the member codec: any bytes, any mutation of a good `.npy` or `.npy.zst` member and
any `.npy` header text decode to exactly the expected dtype and shape or fail with a CodecError, never
another exception (and never an allocation the header asked for: the expectation bounds it).

Same budget as tests/datasets/test_fuzz_parser.py (FUZZ: 200 examples per property, no database).
"""

from __future__ import annotations

import numpy as np
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_parser import FUZZ, mutated

from dreamstream.datasets.codec import CodecError, decode_array, npy_bytes

DTYPES = st.sampled_from(["uint8", "float32", "int64", "bool"])
SHAPES = st.lists(st.integers(0, 5), min_size=1, max_size=4).map(tuple)


def decode(suffix: str, data: bytes, dtype: str, shape: tuple[int, ...]) -> None:
    """The decoded array has exactly the expected dtype and shape, or the codec said why not."""
    try:
        array = decode_array(suffix, data, dtype, shape)
    except CodecError:
        return
    assert array.dtype == np.dtype(dtype) and array.shape == shape


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(["npy", "npy.zst"]), dtype=DTYPES, shape=SHAPES)
def test_arbitrary_member_bytes_decode_or_fail_cleanly(data, suffix, dtype, shape):
    decode(suffix, data, dtype, shape)


@FUZZ
@given(data=st.data(), dtype=DTYPES, shape=SHAPES, compress=st.booleans())
def test_mutated_members_decode_or_fail_cleanly(data, dtype, shape, compress):
    raw = npy_bytes(np.zeros(shape, dtype))
    blob = zstandard.ZstdCompressor().compress(raw) if compress else raw
    decode("npy.zst" if compress else "npy", data.draw(mutated(blob)), dtype, shape)


@FUZZ
@given(header_text=st.text(max_size=200), dtype=DTYPES, shape=SHAPES)
def test_crafted_npy_headers_decode_or_fail_cleanly(header_text, dtype, shape):
    text = header_text.encode("latin1", "replace")
    decode("npy", b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text, dtype, shape)
