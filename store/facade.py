"""The Store: one class that joins the store's parts (identity, ingest, queue, events, ...).

Each part is a mixin in its own module; see each for its methods.
"""
from __future__ import annotations

import time
from pathlib import Path

from store.attachments import DEFAULT_MAX_BYTES, AttachmentStore
from store.automation_state import AutomationStateMixin
from store.customers import CustomersMixin
from store.db import Database, StoreError, default_files_dir
from store.drafts import DraftsMixin
from store.events import EventsMixin
from store.facts import FactsMixin
from store.identity import IdentityMixin
from store.ingest import IngestMixin, IngestResult
from store.merge import MergeMixin
from store.outbox import OutboxMixin
from store.search import SearchMixin
from store.stats import StatsMixin
from store.sync_state import SyncStateMixin
from store.timeline import TimelineMixin


class Store(Database, IdentityMixin, IngestMixin, CustomersMixin, FactsMixin, EventsMixin, MergeMixin, OutboxMixin,
            SearchMixin, TimelineMixin, SyncStateMixin, StatsMixin, AutomationStateMixin, DraftsMixin):
    def __init__(self, path, *, clock=time.time, attachments_dir: str | Path | None = None,
                 max_attachment_bytes: int = DEFAULT_MAX_BYTES, cache_kb: int = 65536, busy_seconds: float = 30.0,
                 group: str | None = None, password: str | None = None):
        """`path`: a SQLite file path or a postgresql://user@host:port/db URL (then `password`,
        if given, comes from a secret source; attachments go to the data dir unless
        `attachments_dir` says where)."""
        super().__init__(path, clock=clock, cache_kb=cache_kb, busy_seconds=busy_seconds, group=group,
                         password=password)
        if attachments_dir:
            root = Path(attachments_dir)
        else:  # a store given by URL has no file to put them beside
            root = default_files_dir() if self.pg else Path(str(path) + ".files")
        self.files = AttachmentStore(root, max_attachment_bytes, self.access)
        self.on_ingest: list = []  # callables(list[IngestResult]) run after each committed batch
        self._pending_events: list[int] = []


__all__ = ["Store", "StoreError", "IngestResult"]
