"""Serves the Flask (WSGI) application under the ASGI server with one thread hand-off per request.

Connexion's FlaskApp runs Flask through a2wsgi, which hands control between the event loop and a worker thread
several times per request (the body read, the response start, every body chunk and its end each wait for the
loop). This bridge reads the request body in the event loop, runs the whole WSGI call in one job of its own
worker threads (with the request's context variables), collects the response there, and sends it from the loop.
The server's answers are JSON documents bounded by the page size, so buffering them costs little.

The workers take jobs from a SimpleQueue and hand each result back with one `call_soon_threadsafe`: a
ThreadPoolExecutor behind `run_in_executor` costs a semaphore, a concurrent Future and a chained asyncio Future
per call (about 5 % of the server's CPU on a read by id).
"""
from __future__ import annotations

import asyncio
import contextvars
import io
import queue
import threading

from a2wsgi.wsgi import build_environ


class BufferedWSGIBridge:
    def __init__(self, wsgi_app, workers: int = 16):
        self.wsgi_app = wsgi_app
        self.workers = workers
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []  # started at the first request
        self.start_lock = threading.Lock()

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
        if not self.threads:
            self._start()
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        self.jobs.put((contextvars.copy_context(), environ, loop, answer))
        status, headers, body = await answer
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

    def _start(self) -> None:
        with self.start_lock:
            if self.threads:
                return
            self.threads = [threading.Thread(target=self._work, name=f"WSGI_{number}", daemon=True)
                            for number in range(self.workers)]
            for thread in self.threads:
                thread.start()

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            context, environ, loop, answer = job
            try:
                result, error = context.run(self._call, environ), None
            except BaseException as exc:  # noqa: BLE001 - raised in the awaiting request, as an executor would
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, answer, result, error)
            except RuntimeError:  # the loop is closed: nobody awaits the answer any more
                pass

    def shutdown(self) -> None:
        """Workers finish the job they are on and stop."""
        for _thread in self.threads:
            self.jobs.put(None)


def _settle(answer: asyncio.Future, result, error: BaseException | None) -> None:
    if answer.cancelled():  # the request's task was cancelled while its WSGI call ran
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(result)
