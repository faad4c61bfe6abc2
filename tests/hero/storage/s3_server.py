"""Test helpers shared by the S3 tests: a real moto server process, and a fault-injecting HTTP proxy in front of it.

Imported by tests/hero/storage/conftest.py and tests/pipelines/test_s3_remotes.py (which puts this folder on
sys.path), so that both start the server the same way.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MOTO = Path(sys.executable).with_name("moto_server")
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "hero-test-key-id", "AWS_SECRET_ACCESS_KEY": "hero-test-secret-7f3a9c",
                    "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (never 5000: mlflow and moto both default to it)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 5000:
            return port


@contextlib.contextmanager
def moto_server(log_path: Path) -> Iterator[str]:
    """Run ``moto_server -H 127.0.0.1 -p <free port>`` for the duration; yields its endpoint URL."""
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


ERROR_CODES = {503: "SlowDown", 500: "InternalError", 403: "AccessDenied", 400: "InvalidRequest"}
"""The S3 error code the proxy answers with for a status (botocore retries SlowDown and InternalError)."""

Match = Callable[[str, str], bool]
"""``match(method, path)``: whether a fault applies to a request."""


@dataclass
class _Fault:
    kind: str  # "status" (answer with an error) or "truncate" (forward, then cut the body)
    match: Match
    remaining: int
    status: int = 503


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int = 0


@dataclass
class FaultProxy:
    """An HTTP proxy on 127.0.0.1 that forwards to ``upstream`` except where a fault is armed:
    `fail` answers the next ``n`` matching requests with an S3 error status; `truncate` forwards them but sends
    only half the response body (under the full Content-Length) and closes the connection."""

    upstream: str
    faults: list[_Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def fail(self, n: int = 1, status: int = 503, match: Match = lambda m, p: True) -> None:
        self.faults.append(_Fault("status", match, n, status))

    def truncate(self, n: int = 1, match: Match = lambda m, p: m == "GET") -> None:
        self.faults.append(_Fault("truncate", match, n))

    def take(self, method: str, path: str) -> _Fault | None:
        for f in self.faults:
            if f.remaining > 0 and f.match(method, path):
                f.remaining -= 1
                return f
        return None


def _handler(proxy: FaultProxy) -> type[http.server.BaseHTTPRequestHandler]:
    host, port = proxy.upstream.removeprefix("http://").split(":")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                    out += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b""):
                    pass
                return out
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _any(self) -> None:
            body = self._body()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
            seen = Seen(self.command, self.path, dict(self.headers.items()), body)
            proxy.seen.append(seen)
            fault = proxy.take(self.command, self.path)
            if fault is not None and fault.kind == "status":
                seen.answered = fault.status
                code = ERROR_CODES.get(fault.status, "InternalError")
                err = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(err)))
                self.end_headers()
                self.wfile.write(err if self.command != "HEAD" else b"")
                return
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                conn.request(self.command, self.path, body=body, headers={**headers, "Content-Length": str(len(body))})
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            seen.answered = resp.status
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(k, v)
            declared = resp.getheader("Content-Length") or str(len(data))
            self.send_header("Content-Length", declared)
            if fault is not None:  # truncate: half the body under the full length, then hang up
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

    return Handler


@contextlib.contextmanager
def fault_proxy(upstream: str) -> Iterator[tuple[FaultProxy, str]]:
    """A `FaultProxy` in front of ``upstream``; yields (proxy, its endpoint URL)."""
    proxy = FaultProxy(upstream)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def s3_env(endpoint: str) -> dict[str, str]:
    """The environment a process needs to talk to ``endpoint`` as S3 (fake credentials, no profile)."""
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def clean_aws_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default os.environ) without any AWS_* variable a developer's shell may carry."""
    return {k: v for k, v in (environ or os.environ).items() if not k.startswith("AWS_")}
