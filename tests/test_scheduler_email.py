"""The email channel (scheduler/delivery/notify/email.py) against a real SMTP server (aiosmtpd) on
127.0.0.1: headers, text and HTML parts, digests, source-health notices, AUTH, STARTTLS and
implicit TLS with certificate verification, and every kind of refusal. Last, `deliver_due`
with a real archive sending to email, apprise and a dead webhook at once."""

from __future__ import annotations

import contextlib
import json
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from hostile import SlowServer, self_signed_certificate
from servers import WebhookReceiver, free_port

from crawler.archive import AlertIn, Archive, ArticleIn
from crawler.model import Channel
from scheduler.delivery.notify import DeliveryError, Message
from scheduler.delivery.notify.email import build, message_id, send
from scheduler.delivery.outbox import deliver_due
from scheduler.delivery.render import alert_payload, email_subject

SENDER = "newswatch@example.org"
TO = ("analyst@example.org", "desk@example.org")

# ------------------------------------------------------------------------------ a real server


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated: bool | None
    tls: bool


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every message; `rcpt_reply` / `data_reply` answer RCPT
    or DATA with an error instead (`refuse` limits the RCPT reply to some addresses)."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    refuse: tuple[str, ...] = ()
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply and (not self.refuse or address in self.refuse):
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        transport = server.transport
        implicit_tls = transport is not None and transport.get_extra_info("sslcontext") is not None
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                authenticated=session.authenticated,
                tls=session.ssl is not None or implicit_tls,
            )
        )
        return "250 Message accepted"


@dataclass
class Mailserver:
    port: int
    inbox: Inbox


StartServer = Callable[..., Mailserver]


