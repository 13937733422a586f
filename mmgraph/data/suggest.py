"""Spelling hints for error messages: "did you mean 'column'?"."""
from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """'' or "; did you mean 'X'?" for the closest option (case-insensitive match first)."""
    options = [str(o) for o in options]
    for option in options:
        if option.lower() == str(word).lower():
            return f"; did you mean {option!r}?"
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def one_of(options: Iterable[str]) -> str:
    """"a, b or c" for messages that list the valid choices."""
    options = [repr(str(o)) for o in options]
    if not options:
        return "(none)"
    return options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]
