"""Slack polling: the conversations the bot is in, their history from each
conversation's cursor, and thread tracking (which threads to read, from which
`t:<channel>:<thread ts>` cursor, and when whole for edits and deletions of
replies). The cadence is explained in connectors/slack.py. A mixin of
SlackConnector."""
from __future__ import annotations

import time

from connectors.base import ConnectorError
from connectors.slack_messages import SlackMessages

TYPES = "im,mpim,private_channel,public_channel"
HOT_SECONDS = 3600  # a thread we answered in, or with a reply within this, is read every poll
RESCAN_WINDOW = 86400.0  # the rescan re-reads the last day of each conversation
CONVERSATIONS_REFRESH = 60.0


class SlackThreads(SlackMessages):
    """Reading history and threads into inbound items (for SlackConnector)."""

    # set by SlackConnector
    rescan_seconds: float
    thread_scan_seconds: float
    thread_seconds: float
    backfill_seconds: float
    _convs: dict[str, str]
    _convs_at: float
    _calls: int
    _last_rescan: float
    _last_thread_scan: float
    _hot: dict[tuple[str, str], float]
    _reread_at: dict[str, float]
    _known: dict[str, set[str]]
    _known_replies: dict[tuple[str, str], set[str]]

    def _conversations(self) -> dict[str, str]:
        with self._lock:
            if self._convs and time.time() - self._convs_at < CONVERSATIONS_REFRESH:
                return dict(self._convs)
        found: dict[str, str] = {}
        names: dict[str, str] = {}
        page = None
        while True:
            r = self._api("users_conversations", types=TYPES, exclude_archived=True, limit=200, cursor=page)
            for c in r.get("channels", []):
                found[c["id"]] = ("im" if c.get("is_im") else "mpim" if c.get("is_mpim")
                                  else "group" if c.get("is_private") else "channel")
                if c.get("name"):
                    names[c["id"]] = c["name"]
            page = (r.get("response_metadata") or {}).get("next_cursor")
            if not page:
                break
        with self._lock:
            self._convs, self._convs_at = found, time.time()
            self._conv_names.update(names)
        return dict(found)

    def _pages(self, method: str, **kw) -> list[dict]:
        out, page = [], None
        while True:
            r = self._api(method, limit=200, cursor=page, **kw)
            self._calls += 1  # each page counts against Tier 3
            out.extend(r.get("messages", []))
            page = (r.get("response_metadata") or {}).get("next_cursor")
            if not page or not r.get("has_more", True):
                return out

    def _poll(self, cursor: dict, new: dict, items: list) -> None:
        """Read everything new since `cursor` into `items` and `new`.

        Each conversation's history is read from its cursor; at a rescan from a day
        back (edits, deletions, new replies to recent threads) and at a thread scan
        from `thread_days` back, so a reply to a thread of any age within that is
        found by its parent's `latest_reply`. Threads with new replies are read from
        their own cursor (`t:<channel>:<thread ts>` = the newest reply read, kept in
        the store with the other cursors); threads active within the day are read
        whole at a rescan, for edits and deletions of replies."""
        convs = self._conversations()
        now = time.time()
        rescan = now - self._last_rescan >= self.rescan_seconds
        thread_scan = now - self._last_thread_scan >= self.thread_scan_seconds
        horizon = now - self.thread_seconds
        threads: dict[tuple[str, str], bool] = {}  # (channel, thread ts) -> read it whole
        starts: dict[tuple[str, str], str] = {}  # threads without a cursor: read from here
        for cid, ctype in convs.items():
            key = f"c:{cid}"
            first = not cursor.get(key)
            oldest = cursor.get(key) or f"{now - self.backfill_seconds:.6f}"
            # f:<channel>: since when replies in this conversation are ours to read (its backfill,
            # or when this version first read it), so a thread seen for the first time never
            # brings back replies from before that
            floor = cursor.get(f"f:{cid}") or (oldest if first else f"{now:.6f}")
            new[f"f:{cid}"] = floor
            window = float(oldest)
            if rescan:
                window = min(window, now - RESCAN_WINDOW)
            if thread_scan or first:
                window = min(window, horizon)
            try:
                msgs = self._pages("conversations_history", channel=cid, oldest=f"{window:.6f}")
            except ConnectorError as e:
                if "not_in_channel" in str(e) or "channel_not_found" in str(e):
                    continue  # left since the last refresh
                raise
            msgs.sort(key=lambda m: float(m["ts"]))
            latest = oldest
            for m in msgs:
                ts = m["ts"]
                if float(ts) > float(oldest):
                    item = self._message_item(cid, ctype, m)
                    if item:
                        items.append(item)
                    latest = ts
                elif m.get("subtype") == "tombstone":  # deleted, replies kept
                    items.append(self._delete_item(cid, ts))
                else:
                    self._check_edit(cid, ctype, m, cursor, new, items)
                last_reply = m.get("latest_reply")
                if not last_reply:
                    continue
                seen = cursor.get(f"t:{cid}:{ts}") or max(ts, floor, key=float)
                if float(last_reply) > float(seen):
                    threads.setdefault((cid, ts), False)
                    starts[(cid, ts)] = seen
            if float(window) < float(oldest):
                self._check_deletions(cid, window, {m["ts"] for m in msgs}, items)
            self._known.setdefault(cid, set()).update(m["ts"] for m in msgs)
            new[key] = latest
        if rescan:
            self._last_rescan = now
        if thread_scan:
            self._last_thread_scan = now
        with self._lock:  # hot threads: answered by us lately
            self._hot = {k: until for k, until in self._hot.items() if until > now}
            for k in self._hot:
                if k[0] in convs:
                    threads.setdefault(k, False)
        for key, value in cursor.items():
            if not key.startswith("t:"):
                continue
            cid, thread_ts = key[2:].split(":", 1)
            last = float(value or 0)
            if last < horizon:
                new[key] = ""  # over: the store forgets it
                self._reread_at.pop(key, None)
            elif cid in convs and last > now - HOT_SECONDS:
                threads.setdefault((cid, thread_ts), False)  # a reply within the hour: every poll
            if cid in convs and rescan and last > now - RESCAN_WINDOW and self._reread_at.get(key, 0) <= now:
                # whole, for edits and deletions of replies: every rescan within the hour of the
                # last reply, then less often (every N rescans N hours after), to spare the budget
                threads[(cid, thread_ts)] = True
                self._reread_at[key] = now + self.rescan_seconds * max(1.0, (now - last) / 3600)
        for (cid, thread_ts), whole in sorted(threads.items()):
            self._poll_thread(cid, convs[cid], thread_ts, cursor, new, items, whole, starts.get((cid, thread_ts)))

    def _poll_thread(self, cid: str, ctype: str, thread_ts: str, cursor: dict, new: dict, items: list,
                     whole: bool = False, start: str | None = None) -> None:
        """Read a thread's new replies (after `start` if it has no cursor yet); `whole`:
        all of it, applying edits and deletions of replies read before (by this
        process: Slack lists no deleted replies)."""
        key = f"t:{cid}:{thread_ts}"
        seen = cursor.get(key) or start or thread_ts
        try:
            msgs = self._pages("conversations_replies", channel=cid, ts=thread_ts, oldest=thread_ts if whole else seen)
        except ConnectorError as e:
            if "thread_not_found" in str(e):
                return
            raise
        latest, present = seen, set()
        for m in sorted(msgs, key=lambda m: float(m["ts"])):
            ts = m["ts"]
            if ts == thread_ts:
                continue
            present.add(ts)
            if float(ts) > float(seen):
                item = self._message_item(cid, ctype, m)
                latest = max(latest, ts, key=float)
            elif m.get("edited"):  # the store ignores an edit it has already applied
                item = self._message_item(cid, ctype, m, kind="edit", edited_at=float(m["edited"]["ts"]),
                                          download=False)
            else:
                item = None
            if item:
                items.append(item)
        known = self._known_replies.setdefault((cid, thread_ts), set())
        if whole:
            items.extend(self._delete_item(cid, ts) for ts in sorted(known - present, key=float))
            known.clear()
        known.update(present)
        new[key] = latest

    def _check_edit(self, cid: str, ctype: str, m: dict, cursor: dict, new: dict, items: list) -> None:
        edited = (m.get("edited") or {}).get("ts")
        key = f"e:{cid}"
        if edited and float(edited) > float(new.get(key) or cursor.get(key) or 0):
            item = self._message_item(cid, ctype, m, kind="edit", edited_at=float(edited), download=False)
            if item:
                items.append(item)
            new[key] = max(edited, new.get(key) or "0", key=float)

    def _check_deletions(self, cid: str, since: float, present: set[str], items: list) -> None:
        known = self._known.get(cid, set())
        for ts in sorted(known):
            if float(ts) > since and ts not in present:
                items.append(self._delete_item(cid, ts))
        self._known[cid] = {ts for ts in known if float(ts) > since and ts in present}
