"""codec.decode_npy_zst_into: a .npy.zst member decompressed straight into a caller's array, with the
bounds of decode_array (header checked first, output exactly the array's bytes)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import zstandard
from bounded import bounded
from crafted import zstd_rle

from dreamstream.datasets.codec import CodecError, decode_array, decode_npy_zst_into, encode_array


def npy_zst(array: np.ndarray, version: tuple[int, int] = (1, 0)) -> bytes:
    stream = io.BytesIO()
    np.lib.format.write_array(stream, array, version=version)
    return zstandard.ZstdCompressor(level=3).compress(stream.getvalue())


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_decodes_into_the_given_array_as_decode_array_does(version):
    frames = np.random.default_rng(0).integers(0, 255, (7, 8, 8, 3), dtype=np.uint8)
    out = np.zeros((7, 8, 8, 3), np.uint8)
    decode_npy_zst_into(npy_zst(frames, version), out)
    np.testing.assert_array_equal(out, frames)
    _, data = encode_array(frames, 3)
    np.testing.assert_array_equal(decode_array("npy.zst", data, np.uint8, (7, 8, 8, 3)), frames)


def test_fortran_order_members_land_in_c_order():
    values = np.asfortranarray(np.arange(24, dtype=np.float32).reshape(4, 6))
    out = np.empty((4, 6), np.float32)
    decode_npy_zst_into(npy_zst(values), out)
    np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize("member, error", [
    (np.zeros((6, 8, 8, 3), np.uint8), "6 rows, the commit record says 7"),
    (np.zeros((7, 8, 8, 3), np.float32), "dtype float32 but the spec says uint8"),
    (np.zeros((7, 8, 8, 4), np.uint8), "step shape"),
])
def test_a_header_that_disagrees_is_refused_before_data_is_written(member, error):
    out = np.full((7, 8, 8, 3), 9, np.uint8)
    with pytest.raises(CodecError, match=error):
        decode_npy_zst_into(npy_zst(member), out)
    assert (out == 9).all()


def test_short_long_and_damaged_streams_are_refused():
    out = np.empty((7, 4), np.uint8)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (7, 4)})
    compress = zstandard.ZstdCompressor().compress
    with pytest.raises(CodecError, match="holds 20 data bytes"):
        decode_npy_zst_into(compress(header.getvalue() + bytes(20)), out)
    with pytest.raises(CodecError, match="expands past"):
        decode_npy_zst_into(compress(header.getvalue() + bytes(29)), out)
    with pytest.raises(CodecError, match="expands past"):
        decode_npy_zst_into(compress(header.getvalue() + bytes(28)) + compress(b"more"), out)
    with pytest.raises(CodecError, match="ends inside its header"):
        decode_npy_zst_into(compress(header.getvalue()[:30]), out)
    with pytest.raises(CodecError, match="damaged"):
        decode_npy_zst_into(b"not zstd at all", out)
    with pytest.raises(CodecError):
        decode_npy_zst_into(b"\x28\xb5\x2f\xfd" + bytes(12), out)


def test_a_bomb_stops_at_the_array_size():
    out = np.empty((10, 64, 64, 3), np.uint8)
    with pytest.raises(CodecError, match="declares"):
        decode_npy_zst_into(zstd_rle(2**30, declared=2**30), out)
    with bounded(memory_mb=16, seconds=10), pytest.raises(CodecError):
        decode_npy_zst_into(zstd_rle(2**30), out)  # no declared size: zeros are not a .npy header
