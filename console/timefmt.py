"""Kept for old imports: the times module is store/timefmt.py (one place for all layers)."""
from store.timefmt import *  # noqa: F403
from store.timefmt import WhenError, format_age, format_clock, parse_when  # noqa: F401
