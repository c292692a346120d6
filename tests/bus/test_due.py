"""DueQueue: ready items in order, items due later on the clock, waiters woken without polling."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from eventbus.bus import ManualClock
from eventbus.bus.logs.due import DueQueue

pytestmark = pytest.mark.anyio


async def test_items_due_later_come_when_the_clock_says_so_and_before_ready_ones() -> None:
    clock = ManualClock()
    due: DueQueue[str] = DueQueue(clock)
    due.push_many(["a", "b"])
    due.push_at("late", clock.now() + timedelta(seconds=10))
    due.push_at("later", clock.now() + timedelta(seconds=20))
    assert (len(due), due.ready, due.later) == (4, 2, 2)
    assert due.take(1) == ["a"]
    clock.advance(15)
    assert due.take(5) == ["late", "b"]
    assert due.take(5) == []
    clock.advance(5)
    assert due.take(5) == ["later"] and len(due) == 0


async def test_make_ready_puts_waiting_items_first_in_due_order() -> None:
    clock = ManualClock()
    due: DueQueue[int] = DueQueue(clock)
    due.push(3)
    due.push_at(2, clock.now() + timedelta(seconds=2))
    due.push_at(1, clock.now() + timedelta(seconds=1))
    due.make_ready()
    assert due.take(10) == [1, 2, 3]


async def test_a_waiter_wakes_on_a_push_and_on_the_clock() -> None:
    clock = ManualClock()
    due: DueQueue[str] = DueQueue(clock)
    got: list[list[str]] = []

    async def taker() -> None:
        while True:
            items = due.take(10)
            if items:
                got.append(items)
                if "stop" in items:
                    return
            await due.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(taker)
        await anyio.wait_all_tasks_blocked()
        due.push("now")
        await anyio.wait_all_tasks_blocked()
        due.push_at("soon", clock.now() + timedelta(seconds=5))
        await anyio.wait_all_tasks_blocked()
        assert got == [["now"]]
        clock.advance(5)
        await anyio.wait_all_tasks_blocked()
        assert got == [["now"], ["soon"]]
        due.push("stop")
    assert got[-1] == ["stop"]


async def test_close_releases_every_waiter() -> None:
    due: DueQueue[int] = DueQueue(ManualClock())
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(due.wait)
        await anyio.wait_all_tasks_blocked()
        due.close()
    await due.wait()  # returns at once once closed
    assert due.closed
