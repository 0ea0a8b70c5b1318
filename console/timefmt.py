"""Moved: durations and times live in store/timefmt.py, one module for every layer.

Nothing in the tree imports this name any more; it stays one release for code in flight.
"""
from store.timefmt import WhenError, format_age, format_clock, parse_when  # noqa: F401
