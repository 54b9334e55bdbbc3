"""A local HTTP server that plays an SMS provider over a real socket, recording what it received."""

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: object  # the parsed JSON, or the raw bytes when it was not JSON


@dataclass
class Answer:
    status: int = 200
    body: object = None  # JSON-able, or bytes sent as they are
    delay: float = 0.0
    trickle: float = 0.0  # seconds between the answer's bytes, headers included
    headers: dict | None = None


class FakeProvider:
    def __init__(self):
        self.received: list[Received] = []
        self.answer = Answer(body={})
        # Set on stop so that a reply held back "past the timeout" does not outlive the test.
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.handle_error = lambda request, address: None  # the client hung up on a slow reply
        # A short poll keeps stop() quick: shutdown waits for the serving loop to look at its flag.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answers(
        self, status: int = 200, body: object = None, delay: float = 0.0, trickle: float = 0.0, headers=None
    ) -> None:
        body = {} if body is None else body
        self.answer = Answer(status=status, body=body, delay=delay, trickle=trickle, headers=headers)

    def start(self) -> "FakeProvider":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                fake.received.append(Received("POST", self.path, dict(self.headers.items()), body))
                answer = fake.answer
                if answer.delay:
                    fake._released.wait(answer.delay)
                payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                for name, value in {"Content-Type": "application/json", **(answer.headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                if not answer.trickle:
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self._headers_buffer.append(b"\r\n")
                whole = b"".join(self._headers_buffer) + payload
                self._headers_buffer = []
                for byte in whole:  # each wait shorter than any read timeout, the whole much longer
                    if fake._released.wait(answer.trickle):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def log_message(self, format, *args):
                pass

        return Handler


def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
