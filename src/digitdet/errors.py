"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class DigitdetError(Exception):
    """A problem with the user's input or files; the message names the file and the problem."""


class ConfigError(DigitdetError):
    """An unknown key, a bad value or an unreadable config file."""


class DataError(DigitdetError):
    """A dataset problem: missing/corrupt image, malformed json, bad box or category id."""


class TrainingError(DigitdetError):
    """Training cannot go on (for example a non-finite loss)."""
