"""Entered digits leave ``ivr_steps`` after ``[ivr] digits_retention_days`` (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg

from sambung.engine.config import IvrSettings
from sambung.ivr.retention import run_digits_retention
from sambung.ivr.store import forget_entered_digits, forget_session_attributes
from tests.dbutil import migrated_pool

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)


async def seed(pool: asyncpg.Pool) -> None:
    for cid, at in (("old", OLD), ("new", RECENT)):
        await pool.execute(
            """INSERT INTO calls (call_id, direction, channel_name, did, caller_number,
                   caller_name, hotline, asterisk_id, engine_instance, started_at)
               VALUES ($1, 'inbound', 'PJSIP/trunk-1', '1500', '0811', 'Budi', 'c', 'e', 'e',
                       $2)""",
            cid,
            at,
        )
        steps = [
            (1, "main", "enter", None),
            (2, "main", "option", "1"),
            (3, "main", "invalid", "7"),  # a menu key: no personal data
            (4, "account", "invalid", "1234"),  # digits an input refused
            (5, "account", "input", "12345678"),  # the account number
            (6, "lookup", "lookup_failed", "missing:account"),
        ]
        await pool.execute(
            """INSERT INTO ivr_sessions (call_id, flow, flow_version, started_at, attributes)
               VALUES ($1, 'main', 'v1', $2, $3::jsonb)""",
            cid,
            at,
            '{"caller_number": "0811", "caller_name": "Budi", "did": "1500", '
            '"language": "id", "account": "12345678", "crm.amount_due": "4500000"}',
        )
        await pool.executemany(
            "INSERT INTO ivr_steps (call_id, seq, at, node, kind, choice) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [(cid, seq, at, node, kind, choice) for seq, node, kind, choice in steps],
        )


async def choices(pool: asyncpg.Pool, cid: str) -> list[tuple[int, str, str | None]]:
    rows = await pool.fetch(
        "SELECT seq, kind, choice FROM ivr_steps WHERE call_id = $1 ORDER BY seq", cid
    )
    return [(r["seq"], r["kind"], r["choice"]) for r in rows]


def test_the_setting_defaults_to_90_days() -> None:
    assert IvrSettings().digits_retention_days == 90
    assert IvrSettings(digits_retention_days=0).digits_retention_days == 0  # kept for ever


async def test_given_steps_older_than_the_retention_then_their_digits_are_blanked() -> None:
    async with migrated_pool() as pool:
        await seed(pool)
        assert await forget_entered_digits(pool, NOW - timedelta(days=90)) == 2
        # The step rows stay (the path analysis counts them); only the digits go.
        assert await choices(pool, "old") == [
            (1, "enter", None),
            (2, "option", "1"),
            (3, "invalid", "7"),
            (4, "invalid", None),
            (5, "input", None),
            (6, "lookup_failed", "missing:account"),
        ]
        assert (await choices(pool, "new"))[3:5] == [
            (4, "invalid", "1234"),
            (5, "input", "12345678"),
        ]
        assert await forget_entered_digits(pool, NOW - timedelta(days=90)) == 0


async def test_the_job_runs_at_once_and_then_every_interval() -> None:
    async with migrated_pool() as pool:
        await seed(pool)
        clock = [NOW - timedelta(days=5)]  # at start the "old" call is 86 days old: kept
        job = asyncio.create_task(
            run_digits_retention(pool, 90, clock=lambda: clock[0], every_seconds=0.05)
        )
        try:
            await asyncio.sleep(0.02)
            assert (await choices(pool, "old"))[4] == (5, "input", "12345678")
            clock[0] = NOW
            for _ in range(100):
                if (await choices(pool, "old"))[4] == (5, "input", None):
                    break
                await asyncio.sleep(0.02)
            assert (await choices(pool, "old"))[4] == (5, "input", None)
            assert (await choices(pool, "new"))[4] == (5, "input", "12345678")
            assert "caller_number" not in await attributes(pool, "old")  # the same job
        finally:
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)


async def attributes(pool: asyncpg.Pool, cid: str) -> dict[str, str]:
    raw = await pool.fetchval("SELECT attributes::text FROM ivr_sessions WHERE call_id = $1", cid)
    return dict(json.loads(raw))


async def test_given_sessions_older_than_the_retention_then_only_language_and_did_stay() -> None:
    async with migrated_pool() as pool:
        await seed(pool)
        assert await forget_session_attributes(pool, NOW - timedelta(days=90)) == 1
        assert await attributes(pool, "old") == {"did": "1500", "language": "id"}
        assert (await attributes(pool, "new"))["account"] == "12345678"
        assert await forget_session_attributes(pool, NOW - timedelta(days=90)) == 0
