"""A small HTTP proxy in front of a real OpenAI-compatible server, for fault injection a real
server cannot produce on demand: it answers chosen requests with a 500, drops others without a
reply, and counts every completion request it sees (the benchmarks use it as a counter only).

    with FaultProxy(upstream="http://127.0.0.1:8000", fail_every=3, drop_every=5) as proxy:
        ... base_url=proxy.base_url ...
        proxy.seen, proxy.failed, proxy.dropped

As a gateway that checks keys (`api_key=`), it answers a completion request that does not carry
`Authorization: Bearer <api_key>` with a 401 that echoes the key it was given, as careless gateways
do; `refuse_status=403|404` answers every completion request with that status and an OpenAI-style
message. These are the faults a real server makes on a wrong key or model, on demand.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        fail_every: int = 0,
        drop_every: int = 0,
        always_fail: bool = False,
        api_key: str | None = None,
        refuse_status: int | None = None,
    ):
        u = urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.fail_every, self.drop_every, self.always_fail = fail_every, drop_every, always_fail
        self.api_key, self.refuse_status = api_key, refuse_status
        self.seen = self.failed = self.dropped = self.forwarded = self.refused = 0
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
                if self.path.endswith("/completions"):
                    refusal = self._refusal()
                    if refusal is not None:
                        with proxy._lock:
                            proxy.refused += 1
                        self._reply(*refusal)
                        return
                if self.path.endswith("/chat/completions"):
                    with proxy._lock:
                        proxy.seen += 1
                        n = proxy.seen
                    if proxy.always_fail or (proxy.fail_every and n % proxy.fail_every == 0):
                        with proxy._lock:
                            proxy.failed += 1
                        # It quotes the request's header, as a debugging proxy might: a secret in a 5xx.
                        auth = self.headers.get("Authorization") or ""
                        self._reply(500, {"error": {"message": f"injected fault (Authorization: {auth})", "type": "server_error"}})
                        return
                    if proxy.drop_every and n % proxy.drop_every == 0:
                        with proxy._lock:
                            proxy.dropped += 1
                        self.close_connection = True
                        self.connection.close()  # no reply at all
                        return
                self._forward(body)

            def _refusal(self) -> tuple[int, dict] | None:
                auth = self.headers.get("Authorization") or ""
                given = auth.removeprefix("Bearer ")
                if proxy.api_key is not None and given != proxy.api_key:
                    # The whole key and header echoed back: what a careless gateway says.
                    message = f"Incorrect API key provided: {given}. Received header Authorization: {auth}"
                    return 401, {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
                if proxy.refuse_status == 403:
                    return 403, {"error": {"message": f"Key {given} may not use this model", "type": "permission_error"}}
                if proxy.refuse_status == 404:
                    return 404, {"error": {"message": "The model does not exist.", "type": "NotFoundError", "code": 404}}
                return None

            def _reply(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

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
