"""The one query language of newswatch (docs/query-language.md).

`search`, `rules test` and the live matcher all go through this module, so they give the
same answer for the same article. The module is pure: no I/O, no database, no clock.

Syntax::

    nato                 the whole word, ignoring case and accents ("NATO", "NATO's", not "natoo")
    "air defence"        the words in sequence ("Air-Defence", "air defence")
    defen*               any word beginning with "defen"
    a b                  a AND b
    a OR b, NOT a, ( )   precedence: NOT, then AND, then OR
    NEAR(a b, 10)        the terms within 10 words of each other (default 10)
    title:nato           only in the title; also title:"air defence", title:defen*,
                         title:(a OR b) and title:NEAR(a b)
    @nato                any term of the alias set nato (crawler.query.aliases): built in, or
                         the config's [aliases], passed as parse(text, aliases)
    =Patriot             that exact form only; also ="air defence"

Operators are recognised only in upper case: `and` is a plain word.

Text is split into tokens by `tokenize`, the same function for queries and articles:
Unicode NFKD, combining marks dropped, lower-cased, then maximal runs of letters and digits.
A bare query word that splits into several tokens (`IRIS-T`, `F-35`) is a phrase.

Use::

    query = parse('NATO AND ("air defence" OR "air defense")')   # raises QueryError
    doc = Document.from_fields(title, summary, text)              # once per article
    query.matches(doc)   # None, or the matched terms, e.g. ["nato", "air defence"]
    query.to_fts()       # an SQLite FTS5 MATCH prefilter (a superset), or None
"""

from crawler.query.evaluate import Document, Query
from crawler.query.nodes import (
    DEFAULT_NEAR_DISTANCE,
    FIELDS,
    MAX_NEAR_DISTANCE,
    And,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Term,
    tokenize,
)
from crawler.query.syntax import parse

__all__ = [
    "DEFAULT_NEAR_DISTANCE",
    "FIELDS",
    "MAX_NEAR_DISTANCE",
    "And",
    "Document",
    "Near",
    "Node",
    "Not",
    "Or",
    "Query",
    "QueryError",
    "Term",
    "parse",
    "tokenize",
]
