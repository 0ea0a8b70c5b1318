"""How the engine words and paces a failure: the backoff before the next try,
and the one line that describes an error in channel health and the outbox."""
from __future__ import annotations

import random

from store.db import store_problem


def backoff(failures: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with jitter (half to full of the capped delay)."""
    delay = min(cap, base * 2 ** max(0, failures - 1))
    return delay * random.uniform(0.5, 1.0)


def describe(exc: BaseException, connector=None) -> str:
    """One line for health and the outbox; the connector's secrets scrubbed out
    (a library exception may carry a token in a URL)."""
    problem = store_problem(exc)
    if problem:
        return problem
    text = str(exc).strip() or type(exc).__name__
    scrub = getattr(connector, "scrub", None)
    if scrub is not None:
        text = scrub(text)
    return " ".join(text.split())[:300]
