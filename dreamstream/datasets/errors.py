"""DatasetError: what is wrong with a dataset, and where (shard, sample key, field)."""

from __future__ import annotations

from dreamstream.errors import UserError
from dreamstream.redact import redact


class DatasetError(UserError):
    """A missing, damaged or non-conforming part of a dataset.

    The message starts with the location so that a log line alone says where to look.
    """

    def __init__(self, message: str, *, root: str = "", shard: str = "", key: str = "", field: str = ""):
        self.root, self.shard, self.key, self.field = root, shard, key, field
        self.reason = redact(message)  # shown alone by validate and the loader; the full message is redacted too
        where = ", ".join(
            part
            for part in (
                f"dataset {root}" if root else "",
                f"shard {shard}" if shard else "",
                f"sample {key}" if key else "",
                f"field {field}" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class ReadError(DatasetError):
    """A read that did not return the committed bytes: the object is missing, or its bytes fail their
    checksum. A later read may succeed (a damaged transfer, a store catching up), so readers retry it."""


class StoreError(DatasetError):
    """The store did not answer (unreachable, refused, timed out, denied). Retried; when it persists nothing
    can be read, so the loader raises it even with `on_error: skip` instead of skipping shard after shard."""
