"""Fixtures for the generation tests: fake OpenAI-compatible endpoints on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# reply(path, headers, body) -> (status, JSON reply or raw bytes)
Reply = Callable[[str, dict, dict], "tuple[int, dict | bytes]"]


@pytest.fixture(scope="module")
def json_endpoint():
    """start(reply) -> "http://127.0.0.1:PORT": a server that answers every POST with reply(path, headers, body);
    every server started stops after the module."""
    servers = []

    def start(reply: Reply) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, data = reply(self.path, dict(self.headers), body)
                raw = data if isinstance(data, bytes) else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
