"""The spider as the listing parsers (`feeds`, `sitemaps`, `sites`) see it.

`crawler.fetch.spiders.news.NewsSpider` implements it; the parsers take this Protocol instead of
importing the spider, which imports them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import scrapy
from scrapy.http import Response

from crawler.fetch.context import PassContext
from crawler.model import Source
from crawler.records import RunRecord


class ListingSpider(Protocol):
    sources: dict[str, Source]

    @property
    def ctx(self) -> PassContext: ...

    def result(self, response_or_meta: Response | dict[str, Any]) -> RunRecord: ...

    def listing_body(self, response: Response) -> bytes | None: ...

    def listing_request(self, source: Source, url: str, conditional: bool) -> scrapy.Request: ...

    def page_request(
        self, source: str, url: str, info: dict[str, Any], refetch: bool = False
    ) -> scrapy.Request: ...

    def new_pages(
        self, source: str, urls: Iterable[tuple[str, dict[str, Any]]]
    ) -> Iterator[Any]: ...

    def count_page_request(self) -> None: ...
