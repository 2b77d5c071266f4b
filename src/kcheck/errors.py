"""Errors a user can cause, and the exit statuses kcheck documents.

Anything a user can cause is raised as :class:`KcheckError` with one sentence
that names the file and the next step; the CLI prints it as a single line and
exits with its ``exit_status``. A traceback means a bug in kcheck.
"""

from __future__ import annotations

#: Every required item holds.
EXIT_OK = 0
#: A required item fails (or, with --strict, a recommended one), or a fix is impossible.
EXIT_FAIL = 1
#: Usage or input error: nothing was checked for that input.
EXIT_USAGE = 2


class KcheckError(Exception):
    """A problem with the user's input or environment, reported in one line."""

    exit_status = EXIT_USAGE

    def __init__(self, message: str, *, exit_status: int | None = None) -> None:
        super().__init__(message)
        if exit_status is not None:
            self.exit_status = exit_status

    @property
    def message(self) -> str:
        """The one-line text shown to the user."""
        return str(self)


class InputError(KcheckError):
    """An input file is missing, unreadable or not what it should be."""


class ProfileError(KcheckError):
    """A requirement profile is malformed (the message carries file:line)."""
