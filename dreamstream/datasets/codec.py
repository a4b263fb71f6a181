"""Member encoding: NumPy `.npy` (optionally zstd-compressed as `.npy.zst`) and JSON, nothing else.

Decoding refuses every other extension before looking at the bytes, and refuses object dtypes inside
`.npy` headers, so no byte of a dataset ever reaches pickle. Members are untrusted: `decode_array` takes
the dtype and shape the spec and the commit record expect and checks the `.npy` header against them
before any array exists, and caps zstd output at the bytes those rows can hold (a frame declaring more
is refused before decompressing, a bomb stops at the cap), so no header can make a reader allocate.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import zstandard

NPY, NPY_ZST, JSON = "npy", "npy.zst", "json"
KNOWN_SUFFIXES = (NPY, NPY_ZST, JSON)
MAX_NPY_HEADER = 16 * 2**10
"""Most bytes of a `.npy` header read (NumPy itself refuses headers over 10,000 characters)."""
_NPY_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0,
                (3, 0): np.lib.format.read_array_header_2_0}

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


def npy_header(data: bytes | memoryview) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """-> (shape, fortran_order, dtype, data offset) of `.npy` bytes, reading only the header's bytes."""
    stream = io.BytesIO(bytes(data[:MAX_NPY_HEADER]))  # a copy of the header only, never of the data
    try:
        version = np.lib.format.read_magic(stream)
        reader = _NPY_READERS.get(version)
        if reader is None:
            raise CodecError(f"not a valid .npy member: unsupported version {version}")
        shape, fortran, dtype = reader(stream)
    except CodecError:
        raise
    except Exception as exc:  # NumPy's header parser (ast, tokenize, dtype) is not built for hostile
        # input: whatever it raises means the header is damaged
        raise CodecError(f"not a valid .npy member: {type(exc).__name__}: {exc}"[:300]) from None
    if dtype.hasobject:
        raise CodecError(f".npy member has object dtype {dtype}, which would need pickle: refused")
    return shape, fortran, dtype, stream.tell()


