"""The web view, feeds and API of `newswatch run` (docs/web.md), on the service's own loop.

One concern per module:

- `app`: the aiohttp application: routes, security headers, the session gate; `WebServer`
  serves it (with /healthz and /metrics) on ``[service] listen``
- `site`: the `Site` every handler reads (archive, sources, rules, `[web]`), the session test
- `options`: the `[web]` table as a value (`WebOptions`)
- `status`: GET /healthz and GET /metrics, open to all, answering as before the web view
- `auth`: the password, signed sessions, sign-in rate limit, Origin, feed and API tokens (pure)
- `rows`: reading storage records (or mappings of their columns) and their times
- `reports`: rows to the JSON of the commands' ``--json`` and to the pages' views (pure)
- `bench`: a rule or an edited query over the archive, as ``rules test`` answers it
- `chart`: matches per day as inline SVG (pure)
- `pages`: the HTML pages (Jinja2 with autoescape, templates/)
- `feeds`: Atom 1.0 and JSON Feed 1.1 per rule (token in the URL, no session)
- `api`: GET /api/v1/... with a Bearer token
- `opml`: sources to OPML 2.0 and an OPML file's feeds to ``[[sources]]`` TOML (pure)

Nothing here writes to the archive: the config file stays the one place where sources, rules
and channels change.
"""
