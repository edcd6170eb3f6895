"""The `newswatch` command line (docs/commands.md). User-facing text lives here and only here."""

from __future__ import annotations

import argparse
import csv
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crawler import CrawlerError
from crawler.archive import StorageError
from crawler.clock import iso, iso_or_none, utcnow
from crawler.query import QueryError, parse
from crawler.query.search import backtest, search
from crawler.records import Article, Delivery, RunRecord
from scheduler import SchedulerError, UsageError
from scheduler.cli.tables import summary_line, table
from scheduler.cli.trouble import archive_trouble
from scheduler.config import STARTER_CONFIG, Config, ConfigError, load
from scheduler.config.durations import parse_duration
from scheduler.config.secrets import RedactingFilter, channel_secrets
from scheduler.config.values import without_password
from scheduler.web.reports import alert_json, article_json, source_json

log = logging.getLogger("newswatch")

DEFAULT_CONFIG = "config/newswatch.toml"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# helpers


def _config_path(args: argparse.Namespace) -> str:
    return args.config or os.environ.get("NEWSWATCH_CONFIG") or DEFAULT_CONFIG


def _load(args: argparse.Namespace, cached: bool = False) -> Config:
    """The config; `cached`: with the rules cache beside the archive (commands that crawl)."""
    config = load(_config_path(args), cached=cached)
    # from here on, no log line shows a channel's password, signing key or URL token
    secrets = [*channel_secrets(config.channels), *(config.web.secrets() if config.web else [])]
    redacting = RedactingFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)
    return config


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return utcnow() - timedelta(seconds=parse_duration(text))
    except ValueError as exc:
        raise UsageError(f"--since {text!r}: {exc}") from exc


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


# ---------------------------------------------------------------------------------------------
# commands


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir) / "newswatch.toml" if args.dir else Path(_config_path(args))
    if target.exists():
        raise UsageError(f"{target} already exists; not overwriting it (remove it or pick a DIR)")
    target.parent.mkdir(parents=True, exist_ok=True)
    # the archive goes beside the new config, not in a ../data of wherever that is
    text = STARTER_CONFIG.replace('path = "../data/newswatch.db"', 'path = "newswatch.db"', 1)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}; edit it, then run: newswatch -c {target} check")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    print(
        f"{config.path}: ok ({len(config.sources)} sources, {len(config.rules)} rules, "
        f"{len(config.channels)} channels; archive {config.archive_label})"
    )
    return EXIT_OK


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.fetch.workers import likely_needs_pool, start_fork_server
    from scheduler.delivery.outbox import deliver_due
    from scheduler.service.jobs import claim_and_crawl, crawl_sources, due_sources
    from scheduler.service.runtime import run_on_reactor

    config = _load(args, cached=True)
    unknown = [n for n in args.source or [] if n not in {s.name for s in config.sources}]
    if unknown:
        raise UsageError(
            f"no source named {', '.join(unknown)} in {config.path}; `newswatch sources` lists them"
        )
    with closing(config.open_archive()) as archive:
        if args.source:
            sources = [s for s in config.sources if s.name in args.source]
        elif args.all:
            sources = list(config.sources)
        else:
            # the due ones this process claims (another node may hold some)
            sources = due_sources(config, archive.source_states(), utcnow())

        results: dict[str, RunRecord] = {}
        if sources:
            if likely_needs_pool(sources, archive.last_runs(), config.crawl.fetch_articles):
                start_fork_server()  # the extraction workers load while the crawl starts up
            cache = config.rules_cache
            index = cache.index(config.rules) if cache is not None else None
            # the compiled rules live as long as the process: the collector need not walk
            # their objects (hundreds of thousands at 10,000 rules) on every full collection
            gc.freeze()
            forced = bool(args.source or args.all)  # crawled whatever the claims say
            results = run_on_reactor(
                lambda: (
                    crawl_sources(config, archive, sources, rule_index=index)
                    if forced
                    else claim_and_crawl(config, archive, sources, rule_index=index)
                )
            )
            if cache is not None:
                cache.save()
        report = deliver_due(archive, config.channels, utcnow)

    if results:
        table(
            [summary_line(r) for r in results.values()],
            ["source", "status", "fetched", "new", "seen", "off-topic", "errors", "detail"],
        )
    else:
        print("no source is due (use --all or --source NAME to crawl anyway)")
    print(f"alerts: {report.sent} sent, {report.retrying} to retry, {report.failed} failed")
    if results and all(r.status == "error" for r in results.values()):
        return EXIT_FAILED
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from scheduler.service.main import Service
    from scheduler.service.runtime import run_on_reactor

    config = _load(args, cached=True)
    with closing(config.open_archive()) as archive:
        service = Service(config, archive)
        run_on_reactor(service.run)
    return EXIT_OK


