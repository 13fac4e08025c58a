"""A handler webhook that takes its time: it sleeps the run's `sleep` seconds (process data)
before it answers. The cluster tests run it in a pod, from a ConfigMap, to have a call in
flight while they kill the operator, the handler's own pod, or roll the release.

Standard library only, so it runs in any image with Python 3.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply(200, b"ok")

    def do_POST(self) -> None:
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        # The tests wait for this line to know a call is in flight.
        print(f"received {event['run']['name']} attempt {event['attempt']}", flush=True)
        time.sleep(float(event.get("data", {}).get("sleep", 0)))
        self._reply(200, json.dumps({"message": f"slept on attempt {event['attempt']}"}).encode())

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
