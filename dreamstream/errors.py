"""Errors that are the user's to fix: the CLI prints them as one line and exits non-zero."""

from dreamstream.redact import redact


class UserError(Exception):
    """Bad input, a bad config or a damaged dataset: the message says what and where.

    The message is redacted (dreamstream.redact): a URL it names never shows its credentials."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(redact(str(message)), *args)
