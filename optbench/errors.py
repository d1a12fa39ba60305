"""The one error type for user mistakes.

Anything raised as :class:`OptbenchError` is the user's to fix (an unknown plugin, a wrong value, a
missing file, an impossible combination). The CLI prints its message as one line and exits with 2;
every other exception is a bug and keeps its traceback.
"""


class OptbenchError(Exception):
    """A user mistake, with a one-line message saying what was wrong and what is accepted."""


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type's name): what a
    one-line message quotes of an error raised by a library."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
