"""A webhook receiver for the fleet tests, verifying signatures with the `standardwebhooks`
package (an implementation independent of ours).

    python webhook_receiver.py SECRET LOG

Prints its port, then serves until killed. Every request is appended to LOG as a JSON line:
the webhook-id, which attempt of that id it is, whether the signature verified, the status
answered, the path and the payload. Paths choose the behaviour:
  /flaky/...  500 to the first attempt of each id, then 200 (forces retries)
  /busy/...   429 with Retry-After: 1 to the first attempt of each id, then 200
  /hold/...   the first attempt of each id is never answered (held open until the sender goes
              away), later ones get 200
  /gone/...   410 Gone
  otherwise   200
A request whose signature does not verify is answered 400.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

secret, log_path = sys.argv[1], sys.argv[2]
hook = Webhook(secret)
attempts = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = hook.verify(body, headers)
            verified = True
        except Exception as e:  # noqa: BLE001 - any failure is a refusal
            payload = {"error": str(e)}
            verified = False
        msg_id = headers.get("webhook-id", "")
        with lock:
            attempts[msg_id] = attempts.get(msg_id, 0) + 1
            attempt = attempts[msg_id]
        extra = {}
        if not verified:
            status = 400
        elif self.path.startswith("/gone"):
            status = 410
        elif self.path.startswith("/flaky") and attempt == 1:
            status = 500
        elif self.path.startswith("/busy") and attempt == 1:
            status = 429
            extra["Retry-After"] = "1"
        elif self.path.startswith("/hold") and attempt == 1:
            status = None
        else:
            status = 200
        record = {
            "id": msg_id,
            "attempt": attempt,
            "verified": verified,
            "status": status,
            "path": self.path,
            "payload": payload,
        }
        with lock:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        if status is None:
            time.sleep(600)
            return
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
