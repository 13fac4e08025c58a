"""Run slots: waiting runs go by their process's priority, then in order of arrival; a slot
lent while a run waits comes back; a waiter cancelled never loses or leaks a slot."""

from __future__ import annotations

import asyncio

from kattle.runner.slots import RunSlots


def test_waiting_runs_take_free_slots_by_priority_then_arrival() -> None:
    async def scenario() -> list[str]:
        slots = RunSlots(1)
        order: list[str] = []
        release = asyncio.Event()

        async def run(name: str, priority: int, hold: asyncio.Event | None = None) -> None:
            async with slots.held(priority):
                order.append(name)
                if hold is not None:
                    await hold.wait()

        first = asyncio.create_task(run("first", 0, release))
        await asyncio.sleep(0)
        waiting = [
            asyncio.create_task(run(name, priority))
            for name, priority in (
                ("low-1", 0),
                ("system-1", 1000),
                ("mid", 5),
                ("system-2", 1000),
                ("low-2", 0),
            )
        ]
        await asyncio.sleep(0)
        assert (slots.active, slots.waiting) == (1, 5)
        release.set()
        await asyncio.gather(first, *waiting)
        assert (slots.active, slots.waiting) == (0, 0)
        return order

    assert asyncio.run(scenario()) == ["first", "system-1", "system-2", "mid", "low-1", "low-2"]


def test_a_cancelled_waiter_and_a_lent_slot_keep_the_count_right() -> None:
    async def scenario() -> None:
        slots = RunSlots(1)
        gate = asyncio.Event()

        async def holder() -> None:
            async with slots.held(), slots.lent():
                await gate.wait()  # waiting out a backoff: the slot is free meanwhile

        async def other() -> None:
            async with slots.held():
                pass

        lender = asyncio.create_task(holder())
        await asyncio.sleep(0)
        assert slots.active == 0
        await asyncio.create_task(other())  # gets the lent slot and gives it back
        doomed = asyncio.create_task(other())
        async with slots.held():  # the slot is taken: `doomed` waits, then is cancelled
            await asyncio.sleep(0)
            assert slots.waiting == 1
            doomed.cancel()
            await asyncio.sleep(0)
            assert slots.waiting == 0
        gate.set()
        await lender
        assert (slots.active, slots.waiting) == (0, 0)

    asyncio.run(scenario())
