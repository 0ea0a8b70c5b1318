"""A loopback aiohttp server on its own thread and event loop.

Subclasses add routes and state. State is guarded by `self.lock` (the test or
demo thread acts as the customer while the loop thread answers the bot);
`self.changed()` wakes long polls and socket writers.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    """An injected failure: answer the next `times` calls of `method` (None = any) with `status`."""

    method: str | None
    status: int
    times: int
    retry_after: float | None = None
    skip: int = 0  # calls let through before the failures start
    after: str = ""  # "slow": do the call, answer `delay` s late; "drop": do it, close without answering
    delay: float = 0.0


class LoopbackServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.calls: list[tuple[str, dict]] = []  # (method, params) in arrival order
        self.faults: list[Fault] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._waiters: set[asyncio.Future] = set()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def make_app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> "LoopbackServer":
        if self._thread:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._start_error:
            raise self._start_error
        return self

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as e:  # reported to start()
            self._start_error = e
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._runner.cleanup())
        self.loop.close()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.make_app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if not self._thread:
            return
        loop = self.loop
        asyncio.run_coroutine_threadsafe(self.on_stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._thread = None

    async def on_stop(self) -> None:
        """Close long-lived connections before the loop stops."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- waking waiters ----------------------------------------------------------
    def changed(self) -> None:
        """Wake every long poll; call after changing state (any thread)."""
        if self.loop and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait_change(self, timeout: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiters.discard(fut)

    # -- faults ----------------------------------------------------------------------
    def fail(self, status: int = 500, method: str | None = None, times: int = 1,
             retry_after: float | None = None, skip: int = 0, after: str = "", delay: float = 0.0) -> None:
        """Answer the next `times` calls (of `method`, or any) with HTTP `status`,
        after letting `skip` calls through; 429 carries `retry_after` seconds.
        With `after` the call is carried out (a message is posted) and then
        answered `delay` seconds late ("slow") or not at all ("drop")."""
        with self.lock:
            self.faults.append(Fault(method, status, times, retry_after, skip, after, delay))

    async def misbehave(self, request, fault: Fault | None) -> None:
        """After a call was carried out: the slow answer or the dropped connection."""
        if fault is None or not fault.after:
            return
        if fault.after == "slow":
            await asyncio.sleep(fault.delay)
        elif fault.after == "drop" and request.transport is not None:
            request.transport.abort()

    def take_fault(self, method: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method in (None, method):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, method: str, params: dict) -> None:
        with self.lock:
            self.calls.append((method, dict(params)))

    def count(self, method: str) -> int:
        with self.lock:
            return sum(1 for m, _ in self.calls if m == method)

    def wait_for(self, predicate, timeout: float = 30.0, interval: float = 0.01):
        """Poll `predicate()` until it returns something truthy; raise on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError("the condition did not come true in time")
            time.sleep(interval)


async def read_params(request: web.Request) -> dict[str, Any]:
    """Query string, form (urlencoded or multipart) or JSON body, merged.
    Uploaded files come back as (filename, content_type, bytes)."""
    params: dict[str, Any] = dict(request.query)
    ctype = request.content_type
    if request.method == "POST" and request.can_read_body:
        if ctype == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif ctype.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()
                if part.filename is not None:
                    params[part.name] = (part.filename, part.headers.get("Content-Type", ""), bytes(data))
                else:
                    params[part.name] = data.decode("utf-8")
        else:
            params.update(await request.post())
    return params
