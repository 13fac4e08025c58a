"""Waiting out a retry: the run says when it is tried again, and lends its slot meanwhile.

Used by handler calls and by related-run steps alike, so both fail visibly the same way:
the object shows `transitioning: error` with the message, the run `Retrying` with the time
of the next attempt.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from kattle.machine import outcome as outcomes
from kattle.machine import status as writes_of
from kattle.runner.driving import Target, now

if TYPE_CHECKING:
    from kattle.runner.run import ProcessRun


async def wait_for_retry_time(run: ProcessRun) -> None:
    """After a restart, a run that was waiting out a backoff waits out the rest."""
    if run.record.phase == "Retrying" and run.record.next_attempt_time:
        remaining = (run.record.next_attempt_time - now()).total_seconds()
        if remaining > 0:
            async with run.engine.slots.lent(run.priority):
                await asyncio.sleep(remaining)


async def retry_later(run: ProcessRun, target: Target, outcome: outcomes.Outcome) -> None:
    run.record.attempts += 1
    run.record.next_attempt_time = now() + timedelta(seconds=outcome.delay)
    if outcome.failed:
        writes = writes_of.failing(outcome.message)
        if not writes_of.is_noop(run.obj.get("status") or {}, writes):
            await run.write_held(target, writes)
    await run.write_record(phase="Retrying", message=outcome.message)
    async with run.engine.slots.lent(run.priority):
        await asyncio.sleep(outcome.delay)
    run.record.next_attempt_time = None
