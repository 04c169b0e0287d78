"""A local stand-in for sentry.io: accepts envelopes on 127.0.0.1 and discards them.

Run as ``python sink.py PORT``. HTTP/1.1 with keep-alive, so the SDK's connection
pool behaves as it would against the real service. ``GET /stats`` answers how
many envelopes and bytes arrived, so run.py can show the SDK really sent them.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()
_stats = {"envelopes": 0, "bytes": 0}


class SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Small replies on a keep-alive connection: without this, Nagle's algorithm and the
    # client's delayed ACK hold each reply ~40 ms and the SDK's queue overflows.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        size = self._discard_body()
        with _lock:
            _stats["envelopes"] += 1
            _stats["bytes"] += size
        self._answer(200, b"{}")

    def do_GET(self) -> None:  # noqa: N802
        with _lock:
            body = json.dumps(_stats).encode()
        self._answer(200, body)

    def _discard_body(self) -> int:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            size = 0
            while True:
                chunk = int(self.rfile.readline().strip() or b"0", 16)
                if chunk == 0:
                    self.rfile.readline()
                    return size
                self.rfile.read(chunk + 2)
                size += chunk
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        return length

    def _answer(self, status: int, body: bytes) -> None:
        # One write for status line, headers and body: one packet per reply.
        head = (f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("ascii")
        self.wfile.write(head + body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # silent: thousands of envelopes per second


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), SinkHandler)
    server.daemon_threads = True
    print(f"sink listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
