"""Everything that turns the web into archived, matched articles.

Exceptions raised by this package::

    CrawlerError
     +-- QueryError        a malformed query (crawler.query), with the position
     +-- ArchiveError      the archive file cannot be opened or migrated (crawler.archive)
"""


class CrawlerError(Exception):
    """Base of every error this package raises on purpose."""
