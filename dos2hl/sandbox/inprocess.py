"""The sandbox app as an httpx transport in this process: no server, no thread per request.

Starlette's ``TestClient`` starts an event-loop thread for every request made outside its context
manager (about 9 ms a request here; 3.6 ms inside it); a migration test sends thousands. This
transport keeps one event loop and runs each request on it in the calling thread (1.2 ms), one request
at a time across threads — the app's store is one SQLite connection, so requests were never parallel
in the app anyway. A thread that already runs an event loop (an async caller) is served from a helper
thread instead, since one thread cannot run two loops.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


class InProcessTransport(httpx.BaseTransport):
    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._helper: ThreadPoolExecutor | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._run(request)
        if self._helper is None:
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="sandbox-inprocess")
        return self._helper.submit(self._run, request).result()

    def _run(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        with self._lock:
            return self._loop.run_until_complete(self._send(request, body))

    async def _send(self, request: httpx.Request, body: bytes) -> httpx.Response:
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body,
                              extensions=request.extensions)
        response = await self._asgi.handle_async_request(inner)
        content = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        return httpx.Response(response.status_code, headers=response.headers, content=content,
                              extensions=response.extensions, request=request)

    def close(self) -> None:
        if self._helper is not None:
            self._helper.shutdown(wait=True)
            self._helper = None
        with self._lock:
            if not self._loop.is_closed():
                self._loop.close()
