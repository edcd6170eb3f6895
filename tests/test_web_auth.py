"""The web view's access rules (scheduler/web/auth.py) and the `[web]` table of the config."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from servers import free_port
from webkit import API_TOKEN, PASSWORD, SECRET, kit

from scheduler.config import ConfigError, load
from scheduler.web import auth
from scheduler.web.app import WebServer
from scheduler.web.options import WebOptions

OPTIONS = WebOptions("a password", "a-secret-of-enough-length", ("token-0123456789abcdef",))


def test_sessions_are_signed_and_revoked_by_a_new_password_or_secret() -> None:
    cookie = auth.new_session(OPTIONS)
    assert auth.session_ok(OPTIONS, cookie)
    assert not auth.session_ok(OPTIONS, cookie[:-1] + ("A" if cookie[-1] != "A" else "B"))
    assert not auth.session_ok(OPTIONS, "")
    assert not auth.session_ok(OPTIONS, "web")
    assert not auth.session_ok(WebOptions("new password", OPTIONS.secret), cookie)
    assert not auth.session_ok(WebOptions(OPTIONS.password, "another-secret-0123456"), cookie)
    assert OPTIONS.password not in cookie and OPTIONS.secret not in cookie


def test_password_and_tokens() -> None:
    assert auth.password_ok(OPTIONS, "a password")
    assert not auth.password_ok(OPTIONS, "a passwor")
    assert not auth.password_ok(OPTIONS, None)
    assert not auth.password_ok(WebOptions("", "x" * 20), "")  # an empty password never
    assert auth.api_token_ok(OPTIONS.api_tokens, "Bearer token-0123456789abcdef")
    assert auth.api_token_ok(OPTIONS.api_tokens, "bearer token-0123456789abcdef")
    assert not auth.api_token_ok(OPTIONS.api_tokens, "Basic token-0123456789abcdef")
    assert not auth.api_token_ok(OPTIONS.api_tokens, "Bearer token-0123456789abcdeg")
    assert not auth.api_token_ok(OPTIONS.api_tokens, None)
    assert not auth.api_token_ok((), "Bearer ")
    assert not auth.api_token_ok(("",), "Bearer ")


def test_feed_tokens_differ_per_rule_and_secret_and_are_checked() -> None:
    token = auth.feed_token(OPTIONS.secret, "air-defence")
    assert token == auth.feed_token(OPTIONS.secret, "air-defence")  # stable
    assert token != auth.feed_token(OPTIONS.secret, "navy")
    assert token != auth.feed_token("another-secret-0123456", "air-defence")
    assert auth.feed_token_ok(OPTIONS.secret, "air-defence", token)
    assert not auth.feed_token_ok(OPTIONS.secret, "navy", token)
    assert not auth.feed_token_ok(OPTIONS.secret, "air-defence", None)
    assert not auth.feed_token_ok(OPTIONS.secret, "air-defence", "é" + token)
    assert OPTIONS.secret not in token


def test_origin() -> None:
    assert auth.same_origin("http://127.0.0.1:9180", "127.0.0.1:9180")
    assert auth.same_origin("https://News.example.org", "news.example.org")
    assert not auth.same_origin("http://evil.example", "127.0.0.1:9180")
    assert not auth.same_origin("null", "127.0.0.1:9180")
    assert not auth.same_origin(None, "127.0.0.1:9180")
    assert not auth.same_origin("javascript://127.0.0.1:9180", "127.0.0.1:9180")


def test_the_limiter_counts_failures_per_client_within_the_window() -> None:
    limiter = auth.SignInLimiter(failures=3, window=60)
    for t in (0.0, 1.0, 2.0):
        assert limiter.wait("a", t) is None
        limiter.failed("a", t)
    assert limiter.wait("a", 3.0) == pytest.approx(57.0)
    assert limiter.wait("b", 3.0) is None  # another client
    assert limiter.wait("a", 60.5) is None  # the first failure left the window
    limiter.succeeded("a")
    assert limiter.wait("a", 61.0) is None


def write(tmp_path: Path, web: str) -> Path:
    path = tmp_path / "newswatch.toml"
    path.write_text('[archive]\npath = "nw.db"\n\n[web]\n' + web, encoding="utf-8")
    return path


def test_the_web_table(tmp_path: Path) -> None:
    config = load(write(tmp_path, 'password = "pw"\nsecret = "${S}"\n'), environ={"S": "s" * 16})
    assert config.web == WebOptions("pw", "s" * 16, ())
    off = load(write(tmp_path, 'password = "${P:-}"\nsecret = "${S:-}"\n'), environ={})
    assert off.web is None  # no password: no web view
    tokens = (
        'password = "pw"\nsecret = "'
        + "s" * 16
        + '"\napi_tokens = ["${T:-}", "t'
        + "x" * 16
        + '"]\n'
    )
    assert load(write(tmp_path, tokens), environ={}).web.api_tokens == ("t" + "x" * 16,)  # type: ignore[union-attr]
    with pytest.raises(ConfigError) as caught:
        load(
            write(tmp_path, 'password = "pw"\nsecret = "short-secret"\napi_tokens = ["tok"]\n'),
            environ={},
        )
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "web.secret: must be at least 16 characters" in text
    assert "web.api_tokens: must be at least 16 characters" in text
    assert "short-secret" not in text and "tok" not in text.replace("token", "")
    # a password set while the secret's variable is unset: the problem reads plainly
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, 'password = "pw-long"\nsecret = "${S:-}"\n'), environ={})
    [problem] = caught.value.problems
    assert problem.key == "web.secret"
    assert problem.message.startswith("must be at least 16 characters; make one with `python3")


def test_the_access_log_shows_no_token_or_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real server (`WebServer`, as `run` starts it) logs method, path and status only."""
    k = kit(tmp_path)
    listen = f"127.0.0.1:{free_port()}"
    token = auth.feed_token(SECRET, "navy")

    async def main() -> None:
        server = WebServer(listen, k.site())
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                base = f"http://{listen}"
                async with session.get(f"{base}/feeds/navy.atom?token={token}") as answer:
                    assert answer.status == 200
                async with session.get(f"{base}/feeds/navy.json?token=wrong{token}") as answer:
                    assert answer.status == 404
                headers = {"Authorization": f"Bearer {API_TOKEN}"}
                async with session.get(f"{base}/api/v1/sources", headers=headers) as answer:
                    assert answer.status == 200
                form = {"password": PASSWORD}
                async with session.post(
                    f"{base}/login", data=form, headers={"Origin": base}, allow_redirects=False
                ) as answer:
                    assert answer.status == 303
        finally:
            await server.close()

    with caplog.at_level("DEBUG"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "newswatch.web.access"]
    assert len(lines) == 4, lines
    assert lines[0].startswith("GET /feeds/navy.atom 200")
    for secret in (token, API_TOKEN, PASSWORD, SECRET):
        assert all(secret not in r.getMessage() for r in caplog.records)
