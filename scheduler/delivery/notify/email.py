"""Email channel: one message per alert, digest or source-health notice, over SMTP.

The subject and both bodies come from `scheduler.delivery.render` (pure); this module only
builds the
`EmailMessage` and talks SMTP. The Message-ID derives from the delivery id, so a retried send
carries the same Message-ID and mail clients can drop the copy.

Certificates are always verified (starttls and tls), against the system's trust store; an
operator with a private CA points `SSL_CERT_FILE` at it.

(The module is named `email` like the standard library package; absolute imports keep them
apart: `import email.message` here is the standard library's.)
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from crawler.model import Channel
from scheduler.config.values import (
    DURATION,
    INTEGER,
    REQUIRED,
    STRING,
    STRINGS,
    TIMEOUT_HELP,
    Computed,
    Entry,
    Key,
    Report,
    between,
    duration_at_least,
    email_address,
    email_addresses,
    non_empty,
    one_of,
)
from scheduler.delivery.notify.message import DeliveryError, Message
from scheduler.delivery.render import email_html, email_subject, email_text

# The [channels.NAME] keys of `type = "email"` (docs/configuration.md)
_SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}

OPTIONS: tuple[Key, ...] = (
    Key("host", STRING, REQUIRED, "SMTP server", non_empty),
    Key(
        "port",
        INTEGER,
        Computed(
            "587 with starttls, 465 with tls, 25 with none",
            lambda values: _SMTP_PORTS.get(values.get("security") or "", 587),
        ),
        "SMTP port",
        between(1, 65535),
    ),
    Key("security", STRING, "starttls", "starttls, tls or none", one_of(*_SMTP_PORTS)),
    Key("username", STRING, None, "SMTP login, with password", blank_is_unset=True),
    Key("password", STRING, None, "SMTP password, with username", blank_is_unset=True),
    Key("from", STRING, REQUIRED, "sender address", email_address),
    Key("to", STRINGS, REQUIRED, "recipient addresses", email_addresses),
    Key("timeout", DURATION, "30s", TIMEOUT_HELP, duration_at_least(1)),
)


def check(entry: Entry, report: Report) -> None:
    """username and password come together."""
    if "username" in entry.given and "password" not in entry.given:
        report("username", "username is set but password is not; give both or neither")
    if "password" in entry.given and "username" not in entry.given:
        report("password", "password is set but username is not; give both or neither")


log = logging.getLogger(__name__)

# characters allowed in the left part of a Message-ID (RFC 5322 dot-atom-text)
_NOT_ATOM = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")
_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
_TO = "the channel's to addresses"
_STEPS = {"connecting": "the connection", "sending": "the message", "login": "the login"}


def message_id(delivery: str) -> str:
    """`<delivery-id@newswatch>`: the same for every retry of one delivery."""
    left = _NOT_ATOM.sub("-", delivery).strip(".") or "delivery"
    return f"<{left}@newswatch>"


def build(channel: Channel, message: Message) -> EmailMessage:
    """The complete email for one message, text with an HTML alternative."""
    options = channel.options
    email = EmailMessage()
    email["Subject"] = email_subject(message.payload)
    email["From"] = str(options["from"])
    email["To"] = ", ".join(_recipients(channel))
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id(message.delivery)
    email["X-Newswatch-Event"] = message.event
    email["X-Newswatch-Delivery"] = message.delivery
    # quoted-printable keeps the message 7-bit: any server relays it unchanged
    email.set_content(email_text(message.payload), cte="quoted-printable")
    email.add_alternative(email_html(message.payload), subtype="html", cte="quoted-printable")
    return email


def _recipients(channel: Channel) -> list[str]:
    to = channel.options["to"]
    if isinstance(to, str):
        return [to]
    if isinstance(to, list | tuple):
        return [str(address) for address in to]
    raise TypeError(f"channel {channel.name}: 'to' must list addresses, not {to!r}")


def _envelope(email: EmailMessage) -> tuple[str, list[str]]:
    """MAIL FROM and RCPT TO: the bare addresses of the headers (`Name <a@b>` gives `a@b`)."""
    sender = [address.addr_spec for address in email["From"].addresses]
    recipients = [address.addr_spec for address in email["To"].addresses]
    return (sender[0] if sender else str(email["From"])), recipients


def send(channel: Channel, message: Message) -> None:
    options = channel.options
    host = str(options["host"])
    security = str(options.get("security", "starttls"))
    given_port, given_timeout = options.get("port"), options.get("timeout")
    port = given_port if isinstance(given_port, int) else _DEFAULT_PORTS.get(security, 587)
    timeout = float(given_timeout) if isinstance(given_timeout, int | float) else 30.0
    username, password = options.get("username"), options.get("password")
    email = build(channel, message)
    where = f"{host}:{port}"
    try:
        smtp = _connect(host, port, security, timeout)
    except (smtplib.SMTPException, OSError) as exc:
        raise _failure(exc, where, "connecting") from exc
    step = "greeting"
    try:
        if security == "starttls":
            step = "STARTTLS"
            smtp.starttls(context=ssl.create_default_context())
        if username and password:
            step = "login"
            smtp.login(str(username), str(password))
        step = "sending"
        refused = smtp.send_message(email, *_envelope(email))
    except (smtplib.SMTPException, OSError) as exc:
        raise _failure(exc, where, step) from exc
    finally:
        _quit(smtp)
    if refused:
        # the others have it: a retry would send them a copy, so this counts as delivered
        log.warning(
            "delivery %s via %s: %s refused some recipients: %s",
            message.delivery,
            channel.name,
            where,
            _refusals(refused),
        )


def _connect(host: str, port: int, security: str, timeout: float) -> smtplib.SMTP:
    if security == "tls":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    return smtplib.SMTP(host, port, timeout=timeout)


def _quit(smtp: smtplib.SMTP) -> None:
    """End the session politely; the message is already accepted (or not), so no error here
    may change the outcome."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(words.split())}".strip()


