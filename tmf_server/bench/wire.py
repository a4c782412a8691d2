"""A minimal HTTP/1.1 keep-alive client on asyncio streams: one request at a time per connection.

Only what a benchmark needs: the status line, the headers, a body by Content-Length, chunked or up to the close.
Requests are pre-encoded bytes, so the hot loop does little more than write, read and time.
"""
from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

READ_LIMIT = 1 << 22  # longest header block or chunk-size line the reader accepts


class TransportError(Exception):
    """No answer: connection refused, reset, closed early, timed out, or not HTTP."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> "Origin":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an absolute http(s) URL: {url!r}")
        return cls(parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def encode(origin: Origin, method: str, target: str, body: bytes | None = None, content_type: str | None = None,
           headers: dict[str, str] | None = None) -> bytes:
    """The request's bytes: `target` is the path with its query string."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.host_header}", "Accept: application/json"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Type: {content_type or 'application/json'}")
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class Connection:
    """One persistent connection to `origin`, opened on first use and again after the server closed it."""

    def __init__(self, origin: Origin, timeout: float = 30.0):
        self.origin = origin
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = False  # a request was answered on the current socket

    async def _open(self) -> None:
        context = ssl.create_default_context() if self.origin.scheme == "https" else None
        try:
            self._reader, self._writer = await asyncio.open_connection(
                self.origin.host, self.origin.port, ssl=context, limit=READ_LIMIT)
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.origin.host}:{self.origin.port}: "
                                 f"{exc.strerror or exc}") from None
        self._used = False

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def send(self, request: bytes, method: str = "GET") -> Response:
        """Sends the encoded request and reads the whole answer. A socket the server closed while it was idle
        (keep-alive timeout) is replaced once, transparently: the request had not reached the server."""
        if self._writer is None or self._reader.at_eof() or self._writer.is_closing():
            self.close()
            await self._open()
        reused = self._used
        try:
            return await self._timed(request, method)
        except _ClosedBeforeAnswer:
            self.close()
            if not reused:
                raise TransportError("the server closed the connection without answering") from None
        await self._open()
        try:
            return await self._timed(request, method)
        except _ClosedBeforeAnswer:
            self.close()
            raise TransportError("the server closed the connection without answering") from None

    async def _timed(self, request: bytes, method: str) -> Response:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(request, method)
        except TimeoutError:
            self.close()
            raise TransportError(f"no complete answer within {self.timeout:g} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from None

    async def _exchange(self, request: bytes, method: str) -> Response:
        reader, writer = self._reader, self._writer
        try:
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionResetError, BrokenPipeError):
            raise _ClosedBeforeAnswer() from None
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _ClosedBeforeAnswer() from None
            raise
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        status = int(rest[:3])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()  # delimited by the close
            headers["connection"] = "close"
        self._used = True
        if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
            self.close()
        return Response(status, headers, body)


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body (RFC 9112 7.1), trailers skipped."""
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class _ClosedBeforeAnswer(Exception):
    pass