def _parse_query(text: str, config: Config | None = None) -> Any:
    """The query `text`; its `@name`s are the alias sets of `config` (None: built-in only)."""
    try:
        return config.parse_query(text) if config is not None else parse(text)
    except QueryError as exc:
        raise UsageError(f"bad query: {exc}") from exc


def cmd_search(args: argparse.Namespace) -> int:
    # a query without alias sets is checked before the config is read
    query = _parse_query(args.query) if "@" not in args.query else None
    config = _load(args)
    if query is None:
        query = _parse_query(args.query, config)
    with closing(config.open_archive()) as archive:
        found = search(
            archive, query, since=_since(args.since), source=args.source, limit=args.limit
        )
    _print_found(found, args.json)
    return EXIT_OK


def _print_found(found: list[tuple[Article, list[str]]], as_json: bool) -> None:
    if as_json:
        _print_json([article_json(article, matched) for article, matched in found])
        return
    for article, matched in found:
        when = iso(article.published or article.first_seen)
        print(f"{when}  {article.source}  {article.title or '(no title)'}")
        print(f"    {article.url}")
        print(f"    matched: {', '.join(matched)}")
    print(f"{len(found)} article{'s' if len(found) != 1 else ''}")


def cmd_rules_test(args: argparse.Namespace) -> int:
    config = _load(args)
    rule = next((r for r in config.rules if r.name == args.rule), None)
    if rule is None and args.rule.replace("-", "").replace("_", "").isalnum():
        names = ", ".join(r.name for r in config.rules) or "none"
        print(
            f"newswatch: no rule named {args.rule!r} (rules: {names}); testing it as a query",
            file=sys.stderr,
        )
    query = rule.query if rule is not None else _parse_query(args.rule, config)
    with closing(config.open_archive()) as archive:
        found = backtest(archive, query, _since(args.since), rule.sources if rule else ())
    _print_found(found, args.json)
    return EXIT_OK


def cmd_alerts(args: argparse.Namespace) -> int:
    config = _load(args)
    with closing(config.open_archive()) as archive:
        rows = archive.deliveries(status=args.status)
    if args.json:
        _print_json([alert_json(r) for r in rows])
        return EXIT_OK
    table(
        [
            [
                *(r.id, r.status, r.rule, r.channel, r.attempts, iso(r.created)),
                _alert_detail(r),
            ]
            for r in rows
        ],
        ["id", "status", "rule", "channel", "attempts", "created", "detail"],
    )
    return EXIT_OK


def _alert_detail(row: Delivery) -> str:
    if row.status == "merged":
        return f"merged into {row.merged_into}: one alert per story"
    if row.pass_id is not None:
        return "waits for the end of its crawl pass"
    return str(iso_or_none(row.sent) or row.last_error or f"next {iso(row.next_attempt)}")


def cmd_alerts_retry(args: argparse.Namespace) -> int:
    if not args.ids and not args.failed:
        raise UsageError("name the deliveries to retry (IDs from `newswatch alerts`) or --failed")
    if args.ids and args.failed:
        raise UsageError("give either delivery IDs or --failed, not both")
    config = _load(args)
    with closing(config.open_archive()) as archive:
        count = archive.retry_deliveries(utcnow(), None if args.failed else args.ids)
    print(f"{count} deliver{'y' if count == 1 else 'ies'} queued again")
    return EXIT_OK


def cmd_sources(args: argparse.Namespace) -> int:
    config = _load(args)
    with closing(config.open_archive()) as archive:
        states = archive.source_states()
        last_runs = archive.last_runs()
        recent = archive.articles_since(utcnow() - timedelta(hours=24))
    rows = [
        source_json(s, states.get(s.name), last_runs.get(s.name), recent.get(s.name, 0))
        for s in config.sources
    ]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    table(
        [
            [
                r["name"],
                r["status"] or "never run",
                r["last_run"],
                r["last_success"],
                r["consecutive_failures"],
                r["articles_24h"],
                _counts(r["last_run_counts"]),
                r["last_error"] or r["last_warning"] or "",
            ]
            for r in rows
        ],
        ["source", "status", "last run", "last success", "failures", "24h", "last run", "error"],
    )
    return EXIT_OK


