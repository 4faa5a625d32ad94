"""A campaign's ``max_attempts``: a record that has had them is closed as exhausted and never
dialled again, whatever its retry rules say (real PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from sambung.dialer.call import AttemptPlan, AttemptResult
from sambung.dialer.facts import RecordScheduledFact
from sambung.engine.facts import Fact
from tests.component.test_preview_hold import CAMPAIGN, preview_floor, record_ids


def plan_for(record_id: int, attempts: int) -> AttemptPlan:
    return AttemptPlan(
        attempt_id=f"dlr-{record_id}-{attempts}",
        campaign=CAMPAIGN,
        queue=f"dialer-{CAMPAIGN}",
        mode="preview",
        record_id=record_id,
        account_id="ACC0",
        debtor_name="Debitur",
        phone="+6281200000000",
        language="id",
        amount_due=Decimal("1500000"),
        context={"attempts": str(attempts), "zone": "Asia/Jakarta"},
        endpoint="PJSIP/+6281200000000@customers",
        caller_id="1500",
        ring_seconds=30,
        amd=False,
    )


async def test_given_attempts_left_then_a_busy_record_is_scheduled_again() -> None:
    async with preview_floor() as (dialer, pool, _):
        facts: list[Fact] = []
        dialer.record = facts.append
        run = dialer.campaigns[CAMPAIGN]
        rid = (await record_ids(pool))[0]
        dialer._attempt_done(
            run, plan_for(rid, run.settings.max_attempts - 1), AttemptResult("busy")
        )
        (fact,) = [f for f in facts if isinstance(f, RecordScheduledFact)]
        assert (fact.state, fact.stop_reason) == ("scheduled", None)
        assert fact.next_at is not None


async def test_given_the_last_attempt_then_the_record_is_exhausted_whatever_its_retry_rule() -> (
    None
):
    async with preview_floor() as (dialer, pool, _):
        facts: list[Fact] = []
        dialer.record = facts.append
        run = dialer.campaigns[CAMPAIGN]
        rid = (await record_ids(pool))[0]
        # Busy is retried after 15 min by the campaign's rules; not once its attempts are spent.
        dialer._attempt_done(run, plan_for(rid, run.settings.max_attempts), AttemptResult("busy"))
        (fact,) = [f for f in facts if isinstance(f, RecordScheduledFact)]
        assert (fact.state, fact.next_at, fact.stop_reason) == ("done", None, "exhausted")
        assert fact.last_outcome == "busy"


async def test_given_a_record_past_a_lowered_cap_then_it_is_neither_due_nor_shown() -> None:
    async with preview_floor() as (dialer, pool, _):
        run = dialer.campaigns[CAMPAIGN]
        ids = await record_ids(pool)
        # Scheduled before the cap was lowered to 3: already had 3 attempts.
        await pool.execute("UPDATE dial_records SET attempts = 3 WHERE record_id = $1", ids[0])
        run.settings = replace(run.settings, max_attempts=3)
        shown = await dialer.preview_next(CAMPAIGN, "siti")
        assert shown is not None
        assert shown["record_id"] != ids[0]
        seen = {shown["record_id"]}
        again = await dialer.preview_next(CAMPAIGN, "budi")
        assert again is not None
        seen.add(again["record_id"])
        assert seen == set(ids[1:])
        assert await dialer.preview_next(CAMPAIGN, "siti") is not None  # its own hold, again
