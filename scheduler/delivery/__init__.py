"""What leaves the system: the outbox's delivery rounds (`outbox`), the payloads and messages
(`render`), and one module per channel type in `notify/` (email, webhook, apprise).
docs/how-it-decides.md ("Alerts") and the payload formats in docs/commands.md."""
