"""User-facing errors: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations

_WORKER_MARK = "Original Traceback"


class DigitdetError(Exception):
    """A problem with the user's input or files; the message names the file and the problem.

    Raised inside a DataLoader worker, torch re-raises it in the main process as `type(exc)(text)` with
    the worker's whole traceback as the text; the constructor keeps only the original one-line message,
    so a bad image gives the same line whatever `data.workers` is."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str) and _WORKER_MARK in args[0]:
            args = (_original_message(args[0], type(self)),)
        super().__init__(*args)


def _original_message(text: str, cls: type) -> str:
    """The message of the exception at the end of a formatted traceback ('pkg.Class: message')."""
    last = next((line for line in reversed(text.splitlines()) if line.strip()), text)
    for prefix in (f"{cls.__module__}.{cls.__qualname__}: ", f"{cls.__qualname__}: "):
        if last.startswith(prefix):
            return last[len(prefix):]
    return last


def first_line(exc: BaseException, typed: bool = False) -> str:
    """The first line of an exception's message (library errors often run to many lines), or its type
    name when the message is empty; `typed` puts the type name in front ('UnpicklingError: ...')."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    return f"{type(exc).__name__}: {line}" if typed else line


class ConfigError(DigitdetError):
    """An unknown key, a bad value or an unreadable config file."""


class DataError(DigitdetError):
    """A dataset problem: missing/corrupt image, malformed json, bad box or category id."""


class TrainingError(DigitdetError):
    """Training cannot go on (for example a non-finite loss)."""
