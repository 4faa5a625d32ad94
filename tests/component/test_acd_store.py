"""The ACD's reads against a real PostgreSQL: what the callback rules are told about a number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sambung.acd.store import callback_history
from sambung.engine.facts import CallStartedFact
from tests.dbutil import migrated_pool

T = datetime(2026, 12, 28, 3, 0, tzinfo=UTC)


def started(call_id: str, direction: str, number: str, at: datetime) -> CallStartedFact:
    return CallStartedFact(call_id, direction, "", "1600", number, "", None, "ast", "e1", at)


async def test_given_dnc_and_earlier_callbacks_then_both_are_found_in_any_form() -> None:
    async with migrated_pool() as pool, pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO dnc (kind, value) VALUES ('phone', '+62812345678'), "
            "('phone', '+62812999999'), ('account', '+62812345678')"
        )
        for fact in (
            started("cb-1", "callback", "+62812345678", T - timedelta(days=1)),  # E.164
            started("cb-2", "callback", "0812345678", T - timedelta(hours=2)),  # as it came
            started("cb-3", "callback", "+62812345678", T - timedelta(days=9)),  # too old
            started("in-1", "inbound", "+62812345678", T - timedelta(hours=1)),  # not a callback
            started("cb-4", "callback", "+62812999999", T - timedelta(hours=1)),  # another
        ):
            await conn.execute(fact.sql, *fact.args())
        dnc, dials = await callback_history(
            conn, "+62812345678", ("0812345678", "62812345678"), T - timedelta(days=7)
        )
    assert dnc == frozenset({"+62812345678"})
    assert dials == (T - timedelta(days=1), T - timedelta(hours=2))
