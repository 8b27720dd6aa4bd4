"""A real HTTP/JSON upstream on 127.0.0.1 for RemoteConnector tests.

Each request consumes the next behaviour of ``plan`` (the last one repeats):
``ok`` (200 + JSON object), ``500``, ``503``, ``404``, ``close`` (drop the connection
without answering), ``garbage`` (200 + non-JSON), ``list`` (200 + a JSON array),
``hang`` (answer only when the test ends: always past any deadline), and for issue 14
finding 2: ``drip`` (200 headers, then one byte of the body every 0.8 s until the client
goes away; ``dripped`` counts the bytes, ``gone`` is set when the client left),
``redirect`` (302 to ``redirect_to``), ``text`` (200 ``text/plain``), ``deep`` (JSON
nested 5,000 deep), ``big`` (a JSON object of ``big_bytes`` with no Content-Length: read
until the limit), ``bighdr`` (the same with its Content-Length), ``400``, ``403``.
Every request's headers are kept in ``headers``.
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
    headers: list[dict[str, str]] = field(default_factory=list)
    redirect_to: str = ""
    big_bytes: int = 2 * 1024 * 1024
    dripped: int = 0
    gone: threading.Event = field(default_factory=threading.Event)

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
            with state.lock:
                state.headers.append({k.lower(): v for k, v in self.headers.items()})
            behaviour = state.next_behaviour(body)
            if behaviour in _SPECIAL:
                _SPECIAL[behaviour](self, state)
                return
            if behaviour == "close":
                self.close_connection = True
                return
            if behaviour == "hang":
                state.release.wait(60)
                behaviour = "ok"
            if behaviour in ("500", "503", "404", "400", "403"):
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


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
          *, length: bool = True, extra: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    for k, v in (extra or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    try:
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _drip(handler: BaseHTTPRequestHandler, state: Upstream) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    try:
        while not state.release.is_set():
            handler.wfile.write(b" ")
            handler.wfile.flush()
            with state.lock:
                state.dripped += 1
            state.release.wait(0.8)
    except (BrokenPipeError, ConnectionResetError):
        state.gone.set()
    handler.close_connection = True


def _redirect(handler: BaseHTTPRequestHandler, state: Upstream) -> None:
    _send(handler, 302, b"", "application/json", extra={"Location": state.redirect_to})


def _text(handler: BaseHTTPRequestHandler, state: Upstream) -> None:
    _send(handler, 200, b"hello, not json", "text/plain")


def _deep(handler: BaseHTTPRequestHandler, state: Upstream) -> None:
    _send(handler, 200, b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json")


def _big(handler: BaseHTTPRequestHandler, state: Upstream, *, length: bool = False) -> None:
    body = b'{"blob":"' + b"x" * state.big_bytes + b'"}'
    if not length:
        handler.close_connection = True  # the body ends when the connection does
    _send(handler, 200, body, "application/json", length=length)


_SPECIAL = {
    "drip": _drip,
    "redirect": _redirect,
    "text": _text,
    "deep": _deep,
    "big": _big,
    "bighdr": lambda h, s: _big(h, s, length=True),
}
