"""Credentials never leave memory: the one function that removes them from URLs in any text.

    redact("s3://AKIA:s3cr3t@bucket/ds?X-Amz-Signature=abc&part=1")  ->  "s3://***@bucket/ds?X-Amz-Signature=***&part=1"

A URL may carry credentials in its userinfo (`scheme://user:password@host`) or in its query string
(presigned URLs: X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, X-Goog-Signature, Azure SAS
`sig`, `token`, `access_token`, `key`, `secret`, `password`, ...). Every log line, MLflow param and tag,
card, lineage, record and error message that shows a URL goes through `redact`: the CLI's and workers'
log handlers (redact_logs), MLflow params (dreamstream.tracking, the collector's MlflowLogger),
every project error (dreamstream.errors.UserError), and corpus lineage. It lives at the top of the package
so that every part may import it (dreamstream.datasets included). The URLs the code opens stay as given.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

_USERINFO = re.compile(r"(?<=://)[^/?#@\s]+@")
"""`user:password@` (or a bare token@) right after a scheme."""

_SECRET_WORDS = ("sig", "token", "secret", "passw", "pwd", "credential", "key", "auth", "session")
"""A query parameter whose name contains one of these holds a secret (matched ignoring case)."""

_PARAM = re.compile(r"([?&;])([^=&#\s?;'\"]+)=([^&#\s;'\"<>)\]]*)")


def redact(text: str) -> str:
    """`text` with URL userinfo and secret query values replaced by `***` (idempotent, any text)."""
    text = _USERINFO.sub(f"{MASK}@", text)
    return _PARAM.sub(_mask_secret, text) if "=" in text else text


def redact_tree(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string redacted: lineage, summaries."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_tree(item) for item in value]
    return value


def _mask_secret(match: re.Match[str]) -> str:
    sep, name, value = match.groups()
    if not value or not any(word in name.lower() for word in _SECRET_WORDS):
        return match.group(0)
    return f"{sep}{name}={MASK}"


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter: every line it makes (message, arguments, traceback) comes out redacted."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def redact_logs() -> None:
    """Redact every line the root logger's handlers write (call after logging.basicConfig)."""
    for handler in logging.getLogger().handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter or logging.Formatter()))
