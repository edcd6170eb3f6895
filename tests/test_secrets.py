"""A config's secrets (SMTP password, webhook signing key, the tokens in channel URLs) never
show: not in log lines (even with --debug), not in `alerts`, not in `check`'s problems."""

from __future__ import annotations

import logging
from pathlib import Path

from nw import newswatch, write_config
from servers import FixtureSite, WebhookReceiver

from crawler.model import Channel
from scheduler.config.secrets import MASK, RedactingFilter, channel_secrets, redact

TOKEN = "Tk9sZWFrVG9rZW4xMjM"  # an Apprise target's token, in its URL path
SECRET = "hmac-signing-key-42"
PASSWORD = "correct-horse-battery"
RULE = """
[[rules]]
name = "air-defence"
query = 'NATO AND "air defence"'
notify = ["chat", "hook"]
"""


def test_channel_secrets_and_redact() -> None:
    channels = {
        "mail": Channel("mail", "email", {"host": "127.0.0.1", "password": PASSWORD}),
        "hook": Channel(
            "hook",
            "webhook",
            {
                "url": "https://user:pa55word9@127.0.0.1/hooks?token=qs-token-77&v=1",
                "secret": SECRET,
            },
        ),
        "chat": Channel("chat", "apprise", {"url": f"json://127.0.0.1:9/api/{TOKEN}"}),
    }
    secrets = channel_secrets(channels)
    for value in (
        PASSWORD,
        SECRET,
        "pa55word9",
        "qs-token-77",
        TOKEN,
        f"json://127.0.0.1:9/api/{TOKEN}",
    ):
        assert value in secrets, value
    assert "127.0.0.1" not in secrets and "api" not in secrets and "1" not in secrets
    text = f"POST to json://127.0.0.1:9/api/{TOKEN} failed; key {SECRET}, password {PASSWORD}"
    masked = redact(text, secrets)
    assert masked == f"POST to {MASK} failed; key {MASK}, password {MASK}"


def test_the_log_filter_masks_messages_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent %s", (TOKEN,), None)
    try:
        raise RuntimeError(f"boom {TOKEN}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter([TOKEN]).filter(record)
    line = logging.Formatter().format(record)
    assert TOKEN not in line and "sent [secret]" in line and "boom [secret]" in line


def test_a_failing_channel_never_shows_its_token(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    webhook.set_responses([(500, {"Content-Type": "text/plain"}, f"no such token {TOKEN}")])
    hook = webhook.url.replace("http://", f"http://bot:{PASSWORD}@") + f"?token={SECRET}"
    config = write_config(
        tmp_path,
        f'[[sources]]\nname = "defence-daily"\nfeed = "{site.url}/feeds/defence.xml"\n'
        + RULE
        + f'\n[channels.chat]\ntype = "apprise"\nurl = "json://{webhook.url[7:]}/{TOKEN}"\n'
        + f'\n[channels.hook]\ntype = "webhook"\nurl = "{hook}"\nsecret = "{SECRET}"\n',
    )
    crawl = newswatch(config, "--debug", "crawl")
    assert crawl.returncode in (0, 1), crawl.stderr
    # both channels really tried (and failed); the URL's user:password went as Basic auth
    assert {r.path.split("/")[1].split("?")[0] for r in webhook.requests} == {"hook"}
    assert len(webhook.requests) == 2
    [basic] = [r for r in webhook.requests if "Authorization" in r.headers]
    assert basic.headers["Authorization"].startswith("Basic ")
    alerts = newswatch(config, "alerts", "--status", "pending")
    listed = newswatch(config, "alerts", "--json")
    assert "the receiver answered HTTP 500" in listed.stdout
    for output in (crawl.stdout, crawl.stderr, alerts.stdout, alerts.stderr, listed.stdout):
        for secret in (TOKEN, SECRET, PASSWORD):
            assert secret not in output, (secret, output[-2000:])


def test_check_does_not_echo_a_secret_in_a_problem(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'[channels.hook]\ntype = "webhook"\nurl = "ftp://127.0.0.1/hook?token={SECRET}"\n',
    )
    check = newswatch(config, "check")
    assert check.returncode == 2
    assert "channels.hook.url" in check.stderr and MASK in check.stderr
    assert SECRET not in check.stderr + check.stdout
