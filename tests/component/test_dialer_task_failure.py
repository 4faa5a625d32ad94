"""A dialer line whose call task fails while the debtor's phone rings: the line is hung up, and
its record waits out the ``lost`` rule instead of being dialled again beside it (real
PostgreSQL; the dialer's own launch, runner and end handling, with fake telephony).

Before, such a task ended as ``cancelled``, whose rule is "now": the next pacing round could
dial the same debtor while the first line still rang, two of our lines at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sambung.acd.call import QueueRunner
from sambung.dialer.call import AttemptRunner, DialerTelephony
from sambung.dialer.facts import RecordScheduledFact
from sambung.engine.facts import Fact
from tests.component.test_preview_hold import CAMPAIGN, preview_floor, record_ids
from tests.unit.test_dialer_attempt import FailingInbox, Queues, Telephony


class RunningDispatcher:
    """Runs each call task at once with an inbox that fails on its first wait."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def start_owned(
        self,
        call_id: str,
        work: Callable[[Any], Coroutine[Any, Any, None]],
        direction: str = "outbound",
    ) -> bool:
        self.tasks.append(asyncio.create_task(work(FailingInbox())))
        return True


async def test_given_a_task_failing_while_its_line_rings_then_the_record_is_held_back() -> None:
    async with preview_floor() as (dialer, pool, _):
        facts: list[Fact] = []
        tel = Telephony()
        disp = RunningDispatcher()
        dialer.record = facts.append
        dialer.dispatcher = disp  # type: ignore[assignment]
        dialer.runner = AttemptRunner(
            cast(DialerTelephony, tel),
            cast(QueueRunner, Queues()),
            facts.append,
            dialer.m,
            wall=lambda: datetime.now(UTC),
        )
        shown = await dialer.preview_next(CAMPAIGN, "siti")
        assert shown is not None
        rid = shown["record_id"]
        assert rid in await record_ids(pool)
        before = datetime.now(UTC)
        started = await dialer.preview_dial(CAMPAIGN, rid, "siti")
        (task,) = disp.tasks
        await asyncio.gather(task, return_exceptions=True)
        assert isinstance(task.exception(), RuntimeError)

        aid = started["attempt_id"]
        assert tel.calls[0][:2] == ("originate", aid)
        assert tel.calls[-1] == ("hangup", aid, "no_answer")
        (scheduled,) = [f for f in facts if isinstance(f, RecordScheduledFact)]
        assert (scheduled.record_id, scheduled.last_outcome) == (rid, "lost")
        assert scheduled.state == "scheduled"
        # The campaign's lost rule (60 minutes in the example), not "now".
        assert scheduled.next_at is not None
        assert scheduled.next_at >= before + timedelta(minutes=59)
        assert aid not in dialer.campaigns[CAMPAIGN].lines
