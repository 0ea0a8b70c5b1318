"""The one error base class of omnidesk.

Every error meant for a person (a wrong config key, an unknown customer, a
refused command) derives from `OmnideskError`; its message is worded for the
user and never holds a secret. The CLI prints these without a traceback and
exits 1. It lives in store/ because store/ is the bottom layer: everything
may import it, and it imports nothing of ours.
"""
from __future__ import annotations


class OmnideskError(Exception):
    """A problem the user can understand and fix; the message says what and where."""
