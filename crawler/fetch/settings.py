"""The Scrapy settings newswatch sets, each with its reason. Built from `[crawl]` options."""

from __future__ import annotations

from typing import Any

from crawler.model import CrawlOptions

# Statuses handed to our callbacks instead of being dropped by HttpErrorMiddleware. Not
# `handle_httpstatus_all`: that also switches redirects off.
HANDLED_STATUSES = [304, *range(400, 600)]


def scrapy_settings(options: CrawlOptions, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        # Politeness: robots.txt, an identifying User-Agent, one per-host limit for all sources
        # (every due source of a pass is crawled by one crawler, so the limit really is shared).
        "ROBOTSTXT_OBEY": options.obey_robots,
        "USER_AGENT": options.user_agent,
        "CONCURRENT_REQUESTS": 32,
        "CONCURRENT_REQUESTS_PER_DOMAIN": options.per_host,
        "DOWNLOAD_DELAY": options.delay,
        "DOWNLOAD_DELAY_JITTER": 0,  # `delay` is the least time between two requests to a host
        # Hostile servers: bounded time, size and redirects.
        "DOWNLOAD_TIMEOUT": options.timeout,
        "DNS_TIMEOUT": min(options.timeout, 20),
        "DOWNLOAD_MAXSIZE": options.max_page_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "REDIRECT_MAX_TIMES": 5,
        # Feeds are polled with our own conditional GET (If-None-Match / If-Modified-Since);
        # the RFC 2616 cache answered polls without a request and missed new items.
        "HTTPCACHE_ENABLED": False,
        "COOKIES_ENABLED": False,
        # A failed fetch is recorded on the source and tried again at its next run.
        "RETRY_ENABLED": False,
        # Never run code servers: RemoteControl executes Python, telnet is a console.
        "REMOTE_CONTROL_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # The CLI owns logging; Scrapy must not reinstall the root handler per crawl.
        "LOG_INSTALL_ROOT_HANDLER": False,
        "LOG_LEVEL": "INFO",
        "STATS_DUMP": False,
        # One item per response at most (an article page, or a listing's entries one by one):
        # Scrapy's default of 100 starts 100 tasks for every response, even an empty 304.
        "CONCURRENT_ITEMS": 16,
        "LOGSTATS_INTERVAL": 0,
        # Scrapy's robots.txt middleware let concurrent requests to one host skip robots.txt.
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "crawler.fetch.middlewares.robots.SharedRobotsTxtMiddleware": 100,
            # before robots.txt and the network: known article pages are never requested
            "crawler.fetch.middlewares.seen.SeenFilterMiddleware": 50,
            # links (and redirects) into private networks: not followed (SSRF)
            "crawler.fetch.middlewares.private.PrivateAddressMiddleware": 60,
            # a listing its poll already received (crawler.fetch.poll) is not requested again
            "crawler.fetch.middlewares.prefetched.PrefetchedMiddleware": 90,
            # 429/503: pause the host for its Retry-After, then try again
            "crawler.fetch.middlewares.retry_after.RetryAfterMiddleware": 560,
        },
        "ITEM_PIPELINES": {"crawler.fetch.pipelines.ArchivePipeline": 300},
        # Certificates are verified (Scrapy's default accepts any certificate).
        "DOWNLOAD_VERIFY_CERTIFICATES": True,
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
    }
    settings.update(extra)
    return settings
