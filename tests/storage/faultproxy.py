"""A loopback HTTP proxy in front of the moto server that injects real network faults.

boto3 talks real HTTP to it; it forwards each request to moto unless a fault rule matches, in which
case it answers 503 SlowDown / 403 AccessDenied, cuts a response mid-body, or drops the connection
while the request body is still arriving. Nothing in boto3 is mocked.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "te", "upgrade"}

ERROR_XML = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
             '<RequestId>fault-proxy</RequestId></Error>')


@dataclass
class Fault:
    """Apply `action` to the first `times` requests for which `match(method, path)` is true.

    action: "slowdown" (503 SlowDown), "denied" (403 AccessDenied), "cut_response" (send headers and
    `after_bytes` of the body, then close), "cut_request" (read `after_bytes` of the request body,
    then close without answering), "before" (run `callback()`, e.g. a racing writer, then forward).
    """

    match: Callable[[str, str], bool]
    action: str
    times: int = 1_000_000
    after_bytes: int = 1024
    hits: int = 0
    callback: Callable[[], None] | None = None


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.hits < fault.times and fault.match(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        length = int(handler.headers.get("Content-Length") or 0)
        fault = self._pick(method, path)
        if fault is not None and fault.action == "cut_request":
            handler.rfile.read(min(length, fault.after_bytes))
            _drop(handler)
            return
        body = handler.rfile.read(length) if length else b""
        if fault is not None and fault.action == "before" and fault.callback is not None:
            fault.callback()
        if fault is not None and fault.action in ("slowdown", "denied"):
            status, code, message = ((503, "SlowDown", "Please reduce your request rate.")
                                     if fault.action == "slowdown" else (403, "AccessDenied", "Access Denied"))
            payload = ERROR_XML.format(code=code, message=message).encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(0 if method == "HEAD" else len(payload)))
            handler.end_headers()
            if method != "HEAD":
                handler.wfile.write(payload)
            return
        target = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        handler.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                handler.send_header(key, value)
        declared = response.getheader("Content-Length") if method == "HEAD" else str(len(data))
        handler.send_header("Content-Length", declared or "0")
        handler.end_headers()
        if method == "HEAD":
            return
        if fault is not None and fault.action == "cut_response":
            handler.wfile.write(data[: fault.after_bytes])
            handler.wfile.flush()
            _drop(handler)
            return
        handler.wfile.write(data)


def _drop(handler: BaseHTTPRequestHandler) -> None:
    """Close the TCP connection abruptly (RST), as a network cut would."""
    handler.close_connection = True
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
