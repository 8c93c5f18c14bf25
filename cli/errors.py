"""The CLI's errors and the exit codes they map to (the table is documented in docs/cli.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes scripts can rely on."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    NOT_AUTHENTICATED = 3
    PERMISSION_DENIED = 4
    NOT_FOUND = 5
    CONFLICT = 6
    RATE_LIMITED = 7
    SERVER = 8
    # What a shell reports for a process killed by SIGPIPE: the output's reader went away.
    BROKEN_PIPE = 141


class CliError(Exception):
    """An error to show as `error: <message>` (plus field errors and a hint) before exiting."""

    def __init__(
        self,
        message: str,
        exit_code: ExitCode = ExitCode.UNEXPECTED,
        *,
        fields: dict[str, list[str]] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.fields = fields or {}
        self.hint = hint


class UsageError(CliError):
    """Bad input given to the CLI itself (exit code 2)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, ExitCode.USAGE, hint=hint)


class NotLoggedIn(CliError):
    """No usable credentials in the environment or the config file (exit code 3)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, ExitCode.NOT_AUTHENTICATED, hint=hint)


class ServerUnreachable(CliError):
    """The server could not be reached or did not answer in time (exit code 8)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.SERVER)


class ApiError(CliError):
    """The API answered with an error status; `code` is the API's machine-readable error code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, exit_code_for(status, code), fields=fields, hint=hint)
        self.status = status
        self.code = code


# For a 4xx these codes decide, whatever the status: DRF, for one, answers `not_authenticated`
# with 403 when no authentication class names a scheme.
_CODE_EXIT = {
    "not_authenticated": ExitCode.NOT_AUTHENTICATED,
    "authentication_failed": ExitCode.NOT_AUTHENTICATED,
    "permission_denied": ExitCode.PERMISSION_DENIED,
    "not_found": ExitCode.NOT_FOUND,
    "conflict": ExitCode.CONFLICT,
    "quota_exceeded": ExitCode.CONFLICT,
    "throttled": ExitCode.RATE_LIMITED,
}


def exit_code_for(status: int, code: str | None = None) -> ExitCode:
    """The exit code of an API error: a 4xx by its error code when known, else by its status."""
    if 400 <= status < 500 and code in _CODE_EXIT:
        return _CODE_EXIT[code]
    return exit_code_for_status(status)


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code of an HTTP error status."""
    if status in (400, 413, 415, 422):
        return ExitCode.USAGE
    if status == 401:
        return ExitCode.NOT_AUTHENTICATED
    if status == 403:
        return ExitCode.PERMISSION_DENIED
    if status in (404, 410):
        return ExitCode.NOT_FOUND
    if status == 409:
        return ExitCode.CONFLICT
    if status == 429:
        return ExitCode.RATE_LIMITED
    if status >= 500:
        return ExitCode.SERVER
    return ExitCode.UNEXPECTED
