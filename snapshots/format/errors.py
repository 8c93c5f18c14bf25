"""Errors raised while reading a snapshot's stored bytes: each names the chunk or the manifest."""

from __future__ import annotations

from orgs.exceptions import FlotillaError


class FormatError(FlotillaError):
    """Stored snapshot bytes that cannot be read; retrying the same bytes never helps."""

    code = "snapshot_format"
    # The request is sound; the stored snapshot is not, which is a clash with stored state.
    status = 409
    retryable = False


class UnknownFormatVersion(FormatError):
    """The manifest was written in a format version this Flotilla does not read."""

    code = "snapshot_format_version"


class Tampered(FormatError):
    """A checksum or an authentication tag does not match: the bytes were changed or swapped."""

    code = "snapshot_tampered"


class Truncated(FormatError):
    """Fewer bytes are stored than were written: an upload or a copy was cut short."""

    code = "snapshot_truncated"


class WrongKey(FormatError):
    """None of the organisation's keys opens the snapshot's data key."""

    code = "snapshot_wrong_key"
