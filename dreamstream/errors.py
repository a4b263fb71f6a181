"""Errors that are the user's to fix: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """Bad input, a bad config or a damaged dataset: the message says what and where."""
