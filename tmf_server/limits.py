"""ASGI middleware guarding requests: requests in flight (503) and a body that does not arrive in time (408),
body size (413), nesting depth (400), a declared media type (415, matched without regard to case), URLs that are
too long (414) or that no resource has (control characters, empty segments: 404)."""
from __future__ import annotations

import asyncio
import re

from tmf_server.errors import (BadRequest, NotFound, PayloadTooLarge, RequestTimeout, ServiceUnavailable,
                               UnsupportedMediaType, UriTooLong)

# Deeper JSON overflows Python's recursion (json, deepcopy, validators) and MongoDB's 100-level BSON limit.
MAX_NESTING = 64
_JSON_STRUCTURE = re.compile(rb'[\[\]{}"\\]')
_BODY_HEADERS = (b"content-length", b"transfer-encoding")
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")


class _NestingDepth:
    """Follows the bracket depth of a JSON text fed in pieces, ignoring brackets inside strings.

    The depth can never exceed the number of opening brackets seen (those inside strings included), which bytes
    counting gives at C speed: the text is scanned character by character (a few per cent of a create's CPU) only
    once that number passes the limit, from its first piece."""

    def __init__(self, limit: int):
        self.limit = limit
        self.depth = 0
        self.in_string = False
        self.escaped_at = -1  # offset of the character a backslash escapes
        self.seen = 0
        self.opened = 0  # opening brackets in the pieces not scanned yet
        self.unscanned: list[bytes] | None = []  # None once scanning

    def feed(self, chunk: bytes) -> bool:
        """False as soon as the text is nested deeper than the limit."""
        if self.unscanned is not None:
            self.opened += chunk.count(b"[") + chunk.count(b"{")
            self.unscanned.append(chunk)
            if self.opened <= self.limit:
                return True
            pieces, self.unscanned = self.unscanned, None
            return all(self._scan(piece) for piece in pieces)
        return self._scan(chunk)

    def _scan(self, chunk: bytes) -> bool:
        base, self.seen = self.seen, self.seen + len(chunk)
        for match in _JSON_STRUCTURE.finditer(chunk):
            at = base + match.start()
            if at == self.escaped_at:
                continue
            char = chunk[match.start()]
            if self.in_string:
                if char == 0x5C:  # backslash
                    self.escaped_at = at + 1
                elif char == 0x22:  # quote
                    self.in_string = False
            elif char == 0x22:
                self.in_string = True
            elif char in b"[{":
                self.depth += 1
                if self.depth > self.limit:
                    return False
            elif char in b"]}":
                self.depth -= 1
        return True


class BodySizeLimit:
    def __init__(self, app, max_bytes: int, max_nesting: int = MAX_NESTING):
        self.app = app
        self.max_bytes = max_bytes
        self.max_nesting = max_nesting

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body is larger than {self.max_bytes} bytes.")

    def _too_deep(self) -> BadRequest:
        return BadRequest(f"The request body is nested more than {self.max_nesting} levels deep.",
                          code="nestingTooDeep")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        has_body = False
        for name, value in headers:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_bytes:
                    raise self._too_large()
                has_body = True
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:  # no Content-Length nor Transfer-Encoding: HTTP/1.1 says there is no body to limit
            await self.app(scope, receive, send)
            return
        received = 0
        nesting = _NestingDepth(self.max_nesting)

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_bytes:  # a chunked body without Content-Length
                    raise self._too_large()
                if not nesting.feed(chunk):
                    raise self._too_deep()
            return message

        if any(name == b"transfer-encoding" for name, _ in headers) and \
                not any(name == b"content-length" for name, _ in headers):
            # Connexion's body validator reads a body only when Content-Length says there is one: read a
            # chunked body here (within the limits) and pass it on with its length.
            messages, more = [], True
            while more:
                message = await limited_receive()
                messages.append(message)
                more = message["type"] == "http.request" and message.get("more_body", False)
            length = str(sum(len(m.get("body", b"")) for m in messages)).encode()
            scope = {**scope, "headers": [(n, v) for n, v in headers if n != b"transfer-encoding"]
                     + [(b"content-length", length)]}
            replay = iter(messages)

            async def replay_receive():
                return next(replay, None) or await receive()

            await self.app(scope, replay_receive, send)
            return
        await self.app(scope, limited_receive, send)


