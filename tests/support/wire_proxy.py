"""A TCP proxy in front of a MongoDB-wire engine that can lose the reply to a write the engine has done.

Armed, it forwards the next request larger than `threshold` bytes and drops the engine's reply to it, as a
network failure after the write would: the engine stored the document, the client hears nothing and times out.
"""
from __future__ import annotations

import socket
import struct
import threading

from tmf_server.store.embedded import free_port


def _read_message(sock: socket.socket) -> bytes | None:
    header = _read_exactly(sock, 4)
    if header is None:
        return None
    (length,) = struct.unpack("<i", header)
    body = _read_exactly(sock, length - 4)
    return None if body is None else header + body


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


class ReplyLosingProxy:
    def __init__(self, upstream_port: int, threshold: int):
        self.upstream_port = upstream_port
        self.threshold = threshold
        self.port = free_port()
        self.armed = 0  # how many large requests' replies to drop
        self.dropped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def arm(self, count: int = 1) -> None:
        with self._lock:
            self.armed += count

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            pending = {"drop": 0}
            threading.Thread(target=self._requests, args=(client, upstream, pending), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client, pending), daemon=True).start()

    def _requests(self, client, upstream, pending) -> None:
        while (message := _read_message(client)) is not None:
            if len(message) > self.threshold:
                with self._lock:
                    if self.armed:
                        self.armed -= 1
                        pending["drop"] += 1
            upstream.sendall(message)
        upstream.close()

    def _replies(self, upstream, client, pending) -> None:
        while (message := _read_message(upstream)) is not None:
            if pending["drop"]:
                pending["drop"] -= 1
                self.dropped += 1
                continue
            try:
                client.sendall(message)
            except OSError:
                break
        client.close()

    def close(self) -> None:
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
