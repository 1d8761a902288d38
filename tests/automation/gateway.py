"""A local HTTP receiver standing in for an SMS gateway or a webhook endpoint (127.0.0.1 only)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Gateway:
    """What the receiver got: each request's path, headers and JSON body; failures on demand."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0
        #: Seconds to take before answering (a slow gateway keeps requests in flight).
        self.delay = 0.0
        self.lock = threading.Lock()
        self.url = ""

    def bodies(self) -> list[Any]:
        with self.lock:
            return [item["body"] for item in self.received]

    def keys(self) -> list[str]:
        with self.lock:
            return [item["headers"].get("Idempotency-Key", "") for item in self.received]


@contextmanager
def gateway() -> Iterator[Gateway]:
    """Serve a :class:`Gateway` on a free port of 127.0.0.1 for the block."""
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with state.lock:
                if state.fail_next > 0:
                    state.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                state.received.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "raw": raw,
                        "body": json.loads(raw) if raw else None,
                    }
                )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

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
