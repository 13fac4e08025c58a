"""Times as the API server and the operator write them (RFC 3339, `Z` or an offset)."""

from __future__ import annotations

from datetime import datetime


def parse_time(value: str | None) -> datetime | None:
    """The time, or None when absent or unreadable. Compare these, never the strings:
    `…:00Z` and `…:00.5Z` sort the wrong way round as text."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
