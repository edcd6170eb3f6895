"""The archive's own errors: no caller sees an engine's (`sqlite3.Error`, ...)."""

from __future__ import annotations

from crawler import CrawlerError


class ArchiveError(CrawlerError):
    """The archive cannot be opened or migrated, or was written by a newer newswatch."""


class StorageError(ArchiveError):
    """Reading or writing the archive failed (disk full, locked past the busy timeout, an I/O
    error): what was committed is kept; the work is tried again later."""
