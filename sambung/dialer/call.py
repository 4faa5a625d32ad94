"""One dial attempt, owned by its own task from the originate to the end of the call.

The task runs one dialer line: it steps the pure line machine (``dialer/line_machine.py``,
where the path of a call and every rule about its outcome are written down) and does what it
decides. Asterisk's events come from the call's inbox, the replies to the task's own commands
(originate, AMD, a prompt, the queue) are fed back the moment they return, and when the
machine's deadline passes with nothing else the task feeds it ``TimedOut``. While the campaign's
queue has the call, the queue reads the inbox itself (``QueueRunner.run``), and the agent's
connection reaches the machine through the queue's ``on_connected``.

The attempt's row exists before this task starts (``dialer.store.begin_attempt``); this task
only writes what happens next, as facts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

import structlog

from sambung.acd.call import QueueCallInfo
from sambung.acd.place import PlaceTag
from sambung.acd.service import Entry
from sambung.dialer import line_machine as lm
from sambung.engine.calls import CallInbox
from sambung.engine.errors import CallGone, OriginateUncertain, TelephonyError
from sambung.engine.events import (
    AmdDecided,
    CallEnded,
    CallerHungUp,
    DigitPressed,
    OutboundAnswered,
    PromptFinished,
)
from sambung.engine.facts import Fact
from sambung.engine.metrics import Metrics
from sambung.engine.ports import QueueTelephony

log = structlog.get_logger(__name__)

AMD_CONTEXT = "dialer-amd"  # the dialplan context that runs AMD() (asterisk/conf)


class DialerTelephony(QueueTelephony, Protocol):
    async def originate_call(
        self,
        call_id: str,
        endpoint: str,
        *,
        caller_id: str | None,
        timeout: int,
        app_args: tuple[str, ...],
        variables: dict[str, str] | None = None,
    ) -> None: ...

    async def continue_to(self, call_id: str, context: str, extension: str = "s") -> None: ...


@dataclass(slots=True)
class AttemptPlan:
    """What the service decided for one attempt."""

    attempt_id: str
    campaign: str
    queue: str
    mode: str
    record_id: int
    account_id: str
    debtor_name: str
    phone: str
    language: str
    amount_due: Decimal
    context: dict[str, str]
    endpoint: str
    caller_id: str
    ring_seconds: int
    amd: bool
    machine_message: tuple[str, ...] = ()
    reminder_key: str = "1"
    reminder_wait: float = 6.0
    pinned_agent: str | None = None
    # Set by the service when it hangs up a ringing line itself (stop, paid, shutdown).
    cancelled: bool = False
    # Set by the call task when it fails: what the line ended with all the same.
    stopped_with: AttemptResult | None = None


@dataclass(slots=True)
class AttemptResult:
    outcome: str
    cause: int | None = None
    sip_code: int | None = None
    answered_at: float | None = None  # loop clock
    live_at: float | None = None  # loop clock: known to be a person
    connected_at: float | None = None
    agent_id: str | None = None
    amd_status: str | None = None
    amd_cause: str | None = None
    notes: list[str] = field(default_factory=list)


class QueueCalls(Protocol):
    """Where a live answer waits for an agent: the ACD's queues (``QueueRunner``, or the ACD
    feature, which also keeps the call among those a graceful stop hands over)."""

    async def run(self, info: QueueCallInfo, inbox: CallInbox) -> str: ...

    async def resume(
        self, info: QueueCallInfo, entry: Entry, tag: PlaceTag, inbox: CallInbox
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class TakenOver:
    """A live answer an earlier engine left in the campaign's queue: the ACD's entry at the
    place read from its channel, and when the debtor was known to be a person."""

    entry: Entry
    tag: PlaceTag
    live_wall: datetime
    connected_wall: datetime | None


class AttemptRunner:
    def __init__(
        self,
        telephony: DialerTelephony,
        queues: QueueCalls,
        record: Callable[[Fact], None],
        metrics: Metrics,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tel = telephony
        self.queues = queues
        self.record = record
        self.m = metrics
        self.wall = wall

    async def run(
        self,
        plan: AttemptPlan,
        inbox: CallInbox,
        on_live: Callable[[AttemptPlan], None] | None = None,
        on_connected: Callable[[AttemptPlan], None] | None = None,
    ) -> AttemptResult:
        return await _Attempt(self, plan, inbox, on_live, on_connected).run()

    async def resume(
        self,
        plan: AttemptPlan,
        inbox: CallInbox,
        taken: TakenOver,
        on_connected: Callable[[AttemptPlan], None] | None = None,
    ) -> AttemptResult:
        """Carry on a live answer an earlier engine left waiting or talking (``taken``)."""
        return await _Attempt(self, plan, inbox, None, on_connected, taken).run()


def line_spec(plan: AttemptPlan) -> lm.LineSpec:
    """The plan as the line machine takes it: frozen, and without the service's own fields."""
    return lm.LineSpec(
        attempt_id=plan.attempt_id,
        campaign=plan.campaign,
        queue=plan.queue,
        mode=plan.mode,
        phone=plan.phone,
        debtor_name=plan.debtor_name,
        language=plan.language,
        amount_due=plan.amount_due,
        context=tuple(plan.context.items()),
        endpoint=plan.endpoint,
        caller_id=plan.caller_id,
        ring_seconds=plan.ring_seconds,
        amd=plan.amd,
        machine_message=tuple(plan.machine_message),
        reminder_key=plan.reminder_key,
        reminder_wait=plan.reminder_wait,
        pinned_agent=plan.pinned_agent,
    )


