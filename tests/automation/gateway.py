"""Local receivers for the automation tests (127.0.0.1 only).

* :func:`gateway`: an HTTP receiver standing in for an SMS gateway or a
  webhook endpoint. Like a real SMS gateway it drops a request whose
  ``Idempotency-Key`` it has already accepted (answering it as a success) and
  keeps the repeat aside in :attr:`Gateway.repeats`, so a test can see both
  what was delivered and what the sender tried twice.
* :func:`smtp_server`: an SMTP server (aiosmtpd) keeping every email it got.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

IDEMPOTENCY = "Idempotency-Key"


class Gateway:
    """What the receiver got: each delivered request's path, headers and JSON body; failures on demand."""

    def __init__(self) -> None:
        #: Requests delivered (a repeated Idempotency-Key is not delivered again).
        self.received: list[dict[str, Any]] = []
        #: Requests dropped because their Idempotency-Key was delivered already.
        self.repeats: list[dict[str, Any]] = []
        self.fail_next = 0
        #: Called with each request (path, headers, body) before it is delivered or answered,
        #: in the receiver's thread, while the sender waits for the answer.
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self.lock = threading.Lock()
        self.url = ""

    def bodies(self) -> list[Any]:
        with self.lock:
            return [item["body"] for item in self.received]

    def keys(self) -> list[str]:
        with self.lock:
            return [item["headers"].get(IDEMPOTENCY, "") for item in self.received]

    def repeated_keys(self) -> list[str]:
        with self.lock:
            return [item["headers"].get(IDEMPOTENCY, "") for item in self.repeats]


@contextmanager
def gateway() -> Iterator[Gateway]:
    """Serve a :class:`Gateway` on a free port of 127.0.0.1 for the block."""
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            request = {
                "path": self.path,
                "headers": dict(self.headers.items()),
                "raw": raw,
                "body": json.loads(raw) if raw else None,
            }
            if state.on_request is not None:
                state.on_request(request)
            with state.lock:
                if state.fail_next > 0:
                    state.fail_next -= 1
                    self._answer(503, b"busy")
                    return
                key = request["headers"].get(IDEMPOTENCY)
                seen = key is not None and any(
                    item["headers"].get(IDEMPOTENCY) == key for item in state.received
                )
                (state.repeats if seen else state.received).append(request)
            self._answer(200, b'{"ok": true}')

        def _answer(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the sender is gone (a test killed it mid-request)
                pass

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class Mailbox:
    """Every email an :func:`smtp_server` accepted, parsed, and the port it listens on."""

    def __init__(self) -> None:
        self.port = 0
        self.lock = threading.Lock()
        self.emails: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        with self.lock:
            self.emails.append(
                message_from_bytes(content if isinstance(content, bytes) else content.encode())
            )
        return "250 OK"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(email["Message-ID"]) for email in self.emails]


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """Run an SMTP server on a free port of 127.0.0.1 for the block."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    mailbox = Mailbox()
    mailbox.port = port
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
