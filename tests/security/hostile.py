"""Endpoints a hostile tenant would point the install at: real TCP servers on 127.0.0.1, each
in a thread, that count what they did to the caller; and the event that makes the install
call them."""

import socket
import threading
import time

from django.db import transaction

from logs.services import event_record


class _Server:
    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks"
        self.connections = 0
        self.closed_by_caller = 0  # connections the caller hung up on before we were done
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stopping.set()
        self.listener.close()
        self._thread.join(5)

    def _accept(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        try:
            _read_request(conn)
            self.answer(conn)
        except OSError:
            with self.lock:
                self.closed_by_caller += 1
        finally:
            conn.close()

    def answer(self, conn: socket.socket):
        raise NotImplementedError


def _read_request(conn: socket.socket) -> None:
    """The request's head and its Content-Length of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


class Trickler(_Server):
    """Answers a valid 200 one byte every `interval` seconds: each read the caller makes gets
    a byte well within any per-read timeout, and the whole answer takes minutes."""

    def __init__(self, interval: float = 0.5):
        super().__init__()
        self.interval = interval

    def answer(self, conn):
        body = b"ok" * 200
        response = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        for byte in response:
            if self._stopping.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(self.interval)


class Flooder(_Server):
    """Answers 200 at once with a body of `size` bytes, sent as fast as the caller reads."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.sent = 0

    def answer(self, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
        conn.sendall(f"Content-Length: {self.size}\r\n\r\n".encode())
        chunk = b"x" * 65536
        left = self.size
        while left > 0 and not self._stopping.is_set():
            sent = conn.send(chunk[: min(left, len(chunk))])
            left -= sent
            with self.lock:
                self.sent += sent


class Refuser:
    """A port nothing listens on."""

    def __init__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{probe.getsockname()[1]}/hooks"


def sending_recorded(notification) -> None:
    """A Sending event of the notification's email, in its own transaction: the stream
    messages it makes are handed over on commit (delivered at once when tasks run in-process)."""
    with transaction.atomic():
        event_record(
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            kind="sending",
            channel="email",
            source="pipeline",
        )
