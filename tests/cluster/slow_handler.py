"""A handler webhook that takes its time, before it answers: the run's `sleep` seconds
(process data), or `firstSleep` seconds on the first call of an idempotency key this process
sees (default: `sleep`). The cluster tests run it in a pod, from a ConfigMap, to have a call
in flight while they kill the operator, the handler's own pod, or roll the release. With a
`firstSleep` longer than the operator pod's termination grace period, a killed operator
cannot finish the call: only a resumed run (a call with the same key) can end it.

Standard library only, so it runs in any image with Python 3.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN: set[str] = set()
SEEN_LOCK = threading.Lock()


class SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply(200, b"ok")

    def do_POST(self) -> None:
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        key = str(event.get("idempotencyKey", ""))
        data = event.get("data") or {}
        with SEEN_LOCK:
            first = key not in SEEN
            SEEN.add(key)
        sleep = data.get("firstSleep", data.get("sleep", 0)) if first else data.get("sleep", 0)
        # The tests wait for this line to know a call is in flight, and count these lines.
        print(f"received {event['run']['name']} attempt {event['attempt']} key {key}", flush=True)
        time.sleep(float(sleep))
        body = json.dumps({"message": f"slept on attempt {event['attempt']}"}).encode()
        # The caller may be gone (an operator pod killed mid-call).
        with contextlib.suppress(OSError):
            self._reply(200, body)

    def _reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), SlowHandler).serve_forever()
