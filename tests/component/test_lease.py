"""The engine lease (``sambung/engine/lease.py``) against a real PostgreSQL.

Two keepers in one process stand for two engines; a wrapped pool cuts one of them off from the
database. Lease times are short so each test takes a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from sambung.engine.lease import (
    DuplicateInstance,
    LeaseKeeper,
    LeaseTimes,
    Role,
    claim_instance,
    current_holder,
    heartbeat,
)
from tests.dbutil import migrated_pool

TIMES = LeaseTimes(ttl_seconds=1.2, renew_every_seconds=0.3, margin_seconds=0.2)


class CutPool:
    """A pool whose connections can be cut: acquiring then hangs (a network partition) or
    fails at once (PostgreSQL refusing)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.cut: str | None = None

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        if self.cut == "hang":
            await asyncio.sleep(3600)
        if self.cut == "refuse":
            raise ConnectionRefusedError("cut")
        async with self._pool.acquire() as conn:
            yield conn


class Engine:
    """One keeper and what it was told, with the time of each change."""

    def __init__(self, pool: Any, name: str, times: LeaseTimes = TIMES) -> None:
        self.pool = pool
        self.changes: list[tuple[str, float]] = []
        self.keeper = LeaseKeeper(
            pool,
            name,
            f"run-{name}",
            times,
            on_active=lambda token: self.changes.append((f"active:{token}", time.monotonic())),
            on_fenced=lambda: self.changes.append(("fenced", time.monotonic())),
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.keeper.run())

    async def crash(self) -> None:
        """The process dies: no release, the row stays until it expires."""
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def when(self, what: str) -> float:
        return next(t for w, t in self.changes if w.startswith(what))


async def until(cond: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.02)


async def test_one_engine_is_active_and_a_standby_takes_over_after_a_crash() -> None:
    async with migrated_pool() as pool:
        a, b = Engine(pool, "a"), Engine(pool, "b")
        a.start()
        await until(a.keeper.acting)
        b.start()
        await asyncio.sleep(TIMES.ttl_seconds * 2)  # several renewals: B keeps waiting
        assert b.keeper.role is Role.STANDBY
        assert a.keeper.acting()
        crashed = time.monotonic()
        await a.crash()
        await until(b.keeper.acting, timeout=TIMES.ttl_seconds * 3)
        took = b.when("active") - crashed
        # Not before the lease expired (it was renewed at most one interval before the
        # crash), and within a bound (loose: the machine may be busy).
        assert TIMES.ttl_seconds - TIMES.renew_every_seconds - 0.1 < took
        assert took < TIMES.ttl_seconds * 3
        assert a.keeper.token is not None
        assert b.keeper.token == a.keeper.token + 1  # a new fencing token
        async with pool.acquire() as conn:
            holder = await current_holder(conn)
        assert holder is not None
        assert (holder.holder, holder.token) == ("b", b.keeper.token)
        # A takes the lease first from nobody; B takes it over from A (counted as a takeover).
        assert a.keeper.previous_holder == ""
        assert b.keeper.previous_holder == "a"
        await b.crash()


@pytest.mark.parametrize("cut", ["hang", "refuse"])
async def test_an_engine_cut_off_from_postgresql_stops_acting_before_a_standby_starts(
    cut: str,
) -> None:
    async with migrated_pool() as pool:
        cut_pool = CutPool(pool)
        a, b = Engine(cut_pool, "a"), Engine(pool, "b")
        a.start()
        await until(a.keeper.acting)
        b.start()
        await asyncio.sleep(0.5)
        cut_pool.cut = cut
        await until(b.keeper.acting, timeout=TIMES.ttl_seconds * 4)
        # The rule that keeps two engines from driving one call: A had stopped first.
        assert a.when("fenced") < b.when("active")
        assert not a.keeper.acting()
        await asyncio.gather(a.crash(), b.crash())


async def test_a_holder_that_finds_its_lease_taken_stops_at_its_next_renewal() -> None:
    async with migrated_pool() as pool:
        a = Engine(pool, "a")
        a.start()
        await until(a.keeper.acting)
        async with pool.acquire() as conn:
            await conn.execute("UPDATE engine_lease SET holder = 'intruder', token = token + 1")
        await until(lambda: not a.keeper.acting(), timeout=TIMES.renew_every_seconds * 3)
        assert [w for w, _ in a.changes] == [f"active:{a.keeper.token}", "fenced"]
        await a.crash()


