"""The sandbox's file storage: files kept by the workspace, the upload URL that
files.getUploadURLExternal hands out, and authenticated downloads (without the
bot's bearer token Slack answers with its sign-in page). A mixin of SlackSandbox
(connectors/sandbox/slack.py)."""
from __future__ import annotations

import time

from aiohttp import web


class SlackFiles:
    """Files for SlackSandbox: storing, uploading, downloading."""

    def _add_file(self, name: str, mimetype: str, data: bytes, user: str) -> dict:
        fid = f"F{next(self._ids):08d}"
        url = f"{self.url}/files-pri/{self.team_id}-{fid}/{name}"
        f = {"id": fid, "created": int(time.time()), "name": name, "title": name, "mimetype": mimetype,
             "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary", "user": user, "size": len(data),
             "url_private": url, "url_private_download": url + "?download=1", "is_external": False,
             "mode": "hosted"}
        self.files[fid] = {"meta": f, "data": bytes(data)}
        return dict(f)

    async def _upload(self, request: web.Request) -> web.Response:
        fid = request.match_info["fid"]
        data = await request.read()
        with self.lock:
            f = self.files.get(fid)
            if f is None:
                return web.Response(status=404, text="not found")
            f["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.Response:
        fid = request.match_info["key"].rsplit("-", 1)[-1]
        auth = request.headers.get("Authorization", "")
        with self.lock:
            self.record("file download", {"file": fid, "authorized": auth == f"Bearer {self.bot_token}"})
            f = self.files.get(fid)
            ok = auth == f"Bearer {self.bot_token}" and self.bot_token in self.valid_tokens
        if not ok:  # Slack answers an unauthenticated download with its sign-in page
            return web.Response(text="<!DOCTYPE html><html><body>Sign in to Slack</body></html>",
                                content_type="text/html")
        if f is None or f["data"] is None:
            return web.Response(status=404, text="file not found")
        return web.Response(body=f["data"], content_type=f["meta"].get("mimetype") or "application/octet-stream")
