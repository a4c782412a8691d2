"""Serves the Flask (WSGI) application under the ASGI server with one thread hand-off per request.

Connexion's FlaskApp runs Flask through a2wsgi, which hands control between the event loop and a worker thread
several times per request (the body read, the response start, every body chunk and its end each wait for the
loop). This bridge reads the request body in the event loop, runs the whole WSGI call in one executor job (with
the request's context variables), collects the response there, and sends it from the loop. The server's
answers are JSON documents bounded by the page size, so buffering them costs little.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import io
from concurrent.futures import ThreadPoolExecutor

from a2wsgi.wsgi import build_environ


class BufferedWSGIBridge:
    def __init__(self, wsgi_app, workers: int = 16):
        self.wsgi_app = wsgi_app
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="WSGI")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # handled by Connexion's own middleware; answered here for completeness
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        environ = build_environ(scope, io.BytesIO(b"".join(chunks)))
        call = functools.partial(contextvars.copy_context().run, self._call, environ)
        status, headers, body = await asyncio.get_running_loop().run_in_executor(self.executor, call)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _call(self, environ) -> tuple[int, list, bytes]:
        started: list = []
        parts: list[bytes] = []

        def start_response(status, response_headers, exc_info=None):
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [int(status.split(" ", 1)[0]),
                          [(k.strip().lower().encode("latin1"), v.strip().encode("latin1"))
                           for k, v in response_headers]]
            return parts.append

        iterable = self.wsgi_app(environ, start_response)
        try:
            parts.extend(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        return started[0], started[1], b"".join(parts)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False)