@pytest.fixture
def smtp_server() -> Iterator[StartServer]:
    """`smtp_server(inbox=None, **aiosmtpd_options)` starts a real SMTP server on 127.0.0.1
    and a free port (aiosmtpd's Controller cannot take port 0); stopped at teardown."""
    started: list[Controller] = []

    def start(inbox: Inbox | None = None, **options: Any) -> Mailserver:
        inbox = inbox or Inbox()
        port = free_port()
        controller = Controller(
            inbox, hostname="127.0.0.1", port=port, server_hostname="mx.test", **options
        )
        controller.start()
        started.append(controller)
        return Mailserver(port, inbox)

    yield start
    for controller in reversed(started):
        controller.stop()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file)."""
    cert_pem, key_pem = self_signed_certificate("localhost", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def mail_channel(port: int, security: str = "none", **options: Any) -> Channel:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "username": None,
        "password": None,
        "from": SENDER,
        "to": TO,
        "timeout": 5.0,
    }
    values.update(options)
    return Channel(name="analysts", type="email", options=values)


# ------------------------------------------------------------------------------ payloads

ARTICLE = {
    "url": "https://news.example/2025/06/nato-air-defence",
    "title": "NATO boosts air defence on the eastern flank",
    "source": "wire",
    "published": "2025-06-09T09:00:00Z",
    "author": "A. Writer",
    "language": "en",
    "summary": "NATO agreed on air defence.",
    "text": "Ministers said NATO agreed on more air defence; Patriot batteries will follow.",
}
ALSO = [{"source": "other-wire", "url": "https://other.example/nato", "title": "NATO copy"}]


def alert(
    title: str = str(ARTICLE["title"]),
    delivery: str | None = None,
    also: list[dict[str, Any]] | None = None,
    **article: Any,
) -> dict[str, Any]:
    return alert_payload(
        delivery=delivery or str(uuid.uuid4()),
        rule="air-defence",
        matched=["nato", "air defence"],
        article={**ARTICLE, "title": title, **article},
        story_id=7,
        also_reported_by=ALSO if also is None else also,
        created="2025-06-09T10:01:02Z",
    )


def as_message(payload: dict[str, Any]) -> Message:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Message(payload["event"], payload["delivery"], payload, body)


def parts(message: EmailMessage) -> tuple[str, str]:
    """The (text/plain, text/html) alternatives, decoded."""
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    return str(plain.get_content()), str(rich.get_content())


# ------------------------------------------------------------------------------ alerts


def test_an_alert_arrives_with_headers_and_both_parts(smtp_server: StartServer) -> None:
    server = smtp_server()
    payload = alert()
    send(mail_channel(server.port), as_message(payload))
    [got] = server.inbox.received
    assert got.mail_from == SENDER
    assert got.rcpt_tos == list(TO)
    assert got.authenticated is None and not got.tls

    mail = got.message
    assert (
        mail["Subject"] == "[newswatch] air-defence: NATO boosts air defence on the eastern flank"
    )
    assert mail["From"] == SENDER
    assert [str(a.addr_spec) for a in mail["To"].addresses] == list(TO)
    assert mail["Message-ID"] == f"<{payload['delivery']}@newswatch>"
    assert mail["X-Newswatch-Delivery"] == payload["delivery"]
    assert mail["X-Newswatch-Event"] == "alert"
    assert mail["Date"].datetime is not None and mail["Date"].datetime.utcoffset() is not None

    text, html = parts(mail)
    for body in (text, html):
        assert "NATO boosts air defence on the eastern flank" in body
        assert "wire" in body
        assert "2025-06-09 09:00 UTC" in body
        assert "https://news.example/2025/06/nato-air-defence" in body
        assert "other-wire" in body and "https://other.example/nato" in body
    assert "Ministers said **NATO** agreed on more **air defence**; Patriot" in text
    assert "Also reported by:" in text
    assert "Ministers said <mark>NATO</mark> agreed on more <mark>air defence</mark>;" in html
    assert '<a href="https://news.example/2025/06/nato-air-defence">' in html
    assert "Also reported by" in html


def test_addresses_with_display_names(smtp_server: StartServer) -> None:
    server = smtp_server()
    named = ("Analyst One <analyst@example.org>", "desk@example.org")
    channel = mail_channel(server.port, to=named, **{"from": "Newswatch <newswatch@example.org>"})
    send(channel, as_message(alert()))
    [got] = server.inbox.received
    assert got.mail_from == SENDER
    assert got.rcpt_tos == list(TO)
    assert got.message["From"].addresses[0].display_name == "Newswatch"
    assert str(got.message["To"]) == "Analyst One <analyst@example.org>, desk@example.org"


def test_a_retried_delivery_has_the_same_message_id(smtp_server: StartServer) -> None:
    server = smtp_server()
    message = as_message(alert())
    send(mail_channel(server.port), message)
    send(mail_channel(server.port), message)
    first, second = (got.message for got in server.inbox.received)
    assert first["Message-ID"] == second["Message-ID"] == f"<{message.delivery}@newswatch>"
    other = as_message(alert())
    send(mail_channel(server.port), other)
    assert server.inbox.received[2].message["Message-ID"] != first["Message-ID"]


def test_html_is_escaped(smtp_server: StartServer) -> None:
    server = smtp_server()
    title = "<script>alert('x')</script> NATO & allies"
    text_body = "A <b>bold</b> claim: NATO & air defence <img src=x onerror=alert(1)>."
    send(mail_channel(server.port), as_message(alert(title, text=text_body)))
    mail = server.inbox.received[0].message
    assert mail["Subject"] == f"[newswatch] air-defence: {title}"
    text, html = parts(mail)
    assert title in text  # plain text shows it as it is
    assert "<script>" not in html and "<b>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; NATO &amp; allies" in html
    assert (
        "A &lt;b&gt;bold&lt;/b&gt; claim: <mark>NATO</mark> &amp; <mark>air defence</mark>" in html
    )


def test_a_link_that_is_not_http_is_not_linked(smtp_server: StartServer) -> None:
    server = smtp_server()
    payload = alert(also=[{"source": "odd", "url": "javascript:alert(1)", "title": "Odd"}])
    send(mail_channel(server.port), as_message(payload))
    _, html = parts(server.inbox.received[0].message)
    assert 'href="javascript' not in html
    assert "odd: Odd" in html


def test_accents_and_line_breaks_in_a_title(smtp_server: StartServer) -> None:
    server = smtp_server()
    title = "L'OTAN renforce la défense aérienne\r\nBcc: victim@example.org"
    send(mail_channel(server.port), as_message(alert(title)))
    [got] = server.inbox.received
    mail = got.message
    assert mail["Subject"] == (
        "[newswatch] air-defence: L'OTAN renforce la défense aérienne Bcc: victim@example.org"
    )
    assert mail["Bcc"] is None
    assert got.rcpt_tos == list(TO)
    text, html = parts(mail)
    assert "L'OTAN renforce la défense aérienne" in text
    assert "défense aérienne" in html


def test_the_email_is_seven_bit_clean() -> None:
    mail = build(mail_channel(25), as_message(alert("Défense aérienne: l'OTAN")))
    raw = mail.as_bytes()
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.splitlines())


def test_message_id_of_an_odd_delivery_id() -> None:
    assert message_id("3f2b-uuid") == "<3f2b-uuid@newswatch>"
    assert message_id("a b<c>@d") == "<a-b-c--d@newswatch>"
    assert message_id("") == "<delivery@newswatch>"


# ------------------------------------------------------------------------------ digest, health


def test_a_digest_is_one_email_listing_every_alert(smtp_server: StartServer) -> None:
    server = smtp_server()
    titles = ["NATO summit opens", "Air defence for the Baltics", "OTAN: défense aérienne"]
    alerts = []
    for number, title in enumerate(titles, 1):
        one = alert(title, url=f"https://news.example/{number}", also=[] if number > 1 else None)
        alerts.append({key: one[key] for key in ("rule", "matched", "article", "story")})
    digest = {
        "event": "digest",
        "delivery": str(uuid.uuid4()),
        "rule": "air-defence",
        "from": "2025-06-09T09:00:00Z",
        "to": "2025-06-09T10:00:00Z",
        "alerts": alerts,
    }
    send(mail_channel(server.port), as_message(digest))
    [got] = server.inbox.received
    mail = got.message
    assert mail["Subject"] == "[newswatch] air-defence: 3 alerts (2025-06-09 09:00 – 10:00 UTC)"
    assert mail["X-Newswatch-Event"] == "digest"
    assert mail["Message-ID"] == f"<{digest['delivery']}@newswatch>"
    text, html = parts(mail)
    for number, title in enumerate(titles, 1):
        assert f"{number}. {title}" in text
        assert f"https://news.example/{number}" in text
        assert f'<a href="https://news.example/{number}">' in html
    assert text.count("Source:    wire") == 3
    assert html.count("<h3>") == 3
    assert text.index(titles[0]) < text.index(titles[1]) < text.index(titles[2])
    assert "**NATO**" in text and "<mark>NATO</mark>" in html
    assert text.count("Also reported by:") == 1


def test_digest_subjects() -> None:
    one: dict[str, Any] = {"event": "digest", "rule": "r", "alerts": [{}]}
    one |= {"from": "2025-06-08T10:00:00Z", "to": "2025-06-09T10:00:00Z"}
    assert (
        email_subject(one) == "[newswatch] r: 1 alert (2025-06-08 10:00 UTC – 2025-06-09 10:00 UTC)"
    )


@pytest.mark.parametrize("state", ["failing", "silent", "recovered"])
def test_a_source_health_notice(smtp_server: StartServer, state: str) -> None:
    server = smtp_server()
    notice = {
        "event": "source-health",
        "delivery": str(uuid.uuid4()),
        "source": "nato-newsroom",
        "state": state,
        "detail": "3 consecutive failures; last error: HTTP 503 <Service Unavailable>",
    }
    send(mail_channel(server.port), as_message(notice))
    mail = server.inbox.received[0].message
    assert mail["Subject"] == f"[newswatch] source nato-newsroom is {state}"
    assert mail["X-Newswatch-Event"] == "source-health"
    assert mail["X-Newswatch-Delivery"] == notice["delivery"]
    text, html = parts(mail)
    assert f"Source nato-newsroom is {state}." in text
    assert "last error: HTTP 503 <Service Unavailable>" in text
    assert "last error: HTTP 503 &lt;Service Unavailable&gt;" in html


# ------------------------------------------------------------------------------ AUTH


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    good = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"newswatch"
        and auth_data.password == b"s3cret pass"
    )
    return AuthResult(success=good, handled=False)  # handled=False: aiosmtpd answers 535


# AUTH without TLS is what these tests want; aiosmtpd warns about it on every connection
plain_auth = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def auth_server(smtp_server: StartServer) -> Mailserver:
    return smtp_server(authenticator=authenticator, auth_required=True, auth_require_tls=False)


@plain_auth
def test_login_with_username_and_password(smtp_server: StartServer) -> None:
    server = auth_server(smtp_server)
    channel = mail_channel(server.port, username="newswatch", password="s3cret pass")
    send(channel, as_message(alert()))
    [got] = server.inbox.received
    assert got.authenticated is True


@plain_auth
def test_a_wrong_password_says_check_username_password(smtp_server: StartServer) -> None:
    server = auth_server(smtp_server)
    channel = mail_channel(server.port, username="newswatch", password="wrong")
    with pytest.raises(DeliveryError, match="check username/password"):
        send(channel, as_message(alert()))
    assert server.inbox.received == []


@plain_auth
def test_no_login_where_the_server_requires_one(smtp_server: StartServer) -> None:
    server = auth_server(smtp_server)
    with pytest.raises(DeliveryError, match="530") as raised:
        send(mail_channel(server.port), as_message(alert()))
    assert "refused the sender" in str(raised.value)
    assert server.inbox.received == []


def test_login_where_the_server_offers_no_auth(smtp_server: StartServer) -> None:
    server = smtp_server()  # aiosmtpd offers AUTH only over TLS by default
    channel = mail_channel(server.port, username="newswatch", password="s3cret pass")
    with pytest.raises(DeliveryError, match="does not offer AUTH"):
        send(channel, as_message(alert()))
    assert server.inbox.received == []


# ------------------------------------------------------------------------------ TLS


def test_starttls_rejects_an_untrusted_certificate(
    smtp_server: StartServer, certificate: tuple[Path, Path]
) -> None:
    server = smtp_server(tls_context=server_tls(certificate), require_starttls=True)
    with pytest.raises(DeliveryError) as raised:
        send(mail_channel(server.port, "starttls"), as_message(alert()))
    assert "TLS" in str(raised.value) and "certificate" in str(raised.value)
    assert server.inbox.received == []


def test_starttls_with_a_trusted_certificate_and_login(
    smtp_server: StartServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verification is real: trusting the certificate (SSL_CERT_FILE, as an operator with a
    private CA would) makes the same server work, with AUTH only after STARTTLS."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    server = smtp_server(
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    channel = mail_channel(server.port, "starttls", username="newswatch", password="s3cret pass")
    send(channel, as_message(alert()))
    [got] = server.inbox.received
    assert got.tls and got.authenticated is True


def test_starttls_never_falls_back_to_plain_text(smtp_server: StartServer) -> None:
    server = smtp_server()  # no tls_context: no STARTTLS offered
    with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        send(mail_channel(server.port, "starttls"), as_message(alert()))
    assert server.inbox.received == []


def test_implicit_tls(
    smtp_server: StartServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = smtp_server(ssl_context=server_tls(certificate))
    with pytest.raises(DeliveryError) as raised:
        send(mail_channel(server.port, "tls"), as_message(alert()))
    assert "TLS" in str(raised.value) and "certificate" in str(raised.value)
    assert server.inbox.received == []

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    send(mail_channel(server.port, "tls"), as_message(alert()))
    [got] = server.inbox.received
    assert got.tls


def test_tls_to_a_server_that_speaks_plain_smtp(smtp_server: StartServer) -> None:
    server = smtp_server()
    with pytest.raises(DeliveryError, match="TLS"):
        send(mail_channel(server.port, "tls"), as_message(alert()))


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("stage", "reply", "kind"),
    [
        ("rcpt", "451 4.3.0 Mailbox busy, try later", "temporary"),
        ("rcpt", "550 5.1.1 No such user", "permanent"),
        ("data", "451 4.7.1 Greylisted, try later", "temporary"),
        ("data", "554 5.7.1 Rejected as spam", "permanent"),
    ],
)
def test_refusals_are_delivery_errors(
    smtp_server: StartServer, stage: str, reply: str, kind: str
) -> None:
    inbox = Inbox(rcpt_reply=reply) if stage == "rcpt" else Inbox(data_reply=reply)
    server = smtp_server(inbox)
    with pytest.raises(DeliveryError) as raised:
        send(mail_channel(server.port), as_message(alert()))
    why = str(raised.value)
    assert reply in why and kind in why
    assert ("every recipient" if stage == "rcpt" else "refused the message") in why
    assert raised.value.retry_after is None
    assert inbox.received == []


def test_a_partly_refused_message_counts_as_delivered(
    smtp_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The accepted recipient has it; a retry would send that one a copy."""
    inbox = Inbox(rcpt_reply="550 5.1.1 No such user", refuse=(TO[1],))
    server = smtp_server(inbox)
    send(mail_channel(server.port), as_message(alert()))
    [got] = inbox.received
    assert got.rcpt_tos == [TO[0]]
    assert "refused some recipients" in caplog.text and TO[1] in caplog.text