class RequireContentType:
    """A request that carries a body must say what it is; Connexion would otherwise guess JSON.
    (A bodiless POST, such as an admin redrive, needs none; an operation that requires a body still gets its 400.)
    Media types are case-insensitive (RFC 9110, 8.3.1): the type and subtype are passed on in lower case, since
    Connexion picks the body validator by exact name and would skip validation for `APPLICATION/JSON`."""

    METHODS_WITH_BODY = ("POST", "PUT", "PATCH")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in self.METHODS_WITH_BODY:
            headers = dict(scope.get("headers", []))
            has_body = headers.get(b"content-length", b"0").strip() not in (b"", b"0") \
                or b"transfer-encoding" in headers
            content_type = headers.get(b"content-type", b"").strip()
            if has_body and not content_type:
                raise UnsupportedMediaType("The request has no Content-Type header; send the body as JSON "
                                           "with its media type (application/json, or a patch media type).")
            media_type, separator, parameters = content_type.partition(b";")
            if media_type != media_type.lower():
                scope = {**scope, "headers": [(n, media_type.lower() + separator + parameters
                                               if n == b"content-type" else v) for n, v in scope["headers"]]}
        await self.app(scope, receive, send)


class RejectUnservableUrls:
    """A URL longer than `max_url_bytes` is a 414 (the query strings of lists, and so their `Link` headers, stay
    bounded). No resource has control characters or an empty segment (`//admin`) in its path; Connexion's router
    does not match such a path and Flask would reach a handler without its operation (a 500): 404 before routing."""

    def __init__(self, app, max_url_bytes: int):
        self.app = app
        self.max_url_bytes = max_url_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")
            length = len(scope.get("raw_path") or path.encode()) + len(scope.get("query_string", b""))
            if length > self.max_url_bytes:
                raise UriTooLong(f"The URL is {length} bytes long; this server takes at most {self.max_url_bytes}.")
            if _CONTROL_CHARACTER.search(path):
                raise NotFound("No resource or operation at this URL: it contains control characters.")
            if "//" in path:
                raise NotFound("No resource or operation at this URL: it has an empty path segment ('//').")
        await self.app(scope, receive, send)


class RequestGuard:
    """Slow and idle clients cannot exhaust the server: at most `max_in_flight` requests are handled at once
    (above it a 503 with Retry-After), and a request body must arrive within `body_timeout` seconds of the
    request's headers (else a 408). Both answers close the connection, so the client's socket is released."""

    def __init__(self, app, max_in_flight: int, body_timeout: float, retry_after: int):
        self.app = app
        self.max_in_flight = max_in_flight
        self.body_timeout = body_timeout
        self.retry_after = retry_after
        self.in_flight = 0  # only the event loop's thread changes it

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            raise ServiceUnavailable(f"The server is handling {self.max_in_flight} requests; retry later.",
                                     code="tooManyRequestsInFlight",
                                     headers={"Retry-After": str(self.retry_after), "Connection": "close"})
        self.in_flight += 1
        if not any(name in _BODY_HEADERS for name, _ in scope.get("headers", ())):
            # No body follows the headers (HTTP/1.1): the ASGI server has the request complete, nothing to time.
            try:
                await self.app(scope, receive, send)
            finally:
                self.in_flight -= 1
            return
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        body_done = False

        async def timed_receive():
            nonlocal body_done
            if body_done:  # after the body, receive waits for a disconnect: no deadline then
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(f"The request body did not arrive within {self.body_timeout:g} seconds.",
                                     headers={"Connection": "close"}) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        try:
            await self.app(scope, timed_receive, send)
        finally:
            self.in_flight -= 1