def load_npy(data: bytes | memoryview, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """Parse `.npy` bytes that must hold a `shape` array of `dtype`; the result is a read-only view of
    `data` (no copy). The header is checked against the expectation before the array is made."""
    found_shape, fortran, found_dtype, offset = npy_header(data)
    _check_expected(found_shape, found_dtype, dtype, shape)
    count = _count(shape)
    if len(data) - offset != count * dtype.itemsize:
        raise CodecError(f".npy member holds {len(data) - offset} data bytes, its header says "
                         f"{count * dtype.itemsize}")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C")


def _check_expected(found_shape: tuple[int, ...], found_dtype: np.dtype, dtype: np.dtype,
                    shape: tuple[int, ...]) -> None:
    if found_dtype != dtype:
        raise CodecError(f"dtype {found_dtype} but the spec says {dtype}")
    if len(found_shape) != len(shape) or tuple(found_shape[1:]) != shape[1:]:
        raise CodecError(f"step shape {tuple(found_shape[1:])} but the spec says {shape[1:]}")
    if found_shape[0] != shape[0]:
        raise CodecError(f"{found_shape[0]} rows, the commit record says {shape[0]}")


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count


def _check_declared_size(data: bytes | memoryview, limit: int) -> None:
    """Refuse a zstd frame whose header declares more than `limit` bytes (before any output is allocated)."""
    try:
        declared = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise CodecError(f"zstd frame header is damaged: {exc}") from None
    if declared > limit:
        raise CodecError(f"zstd frame declares {declared} bytes, more than the {limit} its rows can hold")


def decompress(data: bytes | memoryview, limit: int) -> bytes:
    """One zstd frame, refused if it declares or produces more than `limit` bytes (checked before the
    output buffer is allocated) or carries anything after the frame."""
    _check_declared_size(data, limit)
    try:  # declared == -1 (unknown): zstandard stops at max_output_size
        return _decompressor().decompress(data, max_output_size=limit, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise CodecError(f"zstd stream is damaged or expands past the {limit} bytes its rows can hold: "
                         f"{exc}") from None


def decode_npy_zst_into(data: bytes | memoryview, out: np.ndarray) -> None:
    """Decompress a `.npy.zst` member straight into `out` (C-contiguous, writable: the dtype and shape
    the member must hold), with no intermediate buffer: the zstd stream is read into `out`'s memory.

    The same bounds as `decode_array`: the frame's declared size is checked first, the `.npy` header is
    read alone (at most MAX_NPY_HEADER bytes) and checked against `out` before a data byte is written,
    and the output is exactly `out.nbytes`: a member that holds fewer bytes, or anything more (a bomb,
    a second frame), is refused. `out` may hold partial data when this raises.
    """
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("decode_npy_zst_into needs a writable C-contiguous array")
    limit = MAX_NPY_HEADER + out.nbytes
    _check_declared_size(data, limit)
    try:
        reader = _decompressor().stream_reader(data, read_across_frames=True)
        head = _read_exactly(reader, 10)  # magic (6), version (2), then the header length (2 or 4 bytes)
        if head[6:8] in (b"\x02\x00", b"\x03\x00"):
            head += _read_exactly(reader, 2)
            length = int.from_bytes(head[8:12], "little")
        else:
            length = int.from_bytes(head[8:10], "little")
        if len(head) + length > MAX_NPY_HEADER:
            raise CodecError(f".npy header of {length} bytes is longer than {MAX_NPY_HEADER}")
        head += _read_exactly(reader, length)
        found_shape, fortran, found_dtype, offset = npy_header(head)
        if offset != len(head):
            raise CodecError("not a valid .npy member: the header length does not match its text")
        _check_expected(found_shape, found_dtype, out.dtype, out.shape)
        target = np.empty(out.shape, out.dtype, order="F") if fortran and out.ndim > 1 else out
        view = memoryview(target.reshape(-1, order="A").view(np.uint8))
        filled = 0
        while filled < len(view):
            n = reader.readinto(view[filled:])
            if n == 0:
                raise CodecError(f".npy member holds {filled} data bytes, its header says {len(view)}")
            filled += n
        if reader.read(1):
            raise CodecError(f"zstd stream expands past the {out.nbytes} data bytes its rows can hold")
    except zstandard.ZstdError as exc:
        raise CodecError(f"zstd stream is damaged: {exc}") from None
    if target is not out:
        out[...] = target


def _read_exactly(reader: zstandard.ZstdDecompressionReader, n: int) -> bytes:
    data = reader.read(n)
    while len(data) < n:
        more = reader.read(n - len(data))
        if not more:
            raise CodecError(f"not a valid .npy member: it ends inside its header ({len(data)} of {n} bytes)")
        data += more
    return data


def decode_array(suffix: str, data: bytes | memoryview, dtype: np.dtype | str,
                 shape: tuple[int, ...]) -> np.ndarray:
    """Decode an array member (`.npy` or `.npy.zst`) that must hold a `shape` array of `dtype`.

    `shape` is (rows, *step shape): the rows come from the commit record, the rest and the dtype from
    the spec, so the zstd output is capped at exactly what those rows hold (plus the header).
    """
    dtype = np.dtype(dtype)
    if suffix == NPY:
        return load_npy(data, dtype, shape)
    if suffix == NPY_ZST:
        return load_npy(decompress(data, MAX_NPY_HEADER + _count(shape) * dtype.itemsize), dtype, shape)
    check_suffix(suffix)
    raise CodecError(f"a .{suffix} member is not an array")


def check_suffix(suffix: str) -> None:
    """Refuse an extension this codec does not decode, before any of its bytes are looked at."""
    if suffix not in KNOWN_SUFFIXES:
        raise CodecError(f"extension .{suffix} is not one of {KNOWN_SUFFIXES}: refused, never decoded")


def split_member_name(name: str) -> tuple[str, str, str]:
    """`<key>.<field>.<suffix>` -> (key, field, suffix). Keys never contain dots (WebDataset's rule)."""
    key, _, rest = name.partition(".")
    field, _, suffix = rest.partition(".")
    return key, field, suffix