def _kind(code: int, check: str = "") -> str:
    """What an SMTP reply code means for the operator; `check` says what to look at."""
    if 400 <= code < 500:
        return "a temporary failure"
    if 500 <= code < 600:
        return "a permanent failure" + (f"; check {check}" if check else "")
    return "an unexpected reply"


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {_reply(code, text)}" for rcpt, (code, text) in refused.items())


def _failure(exc: BaseException, where: str, step: str) -> DeliveryError:
    """A DeliveryError whose message says what went wrong and what to check."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        why = f"the SMTP server {where} rejected the login ({reply}): check username/password"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        worst = max(codes) if codes else 0
        why = (
            f"the SMTP server {where} refused every recipient "
            f"({_refusals(exc.recipients)}): {_kind(worst, _TO)}"
        )
    elif isinstance(exc, smtplib.SMTPSenderRefused):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        why = f"the SMTP server {where} refused the sender {exc.sender} ({reply}): "
        why += _kind(exc.smtp_code, "the channel's from address")
    elif isinstance(exc, smtplib.SMTPResponseException):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        what = _STEPS.get(step, f"the {step}")
        why = f"the SMTP server {where} refused {what} ({reply}): {_kind(exc.smtp_code)}"
        if step == "STARTTLS":
            why = f"TLS failed with the SMTP server {where}: STARTTLS refused ({reply})"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        if step == "STARTTLS":
            why = (
                f"the SMTP server {where} does not offer STARTTLS; nothing was sent in clear "
                '(use security = "tls" if it speaks TLS on connect)'
            )
        elif step == "login":
            why = (
                f"the SMTP server {where} does not offer AUTH on this connection; many servers "
                'offer it only after STARTTLS (security = "starttls")'
            )
        else:
            why = f"the SMTP server {where} cannot take this message: {exc}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        why = (
            f"TLS failed with the SMTP server {where}: its certificate was not accepted "
            f"({exc.verify_message or exc.reason})"
        )
    elif isinstance(exc, ssl.SSLError):
        why = (
            f"TLS failed with the SMTP server {where}: {exc.reason or exc} (does it speak TLS "
            'on this port? usually 465 for security = "tls", 587 for "starttls")'
        )
    elif isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" not in str(exc):
        why = f"the SMTP server {where} closed the connection during {step}"
    elif isinstance(exc, TimeoutError | smtplib.SMTPServerDisconnected):
        why = f"the SMTP server {where} did not answer in time during {step}"
    elif isinstance(exc, ConnectionRefusedError):
        why = f"could not connect to the SMTP server {where}: connection refused"
    elif isinstance(exc, socket.gaierror):
        why = f"could not find the SMTP server {where}: {exc.strerror or exc}"
    elif isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException):
        why = f"could not reach the SMTP server {where}: {exc.strerror or exc}"
    else:
        why = f"the SMTP conversation with {where} failed during {step}: {exc}"
    return DeliveryError(why)
