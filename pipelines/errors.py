"""One base for every failure a person can act on, so that the CLI and the DAG report each as
one line with its exit code instead of a traceback.

A stage raises a subclass of `CriError` with a message that names the file, the rule and the
remedy. `privacy/` is a leaf package and cannot import this module, so its two error classes
are listed here (`foreign_errors`) and treated the same way. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

# Exit codes promised in interfaces.md section 5.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTIONS = 0, 1, 2, 3


class CriError(Exception):
    """A failure with a one-line explanation; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_FAILED

    def one_line(self) -> str:
        """The first line of the message (a person reads one line, not a traceback)."""
        lines = str(self).strip().splitlines()
        return lines[0] if lines else type(self).__name__


def foreign_errors() -> tuple[type[Exception], ...]:
    """Errors of the privacy package (a leaf: it cannot derive from CriError) and of the file
    system that are the user's to fix: same treatment. Imported when needed, so that the DAG's
    parse does not load cryptography."""
    from privacy.cms import CmsError
    from privacy.keys import KeyFileError

    return (KeyFileError, CmsError, FileNotFoundError)


def explain(exc: BaseException) -> tuple[str, int] | None:
    """(one line, exit code) for a failure a person can act on; None for a bug."""
    if isinstance(exc, CriError):
        return exc.one_line(), exc.exit_code
    if isinstance(exc, foreign_errors()):
        lines = str(exc).strip().splitlines()
        return (lines[0] if lines else type(exc).__name__), EXIT_FAILED
    return None