class _Attempt:
    """The executor of one line; owned by its call task only."""

    def __init__(
        self,
        r: AttemptRunner,
        plan: AttemptPlan,
        inbox: CallInbox,
        on_live: Callable[[AttemptPlan], None] | None,
        on_connected: Callable[[AttemptPlan], None] | None = None,
        taken: TakenOver | None = None,
    ) -> None:
        self.r = r
        self.p = plan
        self.inbox = inbox
        self.on_live = on_live
        self.on_connected = on_connected
        self.loop = asyncio.get_running_loop()
        self.taken = taken
        if taken is None:
            self.state, self.first = lm.start(line_spec(plan))
        else:
            self.state, self.first = lm.resume(
                line_spec(plan),
                now=self._now(),
                live_wall=taken.live_wall,
                agent_id=taken.tag.talk_agent,
                connected_wall=taken.tag.talk_wall or taken.connected_wall,
            )
        self.result: lm.LineResult | None = None

    def _now(self) -> lm.Now:
        return lm.Now(self.loop.time(), self.r.wall())

    async def run(self) -> AttemptResult:
        log.info(f"transition: - -> start -> {self.state.phase.value}")
        try:
            await self._carry_out(self.first)
            while self.state.phase is not lm.Phase.ENDED:
                deadline = self.state.deadline
                wait = None if deadline is None else max(0.0, deadline - self.loop.time())
                item = await self.inbox.next_any(wait)
                event = lm.TimedOut(self._now()) if item is None else self._event(item)
                if event is not None:
                    await self._feed(event)
        except (Exception, asyncio.CancelledError):
            # Whatever stops the task, the line is hung up (or left to the queue that has it)
            # and its end is written; then the error goes on.
            await self._feed(lm.Stopped(self._now(), self.p.cancelled))
            self.p.stopped_with = self._result()
            raise
        return self._result()

    def _result(self) -> AttemptResult:
        res = self.result
        assert res is not None  # ENDED is reached only by the step that says Finished
        return AttemptResult(
            outcome=res.outcome,
            cause=res.cause,
            sip_code=res.sip_code,
            answered_at=res.answered_at,
            live_at=res.live_at,
            connected_at=res.connected_at,
            agent_id=res.agent_id,
            amd_status=res.amd_status,
            amd_cause=res.amd_cause,
            notes=list(res.notes),
        )

    def _event(self, item: object) -> lm.LineEvent | None:
        """The machine's event for what the inbox gave; None for what the line ignores."""
        now = self._now()
        match item:
            case OutboundAnswered(at=at):
                return lm.Answered(at, now)
            case CallEnded() as e:
                # ``cancelled`` is read now: the service sets it on the plan before its hang-up.
                return lm.LineEnded(
                    e.cause, e.cause_text, e.sip_code, e.reason, self.p.cancelled, now
                )
            case CallerHungUp():
                return lm.CalleeLeft(now)
            case AmdDecided(status=status, cause=cause):
                return lm.AmdVerdict(status, cause, now)
            case PromptFinished(prompt_id=pid):
                return lm.PromptDone(pid, now)
            case DigitPressed(digit=digit):
                return lm.KeyPressed(digit, now)
        return None

    def _step(self, event: lm.LineEvent) -> list[lm.Command]:
        old = self.state
        self.state, commands = lm.step(old, event)
        if self.state.phase is not old.phase:
            log.info(
                f"transition: {old.phase.value} -> {type(event).__name__} "
                f"-> {self.state.phase.value}"
            )
        return commands

    async def _feed(self, event: lm.LineEvent) -> None:
        await self._carry_out(self._step(event))

    async def _carry_out(self, commands: list[lm.Command]) -> None:
        for cmd in commands:
            reply = await self._execute(cmd)
            if reply is not None:
                await self._feed(reply)  # a replied command is the last of its step

    async def _execute(self, cmd: lm.Command) -> lm.LineEvent | None:
        if self._effect(cmd):
            return None
        tel = self.r.tel
        call_id = self.p.attempt_id
        match cmd:
            case lm.Originate():
                try:
                    await tel.originate_call(
                        call_id,
                        cmd.endpoint,
                        caller_id=cmd.caller_id,
                        timeout=cmd.timeout,
                        app_args=cmd.app_args,
                        variables=dict(cmd.variables),
                    )
                except OriginateUncertain as err:
                    return lm.OriginateUncertain(err.detail, self._now())
                except TelephonyError as err:
                    return lm.OriginateFailed(err.detail, self._now())
                return lm.Originated(self._now())
            case lm.StartAmd():
                try:
                    await tel.continue_to(call_id, AMD_CONTEXT)
                except CallGone:
                    return lm.AmdGone(self._now())
                except TelephonyError as err:
                    return lm.AmdUnavailable(str(err), self._now())
                return lm.AmdStarted(self._now())
            case lm.Play(prompt_id=pid, media=media, language=language):
                try:
                    await tel.play(call_id, pid, media, language=language)
                except TelephonyError:
                    return lm.PlayFailed(pid, self._now())
                return lm.PlayStarted(pid, self._now())
            case lm.StopPrompt(prompt_id=pid):
                with contextlib.suppress(TelephonyError):
                    await tel.stop_prompt(pid)
            case lm.Hangup(reason=reason):
                with contextlib.suppress(TelephonyError):
                    await tel.hangup(call_id, reason)
            case lm.HandToQueue():
                info = QueueCallInfo(
                    call_id=call_id,
                    queue=cmd.queue,
                    caller_number=cmd.caller_number,
                    caller_name=cmd.caller_name,
                    did="",
                    language=cmd.language,
                    attributes=dict(cmd.attributes),
                    answered=True,
                    kind="dialer",
                    pinned_agent=cmd.pinned_agent,
                    on_connected=self._connected,
                )
                if cmd.resumed:
                    taken = self.taken
                    assert taken is not None  # only a line taken over resumes
                    reason = await self.r.queues.resume(info, taken.entry, taken.tag, self.inbox)
                else:
                    reason = await self.r.queues.run(info, self.inbox)
                return lm.QueueDone(reason, self._now())
            case lm.Fault(detail=detail):
                raise ValueError(detail)
        return None

    def _effect(self, cmd: lm.Command) -> bool:
        """Carry out a command that needs no await; False for the others."""
        campaign = self.p.campaign
        match cmd:
            case lm.Record(fact=fact):
                self.r.record(fact)
            case lm.ObserveConnectDelay(result=result, seconds=seconds):
                self.r.m.dialer_connect_delay.labels(campaign=campaign, result=result).observe(
                    seconds
                )
            case lm.CountAttempt(outcome=outcome):
                self.r.m.dialer_attempts.labels(campaign=campaign, outcome=outcome).inc()
            case lm.NotifyLive():
                if self.on_live is not None:
                    self.on_live(self.p)
            case lm.NotifyConnected():
                if self.on_connected is not None:
                    self.on_connected(self.p)
            case lm.Log(event=event, fields=fields, level=level):
                emit = log.warning if level == "warning" else log.info
                emit(event, **dict(fields))
            case lm.Finished(result=result):
                self.result = result
            case _:
                return False
        return True

    def _connected(self, agent_id: str) -> None:
        # The queue calls this from inside HandToQueue, in this same task, so the machine steps
        # here and now; what it decides on a connection needs no await.
        for cmd in self._step(lm.AgentConnected(agent_id, self._now())):
            if not self._effect(cmd):
                log.error("dialer.command_dropped", command=type(cmd).__name__)
