"""A real local HTTP server speaking the OpenAI chat API that misbehaves on purpose."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD = '{"click": true, "reason": "fine"}'


def _ok(content: str) -> tuple[int, str]:
    body = {
        "choices": [{"message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7},
    }  # fmt: skip
    return 200, json.dumps(body)


class Server:
    """Each request takes the next scripted action: ("ok", content), ("status", code),
    ("raw", body) or ("hang", seconds)."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, object]] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                outer.bodies.append(json.loads(self.rfile.read(length)))
                with outer.lock:
                    kind, arg = outer.actions.pop(0) if outer.actions else ("status", 503)
                if kind == "hang":
                    time.sleep(float(arg))
                    code, text = _ok(GOOD)
                elif kind == "ok":
                    code, text = _ok(str(arg))
                elif kind == "raw":
                    code, text = 200, str(arg)
                else:
                    code, text = int(arg), '{"error": "scripted"}'
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
