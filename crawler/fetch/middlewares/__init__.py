"""The downloader middlewares of a pass, one per file (Scrapy's way: each built from the
crawler, opting out with ``NotConfigured``, counting what it does in ``crawler.stats`` under
``newswatch/...``):

- `seen.SeenFilterMiddleware`: article pages the archive knows are not fetched again;
- `private.PrivateAddressMiddleware`: links into private networks are refused (SSRF);
- `prefetched.PrefetchedMiddleware`: a listing the poll received is not requested again;
- `robots.SharedRobotsTxtMiddleware`: Scrapy's robots.txt middleware, fixed for waiters;
- `retry_after.RetryAfterMiddleware`: 429/503 back off, honouring Retry-After.

`crawler.fetch.settings` places them in the chain.
"""
