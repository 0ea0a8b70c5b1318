"""State for the automation (connectors/automation.py): what it has already
seen, which rules fired for which wait, breaches, satisfaction questions.

Everything the automation reads in bulk is claimed inside one write
transaction, so two processes (or a poller thread and the timer) can never
both act on the same new message or event.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from store.db import dumps, loads

CURSOR = "automation"  # row name in the cursors table
# A message that arrived as it was sent, not history brought in by an import or a first read.
# (Flags compared as text: the one form SQLite and PostgreSQL both accept, see NOT_BACKLOG.)
_LIVE = ("coalesce(CAST(json_extract(meta, '$.imported') AS TEXT), '0') = '0'"
         " AND coalesce(CAST(json_extract(meta, '$.backlog') AS TEXT), '0') = '0'")
MAX_HOOK_ATTEMPTS = 3  # a run cut off by shutdown is queued again, at most this many times in all


class AutomationStateMixin:
    # -- what is new since the last pass, claimed and handled in one transaction --------
    def claim_new(self, limit: int = 200) -> dict[str, list]:
        """New inbound messages, events and sent replies since the last claim,
        oldest first: {"messages": [(id, received_at)], "events": [id],
        "sent": [(message_id, sent_at)]}.

        The cursor moves past them at once, inside the caller's transaction: run
        this and the handling of what it returns in one `store.tx()`, and each
        item is handled exactly once, by whichever process or thread claims it,
        whether the engine ran when it happened or started days later."""
        with self.tx():
            cur = self.load_cursor(CURSOR)
            if not cur:  # a store from before schema v8 gave none; start from now
                cur = {"message": self.q1("SELECT coalesce(max(id), 0) FROM messages")[0],
                       "event": self.q1("SELECT coalesce(max(id), 0) FROM events")[0], "sent_at": 0, "sent_id": 0}
                top = self.q1("SELECT sent_at, id FROM outbox WHERE state='sent' ORDER BY sent_at DESC, id DESC LIMIT 1")
                if top:
                    cur["sent_at"], cur["sent_id"] = top[0], top[1]
                self.save_cursor(CURSOR, cur)
                return {"messages": [], "events": [], "sent": []}
            rows = self.q("SELECT id, direction, received_at FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                          (int(cur["message"]), limit))
            events = [r[0] for r in self.q("SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?",
                                           (int(cur["event"]), limit))]
            sent = self.q("SELECT message_id, sent_at, id FROM outbox WHERE state='sent' AND (sent_at, id) > (?, ?)"
                          " ORDER BY sent_at, id LIMIT ?", (float(cur["sent_at"]), int(cur["sent_id"]), limit))
            new = dict(cur)
            if rows:  # replies and notes move the cursor on too
                new["message"] = str(rows[-1][0])
            if events:
                new["event"] = str(events[-1])
            if sent:
                new["sent_at"], new["sent_id"] = repr(sent[-1]["sent_at"]), str(sent[-1]["id"])
            if new != cur:
                self.save_cursor(CURSOR, new)
            return {"messages": [(r[0], r[2]) for r in rows if r[1] == "in"], "events": events,
                    "sent": [(r["message_id"], r["sent_at"]) for r in sent]}

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a transaction: what the block wrote is undone if it raises (the
        exception still propagates), while the rest of the transaction stands."""
        with self.tx():
            self.conn.execute("SAVEPOINT item")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO item")
                self.conn.execute("RELEASE item")
                raise
            self.conn.execute("RELEASE item")

    # -- hook runs: a durable queue per hook ----------------------------------------------
    def queue_hook_run(self, hook: str, kind: str, command: str, timeout: float, payload: dict,
                       cap: int | None = None) -> int | None:
        """Queue one run of `hook`; its id, or None when `cap` runs already wait."""
        with self.tx():
            if cap is not None and self.q1("SELECT count(*) FROM hook_runs WHERE hook=? AND state='queued'",
                                           (hook,))[0] >= cap:
                return None
            return self.insert_id(
                "INSERT INTO hook_runs(hook, kind, command, timeout, payload, queued_at) VALUES (?, ?, ?, ?, ?, ?)",
                (hook, kind, command, timeout, dumps(payload), self.clock()))

    def hook_backlog(self, hook: str) -> dict:
        """One hook's queue: {"queued", "running", "running_since"} (cheap: by index)."""
        q = self.q1("SELECT count(*) FROM hook_runs WHERE hook=? AND state='queued'", (hook,))[0]
        r = self.q1("SELECT count(*), min(started_at) FROM hook_runs WHERE hook=? AND state='running'", (hook,))
        return {"queued": q, "running": r[0], "running_since": r[1]}

    def claim_hook_run(self, hook: str, holder: str) -> dict | None:
        """The oldest queued run of `hook`, now 'running' for `holder`; None if none waits."""
        with self.tx():
            row = self.q1("UPDATE hook_runs SET state='running', holder=?, started_at=?, attempts=attempts+1"
                          " WHERE id = (SELECT id FROM hook_runs WHERE hook=? AND state='queued' ORDER BY id LIMIT 1)"
                          " RETURNING *", (holder, self.clock(), hook))
            return dict(row) if row else None

    def finish_hook_run(self, run_id: int) -> None:
        """Forget a hook run that has finished (ok, failed or timed out: hooks.log has the outcome)."""
        with self.tx():
            self.conn.execute("DELETE FROM hook_runs WHERE id=?", (run_id,))

    def requeue_hook_run(self, run_id: int) -> bool:
        """Put a run cut off by shutdown back at the head of its queue; False
        (and the run dropped) once it has been tried MAX_HOOK_ATTEMPTS times."""
        with self.tx():
            row = self.q1("SELECT attempts FROM hook_runs WHERE id=?", (run_id,))
            if row is None:
                return False
            if row[0] >= MAX_HOOK_ATTEMPTS:
                self.conn.execute("DELETE FROM hook_runs WHERE id=?", (run_id,))
                return False
            self.conn.execute("UPDATE hook_runs SET state='queued', holder=NULL, started_at=NULL WHERE id=?", (run_id,))
            return True

    def recover_hook_runs(self, holder: str, slack: float = 10.0) -> list[dict]:
        """Runs another process left 'running' and will not finish: queued again,
        oldest first. A run is given up on when its process (on this machine)
        is gone, or when it has run past its timeout by `slack` seconds (its
        runner would have killed it). Call while holding the polling lease."""
        from store.sync_state import _alive

        with self.tx():
            rows = [dict(r) for r in self.q("SELECT id, hook, kind, attempts, holder, started_at, timeout FROM hook_runs"
                                            " WHERE state='running' AND holder IS DISTINCT FROM ? ORDER BY id", (holder,))]
            now = self.clock()
            gone = [r for r in rows if not _alive((r["holder"] or "").rpartition(":")[0])
                    or (r["started_at"] or 0) + r["timeout"] + slack < now]
            for r in gone:
                self.requeue_hook_run(r["id"])
            return gone

    def hook_queue(self) -> dict[str, dict]:
        """Per hook: {"queued", "running", "oldest_queued_at", "running_since"}."""
        out: dict[str, dict] = {}
        for r in self.q("SELECT hook, state, count(*) n, min(queued_at) q, min(started_at) s FROM hook_runs"
                        " GROUP BY hook, state"):
            h = out.setdefault(r["hook"], {"queued": 0, "running": 0, "oldest_queued_at": None, "running_since": None})
            if r["state"] == "queued":
                h["queued"], h["oldest_queued_at"] = r["n"], r["q"]
            else:
                h["running"], h["running_since"] = r["n"], r["s"]
        return out

    # -- rules ------------------------------------------------------------------------
    def claim_rule_fire(self, rule: str, customer_id: int, period: str) -> bool:
        """True the first time (rule, customer, period) is claimed, False after."""
        with self.tx():
            return self.conn.execute(
                "INSERT INTO rule_fires(rule, customer_id, period, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (rule, customer_id, period, self.clock())).rowcount == 1

    def rule_fired(self, rule: str, customer_id: int, period: str) -> bool:
        """Has `rule` already fired for this customer in `period` (e.g. the current wait)?"""
        return self.q1("SELECT 1 FROM rule_fires WHERE rule=? AND customer_id=? AND period=?",
                       (rule, customer_id, period)) is not None

    def waiting_customers(self, waited_at_least: float = 0.0, rules: list[str] = (), limit: int = 5000) -> list[int]:
        """Open customers waiting for an answer (longest first) for at least
        `waited_at_least` seconds, leaving out those every one of `rules` has
        already fired for in their current wait."""
        sql = ("SELECT c.id FROM customers c WHERE c.merged_into IS NULL AND c.status='open'"
               " AND c.waiting_since IS NOT NULL AND c.waiting_since <= ?")
        params: list = [self.clock() - waited_at_least]
        if rules:
            sql += (f" AND (SELECT count(*) FROM rule_fires f WHERE f.customer_id=c.id"
                    f" AND f.period = printf('wait:%.6f', c.waiting_since)"
                    f" AND f.rule IN ({','.join('?' * len(rules))})) < ?")
            params += [*rules, len(rules)]
        return [r[0] for r in self.q(sql + " ORDER BY c.waiting_since, c.id LIMIT ?", (*params, limit))]

    def inbound_since(self, since: float, limit: int = 10000) -> list[int]:
        """Ids of inbound messages sent since `since`, oldest first (for dry runs)."""
        return [r[0] for r in self.q("SELECT id FROM messages WHERE direction='in' AND sent_at >= ? AND deleted=0"
                                     " ORDER BY sent_at, id LIMIT ?", (since, limit))]

    def is_first_inbound(self, customer_id: int, message_id: int) -> bool:
        """Is `message_id` the customer's first message to us ever (new_customer rules)?"""
        row = self.q1("SELECT id FROM messages WHERE customer_id=? AND direction='in' ORDER BY sent_at, id LIMIT 1",
                      (customer_id,))
        return row is not None and row[0] == message_id

    def queue_auto_reply(self, customer_id: int, text: str, rule: str, *, identity_id: int | None = None,
                         channel: str | None = None, subject: str | None = None, author: str = "rules",
                         event: str | None = None) -> int:
        """An automatic reply (acknowledgement, satisfaction question). It is
        sent like any reply but does not answer the customer: they keep their
        place and their waiting time in the queue. It is written by `author`;
        `event` is the kind of event logged for it (None: the caller logs one)."""
        with self.tx():
            before = self.q1("SELECT waiting_since, unread, last_outbound_at FROM customers WHERE id=?", (customer_id,))
            message_id = self.queue_reply(customer_id, text, author, channel=channel, identity_id=identity_id,
                                          subject=subject, meta={"auto": rule}, event=event)
            self.conn.execute("UPDATE customers SET waiting_since=?, unread=?, last_outbound_at=? WHERE id=?",
                              (before["waiting_since"], before["unread"], before["last_outbound_at"], customer_id))
            return message_id

    def last_inbound_id(self, customer_id: int, channel: str | None = None) -> int | None:
        """The customer's latest inbound message (on `channel`, if given): the one that
        arrived last (see last_arrived), not the one with the latest date."""
        found = self.last_arrived("in", customer_id, channel=channel)
        return found[0] if found else None

    def last_arrived(self, direction: str = "in", customer_id: int | None = None, *,
                     channel: str | None = None) -> tuple[int, float] | None:
        """(id, received_at) of the message that reached the store last, in `direction`
        ("in" or "out"), of `customer_id` and on `channel` if given; deleted ones skipped;
        None if none.
        Arrival order is the id, not a date: a Date header from 1993 or from next year
        (imported mail, a wrong clock) says nothing about when the message came in.
        History (`omnidesk import`, old mail found on a first read) came in all at once in
        whatever order its files had, so a message that arrived live goes first; only a
        store of history alone gives its last one. (Live messages are the newest ids as a
        rule: the first query stops at once; the scan for none costs ~0.7 s at 1M.)"""
        sql = "SELECT id, received_at FROM messages WHERE direction = ? AND deleted = 0"
        params: tuple = (direction,)
        if customer_id is not None:
            sql += " AND customer_id = ?"
            params += (customer_id,)
        if channel is not None:
            sql += " AND channel = ?"
            params += (channel,)
        row = (self.q1(sql + f" AND {_LIVE} ORDER BY id DESC LIMIT 1", params)
               or self.q1(sql + " ORDER BY id DESC LIMIT 1", params))
        return (row[0], row[1]) if row else None

    def received_at(self, message_id: int) -> float | None:
        """When a message reached the store (unix seconds; imported history: its own date);
        None if there is no such message."""
        row = self.q1("SELECT received_at FROM messages WHERE id = ?", (message_id,))
        return row[0] if row else None

    # -- waiting-time targets -------------------------------------------------------------
    def unbreached_waits(self, channel: str, target: float, limit: int = 1000) -> list[tuple[int, float]]:
        """(customer, waiting_since) for open waits on `channel` older than
        `target` seconds that have no breach recorded yet."""
        return [tuple(r) for r in self.q(
            "SELECT c.id, c.waiting_since FROM customers c WHERE c.merged_into IS NULL AND c.status='open'"
            " AND c.waiting_since IS NOT NULL AND c.waiting_since <= ? AND c.last_channel = ?"
            " AND NOT EXISTS (SELECT 1 FROM breaches b WHERE b.customer_id=c.id AND b.waiting_since=c.waiting_since)"
            " ORDER BY c.waiting_since LIMIT ?", (self.clock() - target, channel, limit))]

    def record_breach(self, customer_id: int, waiting_since: float, channel: str | None, target: float,
                      raise_priority: int) -> int | None:
        """Record a breach once per wait: raise the priority and log a 'breach'
        event. Returns the event id, or None if it was already recorded."""
        with self.tx():
            if not self.conn.execute(
                    "INSERT INTO breaches(customer_id, waiting_since, channel, target, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (customer_id, waiting_since, channel, target, self.clock())).rowcount:
                return None
            if raise_priority:
                old = self.q1("SELECT priority FROM customers WHERE id=?", (customer_id,))[0]
                self.set_priority(customer_id, old + raise_priority, "targets", reason="breach")
            return self.log_event("breach", "targets", customer_id, channel=channel, target=target,
                                  waiting_since=waiting_since, waited=self.clock() - waiting_since)

    # -- satisfaction -------------------------------------------------------------------------
    def ask_survey(self, customer_id: int, channel: str | None, message_id: int) -> None:
        """Record that a satisfaction question went out to the customer (now, on `channel`, as `message_id`); it
        replaces an earlier open one."""
        with self.tx():
            self.conn.execute("INSERT INTO surveys(customer_id, asked_at, channel, message_id, open)"
                              " VALUES (?, ?, ?, ?, 1) ON CONFLICT(customer_id) DO UPDATE SET asked_at=excluded.asked_at,"
                              " channel=excluded.channel, message_id=excluded.message_id, open=excluded.open",
                              (customer_id, self.clock(), channel, message_id))

    def pending_survey(self, customer_id: int) -> dict | None:
        """The open satisfaction question for this customer as a dict (customer_id, asked_at: unix seconds,
        channel, message_id, open), or None."""
        row = self.q1("SELECT * FROM surveys WHERE customer_id=?", (customer_id,))
        return dict(row) if row else None

    def drop_survey(self, customer_id: int) -> None:
        """Close the customer's satisfaction question (answered, or expired)."""
        with self.tx():
            self.conn.execute("DELETE FROM surveys WHERE customer_id=?", (customer_id,))

    def close_survey(self, customer_id: int) -> None:
        """The customer said something else: only a direct reply to the question counts now."""
        with self.tx():
            self.conn.execute("UPDATE surveys SET open=0 WHERE customer_id=?", (customer_id,))

    def record_rating(self, customer_id: int, message_id: int, channel: str, score: int, answer: str) -> int:
        """Store the answer, close the question, and put the case back to done:
        a bare "5" is not a new request, so it must not sit in the queue."""
        with self.tx():
            self.conn.execute("DELETE FROM surveys WHERE customer_id=?", (customer_id,))
            self.conn.execute("INSERT INTO ratings(customer_id, message_id, channel, score, answer, at)"
                              " VALUES (?, ?, ?, ?, ?, ?)", (customer_id, message_id, channel, score, answer, self.clock()))
            self.set_status(customer_id, "done", "satisfaction", reason="rating")
            self.conn.execute("UPDATE customers SET waiting_since=NULL, unread=0 WHERE id=?", (customer_id,))
            return self.log_event("satisfaction", "satisfaction", customer_id, score=score, answer=answer,
                                  message_id=message_id, channel=channel)

    def had_agent_reply_since(self, customer_id: int, since: float) -> bool:
        """Did a person (not the automation) answer this customer after `since`?"""
        for r in self.q("SELECT meta FROM messages WHERE customer_id=? AND direction='out' AND sent_at > ?",
                        (customer_id, since)):
            if not loads(r[0], {}).get("auto"):
                return True
        return False
