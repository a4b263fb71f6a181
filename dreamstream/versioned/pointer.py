"""`latest.json`: the pointer that names the newest of a folder's versioned files.

    <folder>/latest.json    {"version": N, "path": "<a file name in folder>"}

VersionedFiles (dreamstream.versioned.files) writes it last; collectors polling snapshots, a resumed
trainer and `dreamstream dream` read it here. Anyone who can write the bucket can rewrite it, so it is read
as untrusted input: small, an exact non-negative int version, and a path that is a plain file name of the
pointer's own folder (never `../x`, `sub/x`, an absolute path or a URL). Anything else is a UserError that
names the pointer file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from dreamstream.errors import UserError

POINTER = "latest.json"
MAX_BYTES = 4096
"""A pointer is a few dozen bytes; reading stops here."""

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}")


@dataclass(frozen=True)
class Pointer:
    """A parsed pointer: the version and the file name (inside the pointer's folder) that holds it."""

    version: int
    path: str


def encode_pointer(version: int, name: str) -> bytes:
    """The bytes of a pointer to file `name` of the same folder (checked as readers check it)."""
    return json.dumps({"version": _version(version, "pointer"), "path": _name(name, "pointer")}).encode()


def read_pointer(fs: Any, folder: str, shown: str) -> Pointer | None:
    """The pointer of `folder` (a path on `fs`; `shown` is its URL for messages); None when there is none."""
    where = f"{shown.rstrip('/')}/{POINTER}"
    try:
        raw = fs.cat_file(f"{folder.rstrip('/')}/{POINTER}", start=0, end=MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - stores raise OSError, botocore, gcsfs HttpError, ...: all "cannot read"
        raise UserError(f"cannot read {where}: {type(exc).__name__}: {exc}") from exc
    if len(raw) > MAX_BYTES:
        raise UserError(f"{where}: larger than {MAX_BYTES} bytes; not a pointer")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(data, dict) or set(data) != {"version", "path"}:
        raise UserError(f"{where}: expected {{\"version\": N, \"path\": FILE}}")
    return Pointer(_version(data["version"], where), _name(data["path"], where))


def _version(value: Any, where: str) -> int:
    if type(value) is not int or not 0 <= value < 2**63:
        raise UserError(f"{where}: version must be a non-negative integer, got {value!r:.40}")
    return value


def _name(value: Any, where: str) -> str:
    """A file name of the pointer's own folder: letters, digits, `_`, `-` and `.` (not first): no separator, no `..`."""
    if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(value):
        raise UserError(f"{where}: path must be a file name in the pointer's own folder "
                        f"(no '/', '..', absolute path or URL), got {value!r:.80}")
    return value
