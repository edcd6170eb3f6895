"""What an operator reads when the archive cannot be written, and what to do about it (the
command line and the service's log add what happens next)."""

from __future__ import annotations


def archive_trouble(exc: BaseException) -> str:
    if str(exc).startswith("PostgreSQL:"):  # the PostgreSQL engine's StorageError
        return (
            f"the archive could not be written ({exc}): check that the PostgreSQL server "
            "answers and accepts writes, and its free disk space"
        )
    return (
        f"the archive could not be written ({exc}): check the free disk space and that no "
        "other program holds the file locked"
    )
