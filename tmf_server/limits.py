"""ASGI middleware guarding requests: body size (413), nesting depth (400), a declared media type (415), and
paths with control characters (404)."""
from __future__ import annotations

import re

from tmf_server.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType

# Deeper JSON overflows Python's recursion (json, deepcopy, validators) and MongoDB's 100-level BSON limit.
MAX_NESTING = 64
_JSON_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


class _NestingDepth:
    """Follows the bracket depth of a JSON text fed in pieces, ignoring brackets inside strings."""

    def __init__(self, limit: int):
        self.limit = limit
        self.depth = 0
        self.in_string = False
        self.escaped_at = -1  # offset of the character a backslash escapes
        self.seen = 0

    def feed(self, chunk: bytes) -> bool:
        """False as soon as the text is nested deeper than the limit."""
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
        for name, value in headers:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise self._too_large()
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
    (A bodiless POST, such as an admin redrive, needs none; an operation that requires a body still gets its 400.)"""

    METHODS_WITH_BODY = ("POST", "PUT", "PATCH")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in self.METHODS_WITH_BODY:
            headers = dict(scope.get("headers", []))
            has_body = headers.get(b"content-length", b"0").strip() not in (b"", b"0") \
                or b"transfer-encoding" in headers
            if has_body and not headers.get(b"content-type", b"").strip():
                raise UnsupportedMediaType("The request has no Content-Type header; send the body as JSON "
                                           "with its media type (application/json, or a patch media type).")
        await self.app(scope, receive, send)


class RejectControlCharacters:
    """No resource has control characters in its URL; Connexion's router does not match such a path and
    Flask would reach a handler without its operation (a 500). Answer 404 before routing."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and any(ord(ch) < 32 or ord(ch) == 127 for ch in scope.get("path", "")):
            raise NotFound("No resource or operation at this URL: it contains control characters.")
        await self.app(scope, receive, send)
