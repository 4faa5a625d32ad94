"""Migrations and the fact writer against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from sambung.acd.facts import LegAnsweredFact, LegEndedFact, LegStartedFact
from sambung.engine import db
from sambung.engine.facts import (
    CallAnsweredFact,
    CallEndedFact,
    CallStartedFact,
    FactWriter,
    OpenCallsClosedFact,
    fact_from_json,
    fact_to_json,
    read_spool,
)
from sambung.engine.metrics import build_metrics
from tests.dbutil import fresh_database, migrated_pool, running

T = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def started(cid: str, instance: str = "e1") -> CallStartedFact:
    return CallStartedFact(
        cid,
        "inbound",
        f"PJSIP/trunk-{cid}",
        "1500",
        "0811",
        "Budi",
        "Collections",
        "eid",
        instance,
        T,
    )


async def test_migrate_is_idempotent_and_refuses_an_edited_migration() -> None:
    async with fresh_database() as url:
        conn = await asyncpg.connect(url)
        try:
            versions = [m.version for m in db.load_migrations()]
            assert versions == sorted(versions)
            assert versions[:2] == [1, 2]
            assert [m.version for m in await db.pending_migrations(conn)] == versions
            assert len(await db.migrate(conn)) == len(versions)
            assert await db.migrate(conn) == []
            assert await db.pending_migrations(conn) == []
            await conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
            with pytest.raises(db.MigrationError, match="changed after it was applied"):
                await db.migrate(conn)
        finally:
            await conn.close()


async def test_facts_are_written_in_order_and_are_idempotent(tmp_path: Path) -> None:
    async with migrated_pool() as pool:
        w = FactWriter(pool, build_metrics(), tmp_path / "spool.jsonl")
        async with running(w):
            for f in [
                started("c1"),
                CallAnsweredFact("c1", T + timedelta(seconds=1)),
                CallEndedFact(
                    "c1", T + timedelta(seconds=9), "completed", 16, "Normal Clearing", None
                ),
                # a replayed duplicate must change nothing
                started("c1"),
                CallEndedFact("c1", T + timedelta(seconds=99), "caller_hangup", 16, "", None),
            ]:
                w.record(f)
            assert await w.drain(5)
        row = await pool.fetchrow("SELECT * FROM calls WHERE call_id = 'c1'")
        assert row is not None
        assert row["answered_at"] == T + timedelta(seconds=1)
        assert row["ended_at"] == T + timedelta(seconds=9)
        assert row["end_reason"] == "completed"
        assert row["hangup_cause"] == 16
        # Committed, so gone from the spool (closed by ``running`` once the spool thread has
        # caught up).
        assert read_spool((tmp_path / "spool.jsonl").read_bytes()).records == []


async def test_open_calls_are_closed_except_live_ones(tmp_path: Path) -> None:
    async with migrated_pool() as pool:
        w = FactWriter(pool, build_metrics(), tmp_path / "spool.jsonl")
        async with running(w):
            for cid in ("live", "lost", "done"):
                w.record(started(cid))
            w.record(started("other-engine", instance="e2"))
            w.record(CallEndedFact("done", T, "completed", 16, "Normal Clearing", None))
            # Agents' legs: one talking when the engine died, one still ringing, one of the
            # call taken over (it goes on).
            for leg, cid in (("talked", "lost"), ("rang", "lost"), ("kept", "live")):
                w.record(LegStartedFact(leg, cid, None, "agent", "siti", "agent1001", T))
            w.record(LegAnsweredFact("talked", T + timedelta(seconds=2)))
            w.record(LegAnsweredFact("kept", T + timedelta(seconds=2)))
            w.record(OpenCallsClosedFact("e1", ["live"], T, "engine_restart"))
            assert await w.drain(5)
        rows = {r["call_id"]: r["end_reason"] for r in await pool.fetch("SELECT * FROM calls")}
        assert rows == {
            "live": None,
            "lost": "engine_restart",
            "done": "completed",
            "other-engine": None,
        }
        legs = {
            r["leg_id"]: (r["outcome"], r["ended_at"], r["talk_seconds"])
            for r in await pool.fetch("SELECT * FROM call_legs")
        }
        # The talk happened but its end was not seen: answered, with no made-up talk time.
        assert legs == {
            "talked": ("answered", T, None),
            "rang": ("lost", T, None),
            "kept": (None, None, None),
        }


async def test_after_an_asterisk_restart_the_legs_are_left_to_their_calls_tasks(
    tmp_path: Path,
) -> None:
    # The calls' tasks are alive and end their legs with the talk time they know; a leg
    # closed first would refuse those figures.
    async with migrated_pool() as pool:
        w = FactWriter(pool, build_metrics(), tmp_path / "spool.jsonl")
        async with running(w):
            w.record(started("c1"))
            w.record(LegStartedFact("leg", "c1", None, "agent", "siti", "agent1001", T))
            w.record(LegAnsweredFact("leg", T))
            w.record(OpenCallsClosedFact("e1", [], T, "asterisk_restart", close_legs=False))
            later = T + timedelta(seconds=30)
            w.record(LegEndedFact("leg", later, "answered", 16, None, 30.0, 0.0))
            assert await w.drain(5)
        call = await pool.fetchrow("SELECT end_reason FROM calls WHERE call_id = 'c1'")
        assert call is not None
        assert call["end_reason"] == "asterisk_restart"
        leg = await pool.fetchrow("SELECT * FROM call_legs WHERE leg_id = 'leg'")
        assert leg is not None
        assert (leg["outcome"], leg["talk_seconds"], leg["ended_at"]) == ("answered", 30.0, later)


async def test_given_the_database_is_down_then_facts_wait_in_the_spool_and_replay_later(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool.jsonl"
    # A pool pointed at a port nobody listens on stands in for PostgreSQL being down.
    dead = await db.connect_pool("postgresql://postgres@127.0.0.1:9/none", min_size=0)
    metrics = build_metrics()
    w = FactWriter(dead, metrics, spool, retry_max_seconds=0.05)
    task = asyncio.create_task(w.run())
    w.record(started("c9"))
    w.record(CallEndedFact("c9", T, "caller_hangup", 16, "Normal Clearing", None))
    assert await w.drain(0.5) is False
    assert w.database_ok is False
    assert metrics.db_write_retries._value.get() >= 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await dead.close()
    assert len(read_spool(spool.read_bytes()).records) == 2

    async with migrated_pool() as pool:
        w2 = FactWriter(pool, build_metrics(), spool)
        assert w2.replay_spool() == 2
        async with running(w2):
            assert await w2.drain(5)
        row = await pool.fetchrow("SELECT end_reason FROM calls WHERE call_id = 'c9'")
        assert row is not None
        assert row["end_reason"] == "caller_hangup"
    assert read_spool(spool.read_bytes()).records == []


def test_fact_json_round_trip() -> None:
    for f in [
        started("x"),
        CallEndedFact("x", T, "completed", None, None, 486),
        OpenCallsClosedFact("e1", ["a", "b"], T, "asterisk_restart"),
    ]:
        assert fact_from_json(fact_to_json(f)) == f
