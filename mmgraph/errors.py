"""Errors that the CLI maps to exit codes (2 for bad input, 1 for everything else)."""
from __future__ import annotations


class MMGraphError(Exception):
    """Base class of every error mmgraph raises on purpose."""


class InputError(MMGraphError):
    """Bad input or usage: a manifest, table, media file, id or option that is wrong.

    The message always names the file and, where it applies, the table, row and field.
    The CLI exits with status 2.
    """


class DecodeError(InputError):
    """A media file exists but cannot be decoded (truncated image, non-audio WAV, ...)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot decode {path}: {reason}")
        self.path = path
        self.reason = reason
