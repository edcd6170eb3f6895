"""Fetching: one crawl pass (`passes`) over the due sources with Scrapy: conditional polls
(`poll`), the spiders (`spiders/`), the downloader middlewares one per file (`middlewares/`),
the settings (`settings`), the archive pipeline (`pipelines`), extraction in worker processes
(`workers`, `preload`), the pass's shared state (`context`) and how a failure is worded
(`failures`). The I/O edge of the crawler (docs/architecture.md)."""
