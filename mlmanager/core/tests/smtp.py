"""A real SMTP server for the e-mail tests (aiosmtpd on 127.0.0.1, a port the system picks),
with Django's SMTP backend pointed at it: the sign-up mails of accounts, the alert
notifications and reports of monitoring."""

from __future__ import annotations

import contextlib
import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

SITE_URL = "http://mlmanager.test"


@dataclass
class Mailbox:
    """What the SMTP server received, in order."""

    messages: list[EmailMessage] = field(default_factory=list)
    # The next this many messages are refused with a temporary failure (as a busy or
    # greylisting server answers), to test what a failed send does.
    refuse: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 Try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]


class FreePortController(Controller):
    """aiosmtpd's controller on port 0: reads back the port the system chose before its own
    start-up check connects to it."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextlib.contextmanager
def smtp_server(settings: Any) -> Iterator[Mailbox]:
    """Start the server, point Django's mail settings (pytest-django's `settings`) at it,
    and links in mails at SITE_URL; stop it after."""
    received = Mailbox()
    controller = FreePortController(received, hostname="127.0.0.1", port=0)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.MLMANAGER_SITE_URL = SITE_URL
    try:
        yield received
    finally:
        controller.stop()
