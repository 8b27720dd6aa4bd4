"""A real HTTP/JSON upstream on 127.0.0.1 for RemoteConnector tests.

Each request consumes the next behaviour of ``plan`` (the last one repeats):
``ok`` (200 + JSON object), ``500``, ``503``, ``404``, ``close`` (drop the connection
without answering), ``garbage`` (200 + non-JSON), ``list`` (200 + a JSON array),
``hang`` (answer only when the test ends: always past any deadline).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Upstream:
    url: str
    plan: list[str]
    requests: list[dict[str, Any]] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def calls(self) -> int:
        with self.lock:
            return len(self.requests)

    def next_behaviour(self, body: dict[str, Any]) -> str:
        with self.lock:
            self.requests.append(body)
            i = len(self.requests) - 1
            return self.plan[min(i, len(self.plan) - 1)]


@contextmanager
def serve(plan: list[str], payload: dict[str, Any] | None = None) -> Iterator[Upstream]:
    state: Upstream

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            behaviour = state.next_behaviour(body)
            if behaviour == "close":
                self.close_connection = True
                return
            if behaviour == "hang":
                state.release.wait(60)
                behaviour = "ok"
            if behaviour in ("500", "503", "404"):
                self.send_error(int(behaviour))
                return
            if behaviour == "garbage":
                out = b"<html>not json</html>"
            elif behaviour == "list":
                out = b"[1, 2]"
            else:
                out = json.dumps({**state.payload, "echo": body}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            try:
                self.wfile.write(out)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (deadline test)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Upstream(url=f"http://127.0.0.1:{server.server_address[1]}/query", plan=plan,
                     payload=payload or {})
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def down_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/query"
