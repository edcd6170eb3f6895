"""Everything that turns the web into archived, matched articles.

Exceptions raised by this package::

    CrawlerError
     +-- QueryError        a malformed query (crawler.query), with the position
     +-- ArchiveError      the archive cannot be opened, migrated or written (crawler.archive)

A module that adds an exception derives it from CrawlerError and adds it to this tree.
"""

__all__ = ["CrawlerError"]


class CrawlerError(Exception):
    """Base of every error this package raises on purpose."""
