"""Run one crawl pass of a config in this process with extra Scrapy settings, and print the
per-source results as JSON. For tests that need what no config key gives: `--fake-dns`
installs tests/hostile.py's FakeResolver (no real DNS lookup is ever made; `*.invalid` names
fail, `*.test` names are 127.0.0.1). Usage: python passrun.py CONFIG [--fake-dns] NAME=VALUE..."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

from crawler.archive import Archive
from scheduler.config import load
from scheduler.service.jobs import crawl_sources
from scheduler.service.runtime import run_on_reactor


def main(argv: list[str]) -> int:
    config = load(argv[0])
    fake_dns = "--fake-dns" in argv[1:]
    overrides = dict(arg.split("=", 1) for arg in argv[1:] if "=" in arg)

    async def one_pass() -> dict[str, Any]:
        if fake_dns:
            from hostile import FakeResolver
            from twisted.internet import reactor

            FakeResolver(reactor).install_on_reactor()
        return await crawl_sources(config, archive, config.sources, scrapy_overrides=overrides)

    with Archive(config.archive_path) as archive:
        results = run_on_reactor(one_pass)
    out = {name: asdict(r) for name, r in results.items()}
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
