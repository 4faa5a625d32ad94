"""A debtor's live answer an earlier engine left in the campaign's queue (real PostgreSQL; the
dialer's own takeover, runner and end handling, with fake telephony and queues).

A start closes only the attempts that never went live (their lines are gone or hung up); the
live ones wait for the takeover. One the engine carries on ends as its own attempt would
(connected or abandoned, its record scheduled), and those nobody carried on are closed as
lost and counted in the rolling window, an abandon unless an agent had them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from sambung.acd.call import QueueCallInfo
from sambung.acd.place import PlaceTag
from sambung.acd.service import Entry
from sambung.dialer import store
from sambung.dialer.call import AttemptRunner, DialerTelephony
from sambung.dialer.facts import AttemptEndedFact, RecordScheduledFact
from sambung.dialer.service import DialerService, queue_of
from sambung.engine.calls import CallInbox
from sambung.engine.facts import Fact
from tests.component.test_preview_hold import CAMPAIGN, preview_floor
from tests.unit.test_dialer_attempt import Telephony


class ResumingQueues:
    """The ACD's queues as the dialer sees them: a resumed call ends with ``reason``, after
    connecting ``agent`` if given."""

    def __init__(self, reason: str, agent: str | None = None) -> None:
        self.reason = reason
        self.agent = agent
        self.resumed: list[tuple[QueueCallInfo, PlaceTag]] = []
        self.while_resumed: Callable[[], None] = lambda: None

    async def run(self, info: QueueCallInfo, inbox: CallInbox) -> str:
        raise AssertionError("a line taken over is resumed, not queued afresh")

    async def resume(
        self, info: QueueCallInfo, entry: Entry, tag: PlaceTag, inbox: CallInbox
    ) -> str:
        self.resumed.append((info, tag))
        self.while_resumed()
        if self.agent is not None and info.on_connected is not None:
            info.on_connected(self.agent)
        return self.reason


async def open_live_attempt(
    dialer: DialerService, pool: Any, account: str, *, live_ago: float = 20.0
) -> tuple[str, int]:
    """An attempt the dead engine left: begun, answered, known to be a person."""
    async with pool.acquire() as conn, conn.transaction():
        (rec,) = [
            r
            for r in await store.due_records(conn, CAMPAIGN, datetime.now(UTC), 10)
            if r.account_id == account
        ]
        aid = f"dlr-dead-{account}"
        await store.begin_attempt(
            conn,
            store.NewAttempt(aid, rec, rec.phone(), "predictive"),
            at=datetime.now(UTC) - timedelta(seconds=live_ago + 5),
            engine_instance="test",
            asterisk_id="ast",
            trunk="customers",
        )
        await conn.execute(
            """UPDATE dial_attempts SET answered_at = now() - make_interval(secs => $2),
                      live_at = now() - make_interval(secs => $2) WHERE attempt_id = $1""",
            aid,
            live_ago,
        )
    return aid, rec.record_id


def tag_for(aid: str, talking_with: str | None = None) -> PlaceTag:
    now = datetime.now(UTC)
    return PlaceTag(
        entry_id=f"{aid}-q1",
        queue=queue_of(CAMPAIGN),
        kind="dialer",
        priority=0,
        first_wall=now - timedelta(seconds=15),
        entry_wall=now - timedelta(seconds=15),
        language="id",
        talk_agent=talking_with,
        talk_leg=None if talking_with is None else f"leg-{aid}",
        talk_wall=None if talking_with is None else now - timedelta(seconds=8),
    )


def runner_for(dialer: DialerService, queues: ResumingQueues, facts: list[Fact]) -> None:
    dialer.record = facts.append
    dialer.runner = AttemptRunner(
        cast(DialerTelephony, Telephony()),
        queues,
        facts.append,
        dialer.m,
        wall=lambda: datetime.now(UTC),
    )


async def never(inbox: CallInbox) -> None:
    raise AssertionError("the attempt was there: the ACD's fallback is not used")


ENTRY = cast(Entry, object())  # handed through to the queues untouched


@pytest.mark.parametrize(
    ("reason", "agent", "talking", "outcome"),
    [
        ("completed", "siti", None, "connected"),  # waiting, then an agent took it
        ("caller_hung_up", None, None, "abandoned"),  # waiting, then the debtor left
        ("completed", None, "siti", "connected"),  # talking all along
    ],
)
async def test_given_a_live_answer_taken_over_then_it_ends_as_its_own_attempt(
    reason: str, agent: str | None, talking: str | None, outcome: str
) -> None:
    async with preview_floor() as (dialer, pool, _):
        facts: list[Fact] = []
        queues = ResumingQueues(reason, agent)
        runner_for(dialer, queues, facts)
        # The new engine's start closes only what never went live.
        aid, rid = await open_live_attempt(dialer, pool, "ACC1")
        async with pool.acquire() as conn:
            assert await store.recover_open_attempts(conn, "test", 80) == 0
        run = dialer.campaigns[CAMPAIGN]
        lines_seen: list[bool] = []

        async def fallback(inbox: CallInbox) -> None:
            await never(inbox)

        work = dialer.adopt(aid, ENTRY, tag_for(aid, talking), fallback)
        assert work is not None
        queues.while_resumed = lambda: lines_seen.append(aid in run.lines and run.lines[aid].live)
        await work(cast(CallInbox, None))

        assert lines_seen == [True]  # counted among the campaign's lines while it ran
        assert aid not in run.lines
        ((info, tag),) = queues.resumed
        assert info.kind == "dialer"
        assert info.call_id == aid
        assert info.attributes["account_id"] == "ACC1"
        assert tag.talking == (talking is not None)
        (end,) = [f for f in facts if isinstance(f, AttemptEndedFact)]
        assert end.outcome == outcome
        # The connect delay counts from the live answer the earlier engine saw.
        assert end.connect_seconds is not None
        assert end.connect_seconds >= 10
        (scheduled,) = [f for f in facts if isinstance(f, RecordScheduledFact)]
        assert scheduled.record_id == rid
        assert scheduled.last_outcome == outcome
        abandoned = outcome == "abandoned"
        assert dialer.view(CAMPAIGN)["window"]["abandoned"] == (1 if abandoned else 0)


async def test_given_a_queue_of_no_campaign_here_then_the_dialer_does_not_take_it() -> None:
    async with preview_floor() as (dialer, _, _):
        tag = PlaceTag(
            "x-q1", "dialer-elsewhere", "dialer", 0, datetime.now(UTC), datetime.now(UTC), "id"
        )
        assert dialer.adopt("x", ENTRY, tag, never) is None


async def test_given_the_attempt_already_closed_then_the_acd_carries_the_caller_on() -> None:
    async with preview_floor() as (dialer, _, _):
        runner_for(dialer, ResumingQueues("completed"), [])
        served: list[str] = []

        async def fallback(inbox: CallInbox) -> None:
            served.append("acd")

        work = dialer.adopt("dlr-unknown", ENTRY, tag_for("dlr-unknown"), fallback)
        assert work is not None
        await work(cast(CallInbox, None))
        assert served == ["acd"]  # the debtor still reaches an agent


async def test_given_live_answers_nobody_took_over_then_they_are_lost_and_counted() -> None:
    async with preview_floor() as (dialer, pool, _):
        kept, _ = await open_live_attempt(dialer, pool, "ACC0")
        lost, lost_rid = await open_live_attempt(dialer, pool, "ACC1")
        talked, _ = await open_live_attempt(dialer, pool, "ACC2")
        await pool.execute(
            "UPDATE dial_attempts SET connected_at = now(), agent_id = 'siti' "
            "WHERE attempt_id = $1",
            talked,
        )
        before = dialer.view(CAMPAIGN)["window"]
        dialer.taken_over({kept})
        await wait_until(lambda: dialer.view(CAMPAIGN)["window"]["attempts"] > before["attempts"])

        rows = {
            r["attempt_id"]: r
            for r in await pool.fetch("SELECT attempt_id, ended_at, outcome FROM dial_attempts")
        }
        assert rows[kept]["ended_at"] is None
        assert rows[lost]["outcome"] == "lost"
        assert rows[talked]["outcome"] == "lost"
        window = dialer.view(CAMPAIGN)["window"]
        assert window["attempts"] == before["attempts"] + 2
        assert window["live_answers"] == before["live_answers"] + 2
        # The one no agent had is an abandon under the cap; the talk cut short is not.
        assert window["abandoned"] == before["abandoned"] + 1
        held = await pool.fetchval(
            "SELECT next_at FROM dial_records WHERE record_id = $1", lost_rid
        )
        assert held >= datetime.now(UTC) + timedelta(seconds=30)


async def wait_until(ok: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not ok():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)
