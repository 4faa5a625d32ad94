"""Callbacks a caller asked for outlive the engine: the whole engine against the fake ARI and a
real PostgreSQL. A pending callback is a row in ``pending_callbacks`` while it waits; the next
engine puts it back in its queue at its place, held a moment (legs a dead engine left up end
first), and the row is settled when the callback leaves its queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from sambung.acd.facts import CallbackPendingFact
from sambung.acd.feature import CALLBACK_RESTART_HOLD_SECONDS
from tests.component.test_adoption import queue_sections, until
from tests.fakes.fake_ari import FakeAri
from tests.integration.harness import RunningEngine, engine_database, engine_running


def pending(entry_id: str, queue: str, first: datetime, not_before: datetime | None) -> Any:
    return CallbackPendingFact(
        entry_id,
        f"{entry_id}-cb",
        queue,
        0,
        first,
        first + timedelta(seconds=5),
        "+6281234567890",
        "Debitur",
        "1600",
        "id",
        not_before,
        1,
        first + timedelta(seconds=30),
    )


async def written(run: RunningEngine) -> None:
    facts = run.engine.facts
    assert facts is not None

    async def idle() -> bool:
        return facts.pending == 0

    await until(idle, "facts written")


async def row(pool: asyncpg.Pool, entry_id: str) -> asyncpg.Record:
    r = await pool.fetchrow("SELECT * FROM pending_callbacks WHERE entry_id = $1", entry_id)
    assert r is not None
    return r


async def test_pending_callbacks_wait_again_at_their_place_after_a_restart(
    fake_ari: FakeAri,
) -> None:
    # Taken when the test runs, not when it is collected: the holds are measured from now.
    now = datetime.now(UTC).replace(microsecond=0)
    async with engine_database() as database:
        pool = database[1]
        later = now + timedelta(hours=2)
        async with engine_running(database, fake_ari.base_url, **queue_sections()) as first:
            # As the ACD records them when callers ask: an older one due now, a newer one held
            # until the rules allow (two hours on), and one for a queue that is then removed.
            for fact in (
                pending("c-old-q1", "support", now - timedelta(minutes=10), None),
                pending("c-new-q1", "support", now - timedelta(minutes=5), later),
                pending("c-gone-q1", "sales", now - timedelta(minutes=8), None),
            ):
                first.engine.facts.record(fact)  # type: ignore[union-attr]
            await written(first)

        async with engine_running(database, fake_ari.base_url, **queue_sections()) as second:
            acd = second.engine.acd.service
            # Both support callbacks are back, held: none is routed before the hold (or its
            # own later moment) has passed.
            assert set(acd.held) == {"c-old-q1", "c-new-q1"}
            assert "c-old-q1" not in acd.entries
            loop = asyncio.get_running_loop()
            timers = acd._delayed
            assert timers["c-old-q1"].when() - loop.time() > CALLBACK_RESTART_HOLD_SECONDS - 2
            assert timers["c-new-q1"].when() - loop.time() > 2 * 3600 - 60
            await written(second)
            old = await row(pool, "c-old-q1")
            # The row says the new hold; the place is the first engine's.
            assert old["settled_at"] is None
            assert old["first_enqueued_at"] == now - timedelta(minutes=10)
            assert old["not_before"] > now
            assert (await row(pool, "c-new-q1"))["not_before"] == later
            # The one whose queue is gone is closed, once, and said so.
            assert (await row(pool, "c-gone-q1"))["settled_at"] is not None
            adopted = second.engine.metrics.registry.get_sample_value(
                "sambung_calls_adopted_total", {"kind": "callback"}
            )
            assert adopted == 2

            # Made, failed or refused: the callback leaves its queue and its row is settled.
            entry = acd.held["c-old-q1"]
            assert entry.kind == "callback"
            assert entry.call_id == "c-old-q1-cb"
            assert entry.callback_attempts == 1
            assert entry.caller_number == "+6281234567890"
            # The older callback keeps its place ahead of the newer one.
            newer = acd.held["c-new-q1"]
            assert entry.enqueued_at < newer.enqueued_at
            acd.leave(entry, "callback_refused")
            await written(second)
            assert (await row(pool, "c-old-q1"))["settled_at"] is not None

        # A third engine finds only the one still pending.
        async with engine_running(database, fake_ari.base_url, **queue_sections()) as third:
            assert set(third.engine.acd.service.held) == {"c-new-q1"}
