"""Errors that map to the CLI's exit codes: 2 for bad usage or bad input, 1 for a failed run."""


class ChanwatchError(Exception):
    """Base class; the message is shown to the user as is, so it must never contain secrets."""

    exit_code = 1


class BadInputError(ChanwatchError):
    """The input (a config file, an export, a hash list) is unusable; nothing was changed."""

    exit_code = 2


class RunFailedError(ChanwatchError):
    """The run could not complete; committed data stays consistent and a re-run resumes."""

    exit_code = 1
