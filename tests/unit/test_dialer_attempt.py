"""The dialer line's executor (``dialer/call.py``): the machine's commands reach the telephony
port, the queue, the fact writer, the metrics and the service's callbacks, and the replies and
Asterisk's events reach the machine. Fakes stand in for Asterisk and the ACD; a scripted inbox
returns None (the deadline passed) once its script is spent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from sambung.acd.call import QueueCallInfo, QueueRunner
from sambung.dialer.call import AMD_CONTEXT, AttemptPlan, AttemptRunner, DialerTelephony
from sambung.dialer.facts import (
    AttemptAmdFact,
    AttemptAnsweredFact,
    AttemptConnectedFact,
    AttemptEndedFact,
)
from sambung.dialer.line_machine import RING_BACKSTOP_SECONDS
from sambung.engine.calls import CallInbox
from sambung.engine.errors import CallGone, TelephonyError
from sambung.engine.events import AmdDecided, CallEnded, OutboundAnswered
from sambung.engine.facts import CallAnsweredFact, CallEndedFact, Fact
from sambung.engine.metrics import Metrics, build_metrics

AID = "att-1"
W0 = datetime(2026, 8, 14, 2, 0, tzinfo=UTC)


class Telephony:
    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail or {}

    def _do(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    async def originate_call(
        self,
        call_id: str,
        endpoint: str,
        *,
        caller_id: str | None,
        timeout: int,
        app_args: tuple[str, ...],
        variables: dict[str, str] | None = None,
    ) -> None:
        self._do("originate", call_id, endpoint, caller_id, timeout, app_args, variables)

    async def continue_to(self, call_id: str, context: str, extension: str = "s") -> None:
        self._do("continue_to", call_id, context)

    async def play(
        self, call_id: str, prompt_id: str, media: Sequence[str], language: str | None = None
    ) -> None:
        self._do("play", call_id, prompt_id)

    async def stop_prompt(self, prompt_id: str) -> None:
        self._do("stop_prompt", prompt_id)

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        self._do("hangup", call_id, reason)


class Inbox:
    def __init__(self, *items: object) -> None:
        self.items = list(items)
        self.waits: list[float | None] = []

    async def next_any(self, timeout: float | None = None) -> object | None:
        self.waits.append(timeout)
        return self.items.pop(0) if self.items else None


class Queues:
    """Connects the given agents, then ends the call with ``reason`` (or raises)."""

    def __init__(self, agents: Sequence[str] = (), reason: str = "completed") -> None:
        self.agents = agents
        self.reason = reason
        self.raises: BaseException | None = None
        self.infos: list[QueueCallInfo] = []

    async def run(self, info: QueueCallInfo, inbox: CallInbox) -> str:
        self.infos.append(info)
        for agent in self.agents:
            assert info.on_connected is not None
            info.on_connected(agent)
        if self.raises is not None:
            raise self.raises
        return self.reason


def plan(**over: Any) -> AttemptPlan:
    fields: dict[str, Any] = {
        "attempt_id": AID,
        "campaign": "kolek",
        "queue": "dialer-kolek",
        "mode": "predictive",
        "record_id": 7,
        "account_id": "ACC1",
        "debtor_name": "Budi",
        "phone": "081234567890",
        "language": "id",
        "amount_due": Decimal("1500000"),
        "context": {"account_id": "ACC1"},
        "endpoint": "PJSIP/081234567890@trunk",
        "caller_id": "02150000000",
        "ring_seconds": 20,
        "amd": True,
    }
    fields.update(over)
    return AttemptPlan(**fields)


class World:
    def __init__(self, tel: Telephony | None = None, queues: Queues | None = None) -> None:
        self.tel = tel or Telephony()
        self.queues = queues or Queues()
        self.facts: list[Fact] = []
        self.told: list[str] = []
        self.m: Metrics = build_metrics()
        self.runner = AttemptRunner(
            cast(DialerTelephony, self.tel),
            cast(QueueRunner, self.queues),
            self.facts.append,
            self.m,
            wall=lambda: W0,
        )

    async def run(self, p: AttemptPlan, inbox: Inbox) -> Any:
        return await self.runner.run(
            p,
            cast(CallInbox, inbox),
            on_live=lambda q: self.told.append(f"live:{q.attempt_id}"),
            on_connected=lambda q: self.told.append(f"connected:{q.attempt_id}"),
        )

    def kinds(self) -> list[str]:
        return [type(f).__name__ for f in self.facts]

    def attempts(self, outcome: str) -> float | None:
        return self.m.registry.get_sample_value(
            "sambung_dialer_attempts_total", {"campaign": "kolek", "outcome": outcome}
        )


def answered() -> OutboundAnswered:
    return OutboundAnswered(AID, W0)


def human() -> AmdDecided:
    return AmdDecided(AID, "HUMAN", "HUMAN-1", W0)


async def test_given_a_person_and_a_free_agent_then_connected() -> None:
    w = World(queues=Queues(agents=["siti"]))
    with capture_logs() as logs:
        res = await w.run(plan(pinned_agent="made"), Inbox(answered(), human()))
    assert res.outcome == "connected"
    assert res.agent_id == "siti"
    assert res.live_at is not None
    assert res.connected_at is not None
    assert (res.amd_status, res.amd_cause) == ("HUMAN", "HUMAN-1")
    variables = {"SAMBUNG_CAMPAIGN": "kolek", "SAMBUNG_ATTEMPT": AID}
    assert w.tel.calls == [
        ("originate", AID, "PJSIP/081234567890@trunk", "02150000000", 20, ("kolek",), variables),
        ("continue_to", AID, AMD_CONTEXT),
    ]
    (info,) = w.queues.infos
    assert (info.call_id, info.queue, info.caller_number, info.caller_name) == (
        AID,
        "dialer-kolek",
        "081234567890",
        "Budi",
    )
    assert (info.kind, info.answered, info.pinned_agent, info.did) == ("dialer", True, "made", "")
    assert info.attributes == {"account_id": "ACC1"}
    assert w.kinds() == [
        AttemptAnsweredFact.__name__,
        CallAnsweredFact.__name__,
        AttemptAmdFact.__name__,
        AttemptConnectedFact.__name__,
        AttemptEndedFact.__name__,  # no calls row end: the queue wrote it
    ]
    assert w.told == [f"live:{AID}", f"connected:{AID}"]
    assert w.attempts("connected") == 1.0
    transitions = [e["event"] for e in logs if e["event"].startswith("transition:")]
    assert transitions == [
        "transition: - -> start -> originating",
        "transition: originating -> Originated -> ringing",
        "transition: ringing -> Answered -> amd_starting",
        "transition: amd_starting -> AmdStarted -> amd",
        "transition: amd -> AmdVerdict -> queued",
        "transition: queued -> QueueDone -> ended",
    ]


async def test_given_no_end_event_then_the_ring_backstop_hangs_up() -> None:
    w = World()
    inbox = Inbox()
    res = await w.run(plan(), inbox)
    assert res.outcome == "no_answer"
    assert w.tel.calls[-1] == ("hangup", AID, "no_answer")
    (wait,) = inbox.waits
    assert wait is not None
    assert 20 + RING_BACKSTOP_SECONDS - 1 < wait <= 20 + RING_BACKSTOP_SECONDS
    ended = w.facts[-1]
    assert isinstance(ended, CallEndedFact)
    assert ended.end_reason == "ring_timeout"


async def test_given_the_service_cancelled_a_ringing_line_then_cancelled() -> None:
    w = World()
    p = plan()
    p.cancelled = True  # the service sets it, then hangs up; Asterisk's end follows
    res = await w.run(p, Inbox(CallEnded(AID, 16, "normal", W0, sip_code=487)))
    assert res.outcome == "cancelled"
    assert w.attempts("cancelled") == 1.0


async def test_given_a_busy_number_then_busy_with_its_cause() -> None:
    w = World()
    res = await w.run(plan(), Inbox(CallEnded(AID, 17, "busy", W0, sip_code=486)))
    assert (res.outcome, res.cause, res.sip_code) == ("busy", 17, 486)
    assert w.kinds() == [AttemptEndedFact.__name__, CallEndedFact.__name__]


async def test_given_the_originate_refused_then_failed_with_a_note() -> None:
    w = World(Telephony({"originate": TelephonyError("trunk down")}))
    res = await w.run(plan(), Inbox())
    assert res.outcome == "failed"
    assert res.notes == ["originate: trunk down"]


async def test_given_the_call_gone_before_amd_then_abandoned_and_hung_up() -> None:
    w = World(Telephony({"continue_to": CallGone("gone")}))
    res = await w.run(plan(), Inbox(answered()))
    assert res.outcome == "abandoned"
    assert w.tel.calls[-1] == ("hangup", AID, "normal")


async def test_given_a_machine_with_a_message_then_played_and_hung_up_once() -> None:
    w = World()
    inbox = Inbox(answered(), AmdDecided(AID, "MACHINE", "LONGGREETING", W0))
    res = await w.run(plan(machine_message=("sound:vm",)), inbox)
    assert res.outcome == "machine"
    assert [c[0] for c in w.tel.calls] == ["originate", "continue_to", "play", "hangup"]
    assert w.tel.calls[2] == ("play", AID, f"{AID}-d-machine")


async def test_given_the_task_cancelled_in_the_queue_then_hung_up_and_written() -> None:
    queues = Queues()
    queues.raises = asyncio.CancelledError()
    w = World(queues=queues)
    with pytest.raises(asyncio.CancelledError):
        await w.run(plan(), Inbox(answered(), human()))
    assert w.tel.calls[-1] == ("hangup", AID, "normal")
    end = [f for f in w.facts if isinstance(f, AttemptEndedFact)]
    assert [e.outcome for e in end] == ["failed"]
    assert w.attempts("failed") == 1.0


async def test_given_a_reminder_key_that_cannot_be_said_then_the_task_fails_after_the_end() -> None:
    w = World()
    with pytest.raises(ValueError, match="digits"):
        await w.run(plan(mode="reminder", amd=False, reminder_key=""), Inbox(answered()))
    assert w.told == [f"live:{AID}"]
    assert w.tel.calls[-1] == ("hangup", AID, "normal")
    assert w.attempts("failed") == 1.0


class FailingInbox(Inbox):
    """An inbox whose wait fails: the call task dies while its line rings."""

    async def next_any(self, timeout: float | None = None) -> object | None:
        raise RuntimeError("the task failed")


@pytest.mark.parametrize("cancelled", [False, True])
async def test_given_the_task_failing_while_the_line_rings_then_its_end_is_kept(
    cancelled: bool,
) -> None:
    w = World()
    p = plan(cancelled=cancelled)
    with pytest.raises(RuntimeError):
        await w.run(p, FailingInbox())
    assert p.stopped_with is not None
    if cancelled:
        # The service hung it up itself (stop, paid): nothing more to do, redial as it likes.
        assert p.stopped_with.outcome == "cancelled"
        assert [c[0] for c in w.tel.calls] == ["originate"]
    else:
        # Nobody else owns the line: hung up by its id, and lost, so that its record waits out
        # the lost rule instead of being dialled again beside a line that may still ring.
        assert p.stopped_with.outcome == "lost"
        assert w.tel.calls[-1] == ("hangup", AID, "no_answer")
    end = [f for f in w.facts if isinstance(f, AttemptEndedFact)]
    assert [e.outcome for e in end] == [p.stopped_with.outcome]
