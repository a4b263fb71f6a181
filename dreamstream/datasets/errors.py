"""DatasetError: what is wrong with a dataset, and where (shard, sample key, field)."""

from __future__ import annotations

from dreamstream.errors import UserError


class DatasetError(UserError):
    """A missing, damaged or non-conforming part of a dataset.

    The message starts with the location so that a log line alone says where to look.
    """

    def __init__(self, message: str, *, root: str = "", shard: str = "", key: str = "", field: str = ""):
        self.root, self.shard, self.key, self.field = root, shard, key, field
        self.reason = message
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
