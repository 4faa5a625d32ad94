"""The dialer's SQL and facts against a real PostgreSQL (migration 0004)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg

from sambung.dialer import store
from sambung.dialer.facts import (
    AttemptAmdFact,
    AttemptAnsweredFact,
    AttemptConnectedFact,
    AttemptEndedFact,
    DialerDispositionFact,
    RecordScheduledFact,
)
from sambung.engine.db import Conn
from sambung.engine.facts import Fact, fact_from_json, fact_to_json
from tests.dbutil import migrated_pool

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def add_record(conn: Conn, account: str, phones: list[str], campaign: str = "c1") -> int:
    await conn.execute(
        "INSERT INTO campaigns (name, mode) VALUES ($1, 'predictive') ON CONFLICT DO NOTHING",
        campaign,
    )
    rid: int = await conn.fetchval(
        """INSERT INTO dial_records (campaign, account_id, name, phones, amount_due,
               days_past_due, bucket, zone, zone_source, language)
           VALUES ($1, $2, 'Debitur', $3, 1500000, 12, '1-30', 'Asia/Jakarta', 'default', 'id')
           RETURNING record_id""",
        campaign,
        account,
        phones,
    )
    return rid


async def one(conn: Conn, sql: str, *args: object) -> asyncpg.Record:
    row = await conn.fetchrow(sql, *args)
    assert row is not None, sql
    return row


async def write(conn: Conn, fact: Fact) -> None:
    # Through the spool format too: what the writer replays after an outage must still work.
    again = fact_from_json(fact_to_json(fact))
    await conn.execute(again.sql, *again.args())


async def test_attempt_row_before_the_call_and_every_fact_after() -> None:
    async with migrated_pool() as pool, pool.acquire() as conn:
        rid = await add_record(conn, "A1", ["+6281200000001", "+6281200000002"])
        due = await store.due_records(conn, "c1", T, 10)
        assert [d.record_id for d in due] == [rid]
        a = store.NewAttempt("dlr-1", due[0], due[0].phone(), "predictive")
        async with conn.transaction():
            await store.begin_attempt(
                conn, a, at=T, engine_instance="e1", asterisk_id="ast", trunk="customers"
            )
        call = await one(conn, "SELECT * FROM calls WHERE call_id = 'dlr-1'")
        assert call["direction"] == "dialer"
        assert call["caller_number"] == "+6281200000001"
        rec = await one(conn, "SELECT * FROM dial_records WHERE record_id = $1", rid)
        assert (rec["state"], rec["attempts"], rec["next_phone"]) == ("dialing", 1, 1)
        # A record being dialled is not due again.
        assert await store.due_records(conn, "c1", T, 10) == []

        await write(conn, AttemptAnsweredFact("dlr-1", T + timedelta(seconds=8)))
        await write(conn, AttemptAmdFact("dlr-1", "HUMAN", "HUMAN", T + timedelta(seconds=10)))
        await write(conn, AttemptConnectedFact("dlr-1", "siti", T + timedelta(seconds=11), 0.4))
        ended = AttemptEndedFact(
            "dlr-1", T + timedelta(seconds=90), "connected", None, None, 0.4, None
        )
        await write(conn, ended)
        await write(conn, ended)  # a retried write changes nothing
        row = await one(conn, "SELECT * FROM dial_attempts WHERE attempt_id = 'dlr-1'")
        assert row["outcome"] == "connected"
        assert row["agent_id"] == "siti"
        assert row["live_at"] == T + timedelta(seconds=10)
        assert row["connect_seconds"] == 0.4

        await write(
            conn,
            DialerDispositionFact(
                "dlr-1",
                "siti",
                "ptp",
                "will pay friday",
                T + timedelta(seconds=100),
                "c1",
                "A1",
                "750000.00",
                "2026-11-27",
                None,
                True,
            ),
        )
        d = await one(conn, "SELECT * FROM dispositions WHERE call_id = 'dlr-1'")
        assert d["amount"] == Decimal("750000.00")
        assert d["promise_date"] == date(2026, 11, 27)
        k = await store.kpis(conn, "c1", T - timedelta(days=1))
        assert k["promises"] == 1
        assert k["right_party_contacts"] == 1
        assert k["promised_amount"] == "750000.00"


async def test_a_bad_number_is_dropped_and_the_last_one_stops_the_record() -> None:
    async with migrated_pool() as pool, pool.acquire() as conn:
        rid = await add_record(conn, "A2", ["+6281200000011", "+6281200000012"])
        nxt = T + timedelta(minutes=15)
        await write(
            conn,
            RecordScheduledFact(
                rid, "scheduled", nxt, "invalid_number", None, "+6281200000011", None
            ),
        )
        rec = await one(conn, "SELECT * FROM dial_records WHERE record_id = $1", rid)
        assert rec["phones"] == ["+6281200000012"]
        assert rec["bad_phones"] == ["+6281200000011"]
        assert rec["state"] == "scheduled"
        assert rec["next_at"] == nxt
        await write(
            conn,
            RecordScheduledFact(
                rid, "scheduled", nxt, "invalid_number", None, "+6281200000012", None
            ),
        )
        rec = await one(conn, "SELECT * FROM dial_records WHERE record_id = $1", rid)
        assert (rec["state"], rec["stop_reason"], rec["phones"]) == ("stopped", "no_phone", [])


async def test_paid_stops_every_campaign_and_a_late_fact_cannot_restart_it() -> None:
    async with migrated_pool() as pool, pool.acquire() as conn:
        r1 = await add_record(conn, "A3", ["+6281200000021"], "c1")
        r2 = await add_record(conn, "A3", ["+6281200000021"], "c2")
        new, stopped = await store.record_payment(conn, "A3", Decimal("100000"), T, "trx-1")
        assert new
        assert sorted(stopped) == ["c1", "c2"]
        again, _ = await store.record_payment(conn, "A3", Decimal("100000"), T, "trx-1")
        assert not again, "the same reference is the same payment"
        await write(conn, RecordScheduledFact(r1, "scheduled", T, "busy", None, None, None))
        states = await conn.fetch(
            "SELECT state, stop_reason FROM dial_records WHERE record_id = ANY($1)", [r1, r2]
        )
        assert {(s["state"], s["stop_reason"]) for s in states} == {("stopped", "paid")}


async def test_two_engines_never_take_the_same_record() -> None:
    async with migrated_pool() as pool:
        async with pool.acquire() as conn:
            for i in range(6):
                await add_record(conn, f"B{i}", [f"+62812000001{i:02d}"])
        taken: list[list[int]] = []
        gate = asyncio.Event()

        async def take() -> None:
            async with pool.acquire() as conn, conn.transaction():
                got = await store.due_records(conn, "c1", T, 4)
                taken.append([r.record_id for r in got])
                await gate.wait()  # hold the locks while the other one looks

        first = asyncio.create_task(take())
        await asyncio.sleep(0.2)
        second = asyncio.create_task(take())
        await asyncio.sleep(0.2)
        gate.set()
        await asyncio.gather(first, second)
        assert len(taken[0]) == 4
        assert len(taken[1]) == 2
        assert not set(taken[0]) & set(taken[1])


async def test_open_attempts_of_a_crashed_run_are_closed_and_their_records_freed() -> None:
    async with migrated_pool() as pool, pool.acquire() as conn:
        await add_record(conn, "C1", ["+6281200000031"])
        due = await store.due_records(conn, "c1", T, 1)
        a = store.NewAttempt("dlr-9", due[0], due[0].phone(), "predictive")
        await store.begin_attempt(
            conn, a, at=T, engine_instance="e1", asterisk_id="", trunk="customers"
        )
        assert await store.recover_open_attempts(conn, "e2", 90) == 0
        assert await store.recover_open_attempts(conn, "e1", 90) == 1
        row = await one(conn, "SELECT outcome FROM dial_attempts WHERE attempt_id = 'dlr-9'")
        # The engine lost it, not the debtor; and its record waits out the hold, so that the
        # old line (maybe still ringing until the orphan sweep) is never joined by a new one.
        assert row["outcome"] == "lost"
        rec = await one(
            conn,
            """SELECT state, EXTRACT(EPOCH FROM next_at - now())::float8 AS wait
               FROM dial_records WHERE account_id = 'C1'""",
        )
        assert rec["state"] == "scheduled"
        assert 85 < rec["wait"] <= 90, rec["wait"]
        call = await one(conn, "SELECT end_reason FROM calls WHERE call_id = 'dlr-9'")
        assert call["end_reason"] == "engine_restart"


async def test_after_a_takeover_the_open_attempts_of_every_engine_are_closed() -> None:
    """With a hot standby (no instance named): the engine that took the lease over closes
    what the other engine left open."""
    async with migrated_pool() as pool, pool.acquire() as conn:
        await add_record(conn, "C1", ["+6281200000031"])
        due = await store.due_records(conn, "c1", T, 1)
        a = store.NewAttempt("dlr-9", due[0], due[0].phone(), "predictive")
        await store.begin_attempt(
            conn, a, at=T, engine_instance="alpha", asterisk_id="", trunk="customers"
        )
        assert await store.recover_open_attempts(conn, None, 90) == 1
        row = await one(conn, "SELECT outcome FROM dial_attempts WHERE attempt_id = 'dlr-9'")
        assert row["outcome"] == "lost"
