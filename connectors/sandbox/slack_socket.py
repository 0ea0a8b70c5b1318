"""The sandbox's Socket Mode: apps.connections.open hands out a ws:// URL on the
same server, where the client gets `hello` and then events in Socket Mode
envelopes (each to one live connection; dropped while none is connected) and
acks them by envelope id. A mixin of SlackSandbox (connectors/sandbox/slack.py)."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

from aiohttp import WSMsgType, web


class SlackSocketMode:
    """Socket Mode for SlackSandbox: pushing events, the WebSocket, acks."""

    @property
    def connected_sockets(self) -> int:
        with self.lock:
            return sum(1 for ws in self._sockets if not ws.closed)

    def _event(self, channel: str, event: dict) -> None:
        conv = self.conversations[channel]
        if not conv["is_member"]:
            return
        event = {**event, "channel": channel, "event_ts": event.get("ts"), "channel_type": self.channel_type(conv)}
        envelope = {"envelope_id": str(uuid.uuid4()), "type": "events_api", "accepts_response_payload": False,
                    "retry_attempt": 0, "retry_reason": "",
                    "payload": {"token": "verification-token", "team_id": self.team_id, "api_app_id": "A0SANDBOX",
                                "event": event, "type": "event_callback", "event_id": f"Ev{next(self._ids):08d}",
                                "event_time": int(time.time())}}
        live = [ws for ws in self._sockets if not ws.closed]
        if not live:
            self.dropped_events.append(envelope)
            return
        self.envelopes.append(envelope)
        ws = live[len(self.envelopes) % len(live)]  # each envelope goes to one connection
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(ws.send_str(json.dumps(envelope))))

    def drop_sockets(self) -> None:
        """Close every Socket Mode connection (the client should reconnect)."""
        async def close_all():
            for ws in list(self._sockets):
                await ws.close()
        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(5)

    def wait_acked(self, n: int, timeout: float = 30.0) -> set[str]:
        return self.wait_for(lambda: set(self.acked) if len(self.acked) >= n else None, timeout)

    def _m_apps_connections_open(self, p):
        return {"url": f"ws://{self.host}:{self.port}/link/?ticket={uuid.uuid4()}&app_id=A0SANDBOX"}

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if not request.query.get("ticket"):
            return web.Response(status=401, text="missing ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self.lock:
            self._sockets.append(ws)
            count = len([s for s in self._sockets if not s.closed])
        await ws.send_str(json.dumps({"type": "hello", "num_connections": count,
                                      "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
                                      "connection_info": {"app_id": "A0SANDBOX"}}))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        body = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(body, dict) and body.get("envelope_id"):
                        with self.lock:
                            self.acked.add(body["envelope_id"])
                        self.changed()
        finally:
            with self.lock:
                if ws in self._sockets:
                    self._sockets.remove(ws)
        return ws

    async def on_stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
