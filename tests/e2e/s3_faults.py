"""A fault-injecting HTTP proxy in front of the real local S3 server.

Requests pass through unchanged (the Host header too, so SigV4 signatures still
verify upstream), except the first `failures` requests whose path contains
`path_part` and whose method is `method`: those get the answer S3 gives when it
is overloaded (503 SlowDown). That is an S3 blip as an operator meets it, on
the wire, with the real server behind it. Every request's method and path is
recorded in `requests`, so a test can also see what a run read.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@dataclass
class Fault:
    path_part: str
    failures: int
    method: str = "GET"
    injected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def should_fail(self, method: str, path: str) -> bool:
        with self.lock:
            if method == self.method and self.path_part in path and self.injected < self.failures:
                self.injected += 1
                return True
        return False


class FaultyS3Proxy:
    """`with FaultyS3Proxy(upstream, fault) as url:` serves on a free loopback port until the block ends."""

    def __init__(self, upstream: str, fault: Fault):
        self.upstream = urlsplit(upstream)
        self.fault = fault
        self.requests: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.requests.append((self.command, self.path))
                if proxy.fault.should_fail(self.command, self.path):
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                connection.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
