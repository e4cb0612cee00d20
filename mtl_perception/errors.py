"""The one base of the errors a user can fix: their messages are one line that names the problem and the fix,
so the CLI's entry point prints them as they are (`error: ...`, exit 2) for every subcommand, and the node
logs them; any other exception is a bug and keeps its traceback."""

from __future__ import annotations


class UserFacingError(Exception):
    """Mixed into each module's own error type (ModelLoadError, DatasetError, BagError, ...)."""
