"""A real S3 API server (moto's server mode) behind a TCP forwarder whose port closes and
opens again, or answers S3's 503 SlowDown, the moment a chosen request arrives: bucket outages
that begin exactly while a worker reads an original or writes a result."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>0</RequestId></Error>"
)
SLOW_DOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(SLOW_DOWN_BODY)).encode() + b"\r\n\r\n" + SLOW_DOWN_BODY
)
METHODS = (b"GET ", b"PUT ", b"HEAD ", b"POST ", b"DELETE ")


class FlakyEndpoint:
    """Forwards 127.0.0.1:port to the S3 server. `refuse_from(marker)`: when a request whose
    head holds `marker` arrives, its connection is cut and the port closes (connections are
    refused) until `up()`; `slow_down_from(marker)`: from then on every request is answered
    503 SlowDown until `up()`."""

    def __init__(self, target: str):
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._marker: bytes | None = None
        self._mode = ""
        self.slowing = False
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._listener is not None and not self.slowing

    def up(self) -> None:
        with self._lock:
            self.slowing = False
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Close the port and cut every open connection: the server is gone."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            _close(conn)

    def refuse_from(self, marker: bytes) -> None:
        self._marker, self._mode = marker, "refuse"

    def slow_down_from(self, marker: bytes) -> None:
        self._marker, self._mode = marker, "slow"

    def close(self) -> None:
        self._marker = None
        self.down()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._conns |= {client, server}
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=_pump, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if self._marker is not None and self._marker in chunk:
                self._marker, mode = None, self._mode
                if mode == "refuse":
                    self.down()
                    return
                self.slowing = True
            if self.slowing and chunk.startswith(METHODS):
                with suppress(OSError):
                    client.sendall(SLOW_DOWN)
                break
            try:
                server.sendall(chunk)
            except OSError:
                break
        _close(client)
        _close(server)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    while True:
        try:
            chunk = source.recv(65536)
            if not chunk:
                break
            sink.sendall(chunk)
        except OSError:
            break
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextmanager
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def wait_until(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)
