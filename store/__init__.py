"""The omnidesk store: the only package that writes SQL.

    from store import Store
    s = Store("omnidesk.db")

Importing `store` (or store.terms, store.errors, store.timefmt, store.text: the
words every layer shares) is cheap: the Store and its SQLite helpers load on
first use of `store.Store`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.db import StoreError
    from store.facade import IngestResult, Store

__all__ = ["Store", "StoreError", "IngestResult"]


def __getattr__(name: str) -> Any:
    if name in ("Store", "IngestResult"):
        from store import facade

        return getattr(facade, name)
    if name == "StoreError":
        from store.db import StoreError

        return StoreError
    raise AttributeError(f"module 'store' has no attribute {name!r}")
