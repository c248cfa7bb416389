"""A small HTTP proxy in front of a real OpenAI-compatible server, for fault injection a real
server cannot produce on demand: it answers chosen requests with a 500, drops others without a
reply, and counts every completion request it sees (the benchmarks use it as a counter only).

    with FaultProxy(upstream="http://127.0.0.1:8000", fail_every=3, drop_every=5) as proxy:
        ... base_url=proxy.base_url ...
        proxy.seen, proxy.failed, proxy.dropped
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultProxy:
    def __init__(self, upstream: str, fail_every: int = 0, drop_every: int = 0, always_fail: bool = False):
        u = urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.fail_every, self.drop_every, self.always_fail = fail_every, drop_every, always_fail
        self.seen = self.failed = self.dropped = self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._forward(b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.endswith("/chat/completions"):
                    with proxy._lock:
                        proxy.seen += 1
                        n = proxy.seen
                    if proxy.always_fail or (proxy.fail_every and n % proxy.fail_every == 0):
                        with proxy._lock:
                            proxy.failed += 1
                        payload = b'{"error": {"message": "injected fault", "type": "server_error"}}'
                        self.send_response(500)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                        self.send_header("Connection", "close")
                        self.end_headers()
                        self.wfile.write(payload)
                        self.close_connection = True
                        return
                    if proxy.drop_every and n % proxy.drop_every == 0:
                        with proxy._lock:
                            proxy.dropped += 1
                        self.close_connection = True
                        self.connection.close()  # no reply at all
                        return
                self._forward(body)

            def _forward(self, body: bytes):
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=600)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    self.close_connection = True
                    self.connection.close()  # upstream down: the client sees a dropped connection
                    return
                finally:
                    conn.close()
                with proxy._lock:
                    proxy.forwarded += 1
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
