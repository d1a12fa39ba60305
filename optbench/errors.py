"""The one error type for user mistakes.

Anything raised as :class:`OptbenchError` is the user's to fix (an unknown plugin, a wrong value, a
missing file, an impossible combination). The CLI prints its message as one line and exits with 2;
every other exception is a bug and keeps its traceback.
"""


class OptbenchError(Exception):
    """A user mistake, with a one-line message saying what was wrong and what is accepted."""