def test_connection_refused() -> None:
    with pytest.raises(DeliveryError, match="connection refused"):
        send(mail_channel(free_port()), as_message(alert()))


def test_a_silent_server_times_out() -> None:
    with SlowServer(mode="silent") as silent:
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="did not answer in time"):
            send(mail_channel(silent.port, timeout=1.0), as_message(alert()))
        assert time.monotonic() - started < 3


# ------------------------------------------------------------------------------ deliver_due


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


NOW = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("dead", ["refused", "silent"])
def test_deliver_due_email_and_apprise_beside_a_dead_webhook(
    smtp_server: StartServer, webhook: WebhookReceiver, tmp_path: Path, dead: str
) -> None:
    """Three channels for one alert; the dead one is tried first and holds the others up no
    longer than its own timeout."""
    server = smtp_server()
    matched = ("nato", "air defence")
    with contextlib.ExitStack() as stack:
        archive = stack.enter_context(Archive(tmp_path / "nw.db"))
        if dead == "silent":  # accepts the connection, never answers
            dead_url = stack.enter_context(SlowServer(mode="silent")).url + "/hook"
        else:
            dead_url = f"http://127.0.0.1:{free_port()}/hook"
        archive.store_article(
            ArticleIn(
                url=str(ARTICLE["url"]),
                source="wire",
                guid="g1",
                title=str(ARTICLE["title"]),
                author=None,
                published="2025-06-09T09:00:00Z",
                language="en",
                summary=None,
                text=str(ARTICLE["text"]),
                fingerprint=None,
            ),
            NOW,
            lambda _id, _story, _outcome: [
                AlertIn("air-defence", "ops-hook", matched),
                AlertIn("air-defence", "analysts", matched),
                AlertIn("air-defence", "team-chat", matched),
            ],
        )
        channels = {
            "ops-hook": Channel("ops-hook", "webhook", {"url": dead_url, "timeout": 1.0}),
            "analysts": mail_channel(server.port),
            "team-chat": Channel(
                "team-chat",
                "apprise",
                {"url": webhook.url.replace("http://", "json://"), "timeout": 5.0},
            ),
        }
        started = time.monotonic()
        report = deliver_due(archive, channels, Clock(NOW + timedelta(seconds=1)))
        elapsed = time.monotonic() - started
        rows = {row.channel: row for row in archive.deliveries()}

    assert (report.sent, report.retrying, report.failed) == (2, 1, 0)
    assert elapsed < 1.0 + 2.0  # the dead channel's timeout, plus the two real sends
    assert rows["ops-hook"].status == "pending" and rows["ops-hook"].attempts == 1
    assert "could not reach" in rows["ops-hook"].last_error
    assert rows["ops-hook"].id < rows["analysts"].id < rows["team-chat"].id
    for name in ("analysts", "team-chat"):
        assert (rows[name].status, rows[name].attempts) == ("sent", 1)
        assert rows[name].payload and rows[name].last_error is None

    [got] = server.inbox.received
    mail = got.message
    assert mail["Subject"] == f"[newswatch] air-defence: {ARTICLE['title']}"
    assert mail["Message-ID"] == f"<{rows['analysts'].delivery}@newswatch>"
    assert mail["X-Newswatch-Delivery"] == rows["analysts"].delivery
    text, html = parts(mail)
    assert "**NATO** agreed on more **air defence**" in text
    assert "<mark>NATO</mark> agreed on more <mark>air defence</mark>" in html

    [posted] = webhook.wait_for(1)
    assert posted.json["title"] == f"[newswatch] air-defence: {ARTICLE['title']}"
    assert "**NATO** agreed on more **air defence**" in posted.json["message"]
