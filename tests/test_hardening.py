"""Hardening defaults: the health server on loopback unless configured, Scrapy's code and
telnet consoles off, links into private networks refused by default."""

from __future__ import annotations

from pathlib import Path

from nw import write_config

from crawler.fetch.settings import scrapy_settings
from crawler.model import CrawlOptions
from scheduler.config import load


def test_the_health_server_listens_on_loopback_unless_configured(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, ""))
    assert config.listen == "127.0.0.1:9180"
    assert CrawlOptions().allow_private is False
    assert config.crawl.allow_private is False


def test_scrapys_consoles_stay_off() -> None:
    settings = scrapy_settings(CrawlOptions())
    assert settings["TELNETCONSOLE_ENABLED"] is False
    assert settings["REMOTE_CONTROL_ENABLED"] is False
    assert settings["DOWNLOAD_VERIFY_CERTIFICATES"] is True
    middlewares = settings["DOWNLOADER_MIDDLEWARES"]
    assert "crawler.fetch.middlewares.private.PrivateAddressMiddleware" in middlewares