def _counts(counts: dict[str, int] | None) -> str:
    if not counts:
        return ""
    return (
        f"{counts['new']} new, {counts['seen']} seen, {counts['off_topic']} off-topic, "
        f"{counts['errors']} errors"
    )


def cmd_sources_export(args: argparse.Namespace) -> int:
    from scheduler.web.opml import to_opml

    config = _load(args)
    sys.stdout.buffer.write(to_opml(config.sources, utcnow()))
    sys.stdout.flush()
    return EXIT_OK


def cmd_sources_import(args: argparse.Namespace) -> int:
    from scheduler.web.opml import OpmlError, read_opml, to_toml

    config = _load(args)
    try:
        data = Path(args.file).read_bytes()
        feeds = read_opml(data, (s.url for s in config.sources), (s.name for s in config.sources))
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    except OpmlError as exc:
        raise UsageError(f"{args.file}: {exc}; export the subscriptions as OPML again") from exc
    sys.stdout.write(to_toml(feeds))
    print(
        f"newswatch: {len(feeds)} feed{'s' if len(feeds) != 1 else ''} to add to {config.path} "
        "(feeds already configured are left out; the config is not changed)",
        file=sys.stderr,
    )
    return EXIT_OK


def feed_base(listen: str) -> str:
    """`http://HOST:PORT` of `[service] listen` (a wildcard address as 127.0.0.1)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def cmd_rules_aliases(args: argparse.Namespace) -> int:
    import difflib

    sets = _load(args).alias_sets()
    if args.name is not None:
        name = args.name.removeprefix("@").lower()
        if name not in sets:
            close = difflib.get_close_matches(name, list(sets), n=1, cutoff=0.7)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UsageError(
                f"no alias set named {args.name!r}{hint} (`newswatch rules aliases` lists "
                "them; define one under [aliases] in the config)"
            )
        chosen = [sets[name]]
    else:
        chosen = list(sets.values())
    if args.json:
        rows = [
            {
                "name": s.name,
                "builtin": s.builtin,
                "source": s.source,
                "note": s.note,
                "terms": list(s.terms),
            }
            for s in chosen
        ]
        _print_json(rows[0] if args.name is not None else rows)
    elif args.name is not None:
        (one,) = chosen
        origin = "built-in" if one.builtin else "from the config"
        print(f"@{one.name} ({origin}, {len(one.terms)} terms)")
        print(f"source: {one.source}")
        if one.note:
            print(f"note: {one.note}")
        for term in one.terms:
            print(f"  {term}")
    else:
        table(
            [
                [
                    f"@{s.name}",
                    "built-in" if s.builtin else "config",
                    len(s.terms),
                    _shorten(", ".join(s.terms), 60),
                ]
                for s in chosen
            ],
            ["SET", "FROM", "TERMS", "FIRST TERMS"],
        )
    return EXIT_OK


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_rules_feeds(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from scheduler.web.auth import feed_token

    config = _load(args)
    if config.web is None:
        raise UsageError(
            f"{config.path} has no [web] password and secret: feeds are served by the web view "
            "(docs/web.md)"
        )
    base = (args.base or feed_base(config.listen)).rstrip("/")
    rows = []
    for rule in config.rules:
        token = feed_token(config.web.secret, rule.name)
        path = f"{base}/feeds/{quote(rule.name, safe='')}"
        rows.append(
            {
                "rule": rule.name,
                "atom": f"{path}.atom?token={token}",
                "json": f"{path}.json?token={token}",
                "token": token,
            }
        )
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for row in rows:
        print(f"{row['rule']}\n  Atom: {row['atom']}\n  JSON: {row['json']}")
    if not rows:
        print("the config has no rule")
    return EXIT_OK


def cmd_rebuild(args: argparse.Namespace) -> int:
    from crawler.decide import neardup
    from crawler.decide.fingerprint import text_fingerprint

    config = _load(args)

    def compute(article: Article) -> tuple[Any, Any, Any]:
        text = article.text or article.summary or ""
        return text_fingerprint(text), neardup.sketch(text), neardup.title_key(article.title)

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        print(f"\rrebuilding stories [{bar}] {done}/{total}", end=end, file=sys.stderr, flush=True)

    with closing(config.open_archive()) as archive:
        total = archive.count_articles()
        stories = archive.rebuild_stories(compute, progress)
    print(f"{total} articles in {stories} stories; alert history kept")
    return EXIT_OK


EXPORT_FIELDS = [
    "id",
    "url",
    "urls",
    "source",
    "title",
    "author",
    "published",
    "first_seen",
    "language",
    "summary",
    "text",
    "story",
    "also_reported_by",
]


def export_record(article: Article) -> dict[str, Any]:
    return {
        "id": article.id,
        "url": article.url,
        "urls": list(article.urls),
        "source": article.source,
        "title": article.title,
        "author": article.author,
        "published": iso_or_none(article.published),
        "first_seen": iso(article.first_seen),
        "language": article.language,
        "summary": article.summary,
        "text": article.text,
        "story": str(article.story_id) if article.story_id is not None else None,
        "also_reported_by": [
            {"source": a.source, "url": a.url, "title": a.title} for a in article.also_reported_by
        ],
    }


def cmd_export(args: argparse.Namespace) -> int:
    config = _load(args)
    since = _since(args.since)
    with closing(config.open_archive()) as archive:
        records = (export_record(article) for article in archive.iter_articles(since=since))
        if args.format == "jsonl":
            for record in records:
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(sys.stdout, fieldnames=EXPORT_FIELDS, lineterminator="\n")
            writer.writeheader()
            for record in records:
                record["urls"] = " ".join(record["urls"])
                record["also_reported_by"] = " ".join(a["url"] for a in record["also_reported_by"])
                writer.writerow(record)
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from crawler.archive.migrate import migrate_archive

    config = _load(args)
    if config.archive_path is None:
        raise UsageError(
            "migrate copies the SQLite archive named by [archive] path, and this config names "
            "a PostgreSQL archive ([archive] url); point -c at the config of the SQLite archive"
        )
    if not args.to.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"--to must be a postgresql:// URL (got {args.to.split(':', 1)[0]}:...)")
    shown: dict[str, int] = {}

    def progress(name: str, done: int, total: int) -> None:
        step = max(total // 20, 1)  # about every 5 % of a table, and its end
        if done >= total or done - shown.get(name, 0) >= step:
            shown[name] = done
            print(f"migrate: {name} {done}/{total}", file=sys.stderr, flush=True)

    started = time.monotonic()
    copied = migrate_archive(config.archive_path, args.to, progress)
    seconds = time.monotonic() - started
    total = sum(copied.values())
    print(
        f"copied {copied.get('articles', 0)} articles ({total} rows in {len(copied)} tables) "
        f"in {seconds:.1f} s to {without_password(args.to)}; {config.archive_path} is "
        "unchanged. Set [archive] url to this database in every node's config."
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from scheduler.cli.demo import run

    return run(keep=args.keep)  # needs no config: it writes its own


# ---------------------------------------------------------------------------------------------
# argument parsing


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        help=f"config file (default: $NEWSWATCH_CONFIG, else {DEFAULT_CONFIG})",
    )
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="tracebacks, debug logs"
    )
    parser = argparse.ArgumentParser(
        prog="newswatch",
        parents=[common],
        description="Watch news sources, keep a searchable archive, send keyword alerts.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> Any:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("init", cmd_init, "write a commented starter config (never overwrites)")
    p.add_argument("dir", nargs="?", help="directory for newswatch.toml (default: the -c path)")
    add("check", cmd_check, "validate the config; print every problem")
    p = add("crawl", cmd_crawl, "one pass for cron: crawl due sources, archive, alert")
    p.add_argument("--source", action="append", metavar="NAME", help="crawl this source (repeat)")
    p.add_argument("--all", action="store_true", help="crawl every source, due or not")
    add("run", cmd_run, "the service: crawl on schedule and deliver alerts until stopped")
    p = add("search", cmd_search, "search the archive in the rule language")
    p.add_argument("query", help="e.g. 'NATO AND \"air defence\"'")
    p.add_argument("--since", metavar="DUR", help="only articles first seen within DUR (7d)")
    p.add_argument("--source", metavar="NAME", help="only this source")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")

    rules = sub.add_parser("rules", parents=[common], help="work with rules")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    p = rules_sub.add_parser(
        "test",
        parents=[common],
        help="backtest: archived articles a rule (or query) would have alerted on",
    )
    p.set_defaults(func=cmd_rules_test)
    p.add_argument("rule", metavar="NAME-or-QUERY")
    p.add_argument("--since", metavar="DUR", default="30d", help="how far back (default 30d)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")

    p = rules_sub.add_parser(
        "aliases",
        parents=[common],
        help="the alias sets usable as @name in queries, built-in and from the config",
    )
    p.set_defaults(func=cmd_rules_aliases)
    p.add_argument("name", nargs="?", metavar="NAME", help="show only this set, with its terms")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")

    p = rules_sub.add_parser(
        "feeds", parents=[common], help="each rule's Atom and JSON Feed URLs with their tokens"
    )
    p.set_defaults(func=cmd_rules_feeds)
    p.add_argument(
        "--base",
        metavar="URL",
        help="the web view's public address (default: http:// and [service] listen)",
    )
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")

    p = add("alerts", cmd_alerts, "the delivery log (outbox)")
    p.add_argument(
        "--status",
        choices=["pending", "sent", "failed", "held", "digested", "merged"],
        help="held: waiting for a digest; digested: sent inside a digest; merged: a copy of a "
        "story whose alert another row sends",
    )
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    alerts_sub = p.add_subparsers(dest="alerts_command", metavar="COMMAND")
    r = alerts_sub.add_parser("retry", parents=[common], help="queue failed deliveries again")
    r.set_defaults(func=cmd_alerts_retry)
    r.add_argument("ids", nargs="*", type=int, metavar="ID")
    r.add_argument("--failed", action="store_true", help="every failed delivery")

    p = add("sources", cmd_sources, "per-source health")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    sources_sub = p.add_subparsers(dest="sources_command", metavar="COMMAND")
    r = sources_sub.add_parser("export", parents=[common], help="the sources as OPML 2.0")
    r.set_defaults(func=cmd_sources_export)
    r.add_argument("--format", choices=["opml"], default="opml")
    r = sources_sub.add_parser(
        "import",
        parents=[common],
        help="an OPML file's feeds as [[sources]] TOML to add (the config is not changed)",
    )
    r.set_defaults(func=cmd_sources_import)
    r.add_argument("file", metavar="FILE", help="an OPML file (from a feed reader)")
    add(
        "rebuild",
        cmd_rebuild,
        "recompute fingerprints and stories of the whole archive (after a method change)",
    )
    p = add("export", cmd_export, "the archive on stdout")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--since", metavar="DUR")
    p = add(
        "migrate",
        cmd_migrate,
        "copy the whole SQLite archive into an empty PostgreSQL database (all or nothing)",
    )
    p.add_argument("--to", metavar="URL", required=True, help="postgresql://USER@HOST/DATABASE")
    p = add("demo", cmd_demo, "offline demo, needs no config: crawl a sample site, show alerts")
    p.add_argument("--keep", metavar="DIR", help="keep the demo's config and archive in DIR")
    return parser


def setup_logging(debug: bool) -> None:
    """Warnings and errors to stderr; everything with --debug. Only the CLI configures logging."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("newswatch: %(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    if not debug:
        # Fetch failures are recorded on the source and shown in the summary; Scrapy's own
        # tracebacks for them (robots.txt of an unreachable host, ...) are only for --debug.
        for quiet in ("scrapy.downloadermiddlewares.robotstxt", "scrapy.core.scraper"):
            logging.getLogger(quiet).setLevel(logging.CRITICAL)
        # trafilatura warns about every page without article text: that is a page error,
        # recorded on its source
        logging.getLogger("trafilatura").setLevel(logging.ERROR)
        # "maximum number of running instances reached" while a long crawl runs: by design
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        # one line per web request (method, path, status; never a query string): --debug only
        logging.getLogger("newswatch.web.access").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = getattr(args, "config", None)
    args.debug = getattr(args, "debug", False)
    setup_logging(args.debug)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(
            f"newswatch: the config has {count} problem{'s' if count != 1 else ''}; "
            "fix them and run `newswatch check`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except UsageError as exc:
        print(f"newswatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as exc:
        if args.debug:
            raise
        print(
            f"newswatch: {archive_trouble(exc)}, then run the command again; what was committed "
            "before is kept, and unfinished work is redone",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except (CrawlerError, SchedulerError, OSError) as exc:
        if args.debug:
            raise
        print(f"newswatch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
