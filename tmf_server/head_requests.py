"""ASGI middleware: HEAD is answered as the GET it stands for, without the body (RFC 9110 9.3.2)."""
from __future__ import annotations


class HeadAsGet:
    """Everything inside (routing, validation, handlers) sees a GET; only the body is dropped on the way out."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message):
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
