"""Cattle's retry backoff: 2 s plus 2^(n-1) x 100 ms, capped at 120 s.

A failing handler is retried after this delay; the n-th retry waits longer than the one
before, so a handler that is down for a while is not hammered.
"""

from __future__ import annotations

BASE_SECONDS = 2.0
STEP_SECONDS = 0.1
CAP_SECONDS = 120.0


def retry_delay(failures: int) -> float:
    """Seconds to wait before the next try, after `failures` failed tries (1 or more)."""
    if failures < 1:
        return 0.0
    # Cap the exponent first: 2**1000 is a valid int but a pointless float.
    exponent = min(failures - 1, 32)
    delay: float = BASE_SECONDS + float(2**exponent) * STEP_SECONDS
    return min(delay, CAP_SECONDS)