async def test_a_clean_stop_hands_over_without_waiting_for_the_expiry() -> None:
    # A long lease, so that waiting for its expiry (at least ttl - renew = 2.5 s) and a
    # handover (one standby poll, 0.5 s) cannot be mistaken for each other.
    slow = LeaseTimes(ttl_seconds=3.0, renew_every_seconds=0.5, margin_seconds=0.2)
    async with migrated_pool() as pool:
        a, b = Engine(pool, "a", slow), Engine(pool, "b", slow)
        a.start()
        await until(a.keeper.acting)
        b.start()
        await asyncio.sleep(0.4)
        stopped = time.monotonic()
        await a.keeper.release()
        await a.crash()
        await until(b.keeper.acting, timeout=slow.ttl_seconds * 2)
        assert b.when("active") - stopped < slow.ttl_seconds - slow.renew_every_seconds
        await b.crash()


async def test_a_second_engine_with_a_live_instance_id_is_refused() -> None:
    async with migrated_pool() as pool, pool.acquire() as conn:
        # The first run is alive on another machine: its heartbeat keeps moving.
        await claim_instance(conn, "e1", "run-1", 1.0, host="other-host", pid=4242)

        async def alive() -> None:
            async with pool.acquire() as c:
                while True:
                    await heartbeat(c, "e1", "run-1")
                    await asyncio.sleep(0.1)

        beating = asyncio.create_task(alive())
        started = time.monotonic()
        with pytest.raises(DuplicateInstance) as refused:
            await claim_instance(conn, "e1", "run-2", 1.0, poll_seconds=0.2)
        beating.cancel()
        assert time.monotonic() - started < 2.0
        assert "other-host" in refused.value.detail
        assert refused.value.error_id == "engine.duplicate_instance"
        # Once its heartbeat stops, the id is free after the stale time.
        await asyncio.gather(beating, return_exceptions=True)
        await claim_instance(conn, "e1", "run-2", 1.0, poll_seconds=0.2)
        owner = await conn.fetchval("SELECT run_id FROM engine_instances WHERE instance_id='e1'")
        assert owner == "run-2"


async def test_a_run_on_this_machine_that_died_is_taken_over_at_once() -> None:
    async with migrated_pool() as pool, pool.acquire() as conn:
        gone = await _a_finished_pid()
        await claim_instance(conn, "e1", "run-1", 60.0, pid=gone)
        started = time.monotonic()
        await claim_instance(conn, "e1", "run-2", 60.0)  # the stale time is never waited for
        assert time.monotonic() - started < 1.0
        owner = await conn.fetchrow("SELECT run_id, pid FROM engine_instances")
        assert owner is not None
        assert (owner["run_id"], owner["pid"]) == ("run-2", os.getpid())


async def _a_finished_pid() -> int:
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()
    return proc.pid


@pytest.mark.parametrize(
    ("ttl", "renew", "margin"), [(6.0, 3.0, 0.5), (1.0, 0.2, 1.0), (1.0, 0.2, 0.0)]
)
def test_lease_times_that_could_fence_a_healthy_engine_are_refused(
    ttl: float, renew: float, margin: float
) -> None:
    with pytest.raises(ValueError, match=r"lease|margin"):
        LeaseTimes(ttl, renew, margin)


async def test_an_engine_restarted_under_its_own_id_gets_its_lease_back_at_once() -> None:
    """A crashed engine started again (same instance id) need not wait for its own lease to
    lapse, and it is no takeover."""
    async with migrated_pool() as pool:
        a = Engine(pool, "a")
        a.start()
        await until(a.keeper.acting)
        await a.crash()
        again = Engine(pool, "a")
        started = time.monotonic()
        again.start()
        await until(again.keeper.acting, timeout=TIMES.ttl_seconds)
        assert again.when("active") - started < TIMES.ttl_seconds / 2
        assert again.keeper.previous_holder == "a"
        await again.crash()
