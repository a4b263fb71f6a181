"""Member encoding: NumPy `.npy` (optionally zstd-compressed as `.npy.zst`) and JSON, nothing else.

Decoding refuses every other extension before looking at the bytes, and refuses object dtypes inside
`.npy` headers, so no byte of a dataset ever reaches pickle.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import numpy as np
import zstandard

NPY, NPY_ZST, JSON = "npy", "npy.zst", "json"
KNOWN_SUFFIXES = (NPY, NPY_ZST, JSON)

# zstandard contexts are not thread-safe (concurrent use corrupts output) but cheap: one per thread.
_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    compressors = _local.__dict__.setdefault("compressors", {})
    if level not in compressors:
        compressors[level] = zstandard.ZstdCompressor(level=level)
    return compressors[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    if not hasattr(_local, "decompressor"):
        _local.decompressor = zstandard.ZstdDecompressor()
    return _local.decompressor


class CodecError(ValueError):
    """A member that cannot be decoded safely; the caller adds the shard/key/field location."""


def npy_bytes(array: np.ndarray) -> bytes:
    """The `.npy` file bytes of an array (header + raw data, no pickle), with a single copy of the data."""
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise CodecError(f"object dtype {array.dtype} would need pickle: refused")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    return b"".join((header.getvalue(), array.data))


def encode_array(array: np.ndarray, compress_level: int | None) -> tuple[str, bytes]:
    """-> (suffix, bytes): `.npy`, or `.npy.zst` when a zstd level is given."""
    data = npy_bytes(array)
    if compress_level is None:
        return NPY, data
    compressor = _compressor(compress_level)
    return NPY_ZST, compressor.compress(data)


def load_npy(data: bytes | memoryview) -> np.ndarray:
    """Parse `.npy` bytes without pickle; the result is a read-only view of `data` (no copy)."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except ValueError as exc:
        raise CodecError(f"not a valid .npy member: {exc}") from exc
    if dtype.hasobject:
        raise CodecError(f".npy member has object dtype {dtype}, which would need pickle: refused")
    count = int(np.prod(shape, dtype=np.int64))
    offset = stream.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise CodecError(f".npy member holds {len(data) - offset} data bytes, header says {count * dtype.itemsize}")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C")


def decode_member(suffix: str, data: bytes) -> Any:
    """Decode one tar member by its suffix (the part of the name after `<key>.<field>.`)."""
    if suffix == NPY:
        return load_npy(data)
    if suffix == NPY_ZST:
        try:
            raw = _decompressor().decompress(data)
        except zstandard.ZstdError as exc:
            raise CodecError(f"zstd stream is damaged: {exc}") from exc
        return load_npy(raw)
    if suffix == JSON:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise CodecError(f"JSON member is damaged: {exc}") from exc
    raise CodecError(f"extension .{suffix} is not one of {KNOWN_SUFFIXES}: refused, never decoded")


def split_member_name(name: str) -> tuple[str, str, str]:
    """`<key>.<field>.<suffix>` -> (key, field, suffix). Keys never contain dots (WebDataset's rule)."""
    key, _, rest = name.partition(".")
    field, _, suffix = rest.partition(".")
    return key, field, suffix
