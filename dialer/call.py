"""One dial attempt, owned by its own task from the originate to the end of the call.

    originate -> (no answer: busy, no_answer, rejected, congestion, invalid_number, failed)
              -> answered -> AMD in the dialplan (if on) -> MACHINE: optional message, hang up
                                                          -> HUMAN / NOTSURE: a live answer
    live answer -> predictive/progressive/preview: the campaign's queue, whose wait is the
                   connect limit: an agent within it (connected), else the safe-harbour
                   message and a hang-up (abandoned)
                -> reminder (agentless): the amount due, "press 1 for an agent" -> the queue

NOTSURE counts as a person: calling a person a machine and hanging up on them would be an
abandoned call that no figure shows. The attempt's row exists before this task starts
(``dialer.store.begin_attempt``); this task only writes what happens next, as facts.
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

from acd.call import QueueCallInfo, QueueRunner
from dialer import outcomes
from dialer.facts import (
    AttemptAmdFact,
    AttemptAnsweredFact,
    AttemptConnectedFact,
    AttemptEndedFact,
)
from engine.calls import CallInbox
from engine.errors import CallGone, TelephonyError
from engine.events import (
    AmdDecided,
    CallEnded,
    CallerHungUp,
    DigitPressed,
    OutboundAnswered,
    PromptFinished,
)
from engine.facts import CallAnsweredFact, CallEndedFact, Fact
from engine.metrics import Metrics
from engine.ports import QueueTelephony
from ivr.speech import say_media

log = structlog.get_logger(__name__)

AMD_CONTEXT = "dialer-amd"
# Past the originate's own ring timeout, in case Asterisk's end event is lost.
RING_BACKSTOP_SECONDS = 5.0
# AMD's total_analysis_time is 5 s (asterisk/conf/amd.conf); a verdict later than this means
# the event was lost.
AMD_BACKSTOP_SECONDS = 10.0
PROMPT_BACKSTOP_SECONDS = 60.0


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


class AttemptRunner:
    def __init__(
        self,
        telephony: DialerTelephony,
        queues: QueueRunner,
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


class _Attempt:
    def __init__(
        self,
        r: AttemptRunner,
        plan: AttemptPlan,
        inbox: CallInbox,
        on_live: Callable[[AttemptPlan], None] | None,
        on_connected: Callable[[AttemptPlan], None] | None = None,
    ) -> None:
        self.r = r
        self.p = plan
        self.inbox = inbox
        self.on_live = on_live
        self.on_connected = on_connected
        self.loop = asyncio.get_running_loop()
        self.res = AttemptResult(outcome=outcomes.FAILED)
        self.ended: CallEnded | None = None
        self.gone = False
        self.live_wall: datetime | None = None
        self.end_reason = ""

    def _now(self) -> float:
        return self.loop.time()

    async def run(self) -> AttemptResult:
        p = self.p
        try:
            try:
                await self.r.tel.originate_call(
                    p.attempt_id,
                    p.endpoint,
                    caller_id=p.caller_id,
                    timeout=p.ring_seconds,
                    app_args=(p.campaign,),
                    variables={"SAMBUNG_CAMPAIGN": p.campaign, "SAMBUNG_ATTEMPT": p.attempt_id},
                )
            except TelephonyError as err:
                log.warning("dialer.originate_failed", error=str(err), campaign=p.campaign)
                self.res.outcome = outcomes.FAILED
                self.res.notes.append(f"originate: {err.detail}")
                self.end_reason = "originate_failed"
                return self.res
            if not await self._wait_answer():
                return self.res
            if p.amd and not await self._amd():
                return self.res
            self._went_live()
            if p.mode == "reminder":
                await self._reminder()
            else:
                await self._to_agent()
            return self.res
        except (Exception, asyncio.CancelledError):
            if self.res.outcome == outcomes.FAILED and self.res.answered_at is None:
                self.res.outcome = "cancelled"
            raise
        finally:
            await self._finish()

    # ---- ringing -----------------------------------------------------------------------

    async def _wait_answer(self) -> bool:
        deadline = self._now() + self.p.ring_seconds + RING_BACKSTOP_SECONDS
        while True:
            item = await self.inbox.next_any(max(0.0, deadline - self._now()))
            if item is None:
                log.warning("dialer.no_end_event", attempt=self.p.attempt_id)
                with contextlib.suppress(TelephonyError):
                    await self.r.tel.hangup(self.p.attempt_id, "no_answer")
                self.res.outcome = outcomes.NO_ANSWER
                self.end_reason = "ring_timeout"
                return False
            if isinstance(item, OutboundAnswered):
                self.res.answered_at = self._now()
                self.r.record(AttemptAnsweredFact(self.p.attempt_id, item.at))
                self.r.record(CallAnsweredFact(self.p.attempt_id, item.at))
                return True
            if isinstance(item, CallEnded):
                self.ended = item
                synthetic = item.reason is not None
                self.res.cause = None if synthetic else item.cause
                self.res.sip_code = item.sip_code
                if self.p.cancelled:
                    self.res.outcome = "cancelled"
                elif synthetic:
                    self.res.outcome = outcomes.FAILED
                else:
                    self.res.outcome = outcomes.classify(item.cause, item.sip_code)
                self.end_reason = f"not_answered:{self.res.outcome}"
                return False

    # ---- answering-machine detection ------------------------------------------------------

    async def _amd(self) -> bool:
        try:
            await self.r.tel.continue_to(self.p.attempt_id, AMD_CONTEXT)
        except CallGone:
            self.res.outcome = "abandoned"  # answered and gone before we could listen
            self.end_reason = "hung_up_at_answer"
            return False
        except TelephonyError as err:
            # Without AMD the call is still a live answer as far as we can tell.
            log.warning("dialer.amd_failed", error=str(err))
            return True
        deadline = self._now() + AMD_BACKSTOP_SECONDS
        while True:
            item = await self.inbox.next_any(max(0.0, deadline - self._now()))
            if item is None:
                log.warning("dialer.amd_no_verdict", attempt=self.p.attempt_id)
                self.res.amd_status, self.res.amd_cause = "NOTSURE", "NO_VERDICT"
                return True
            if isinstance(item, AmdDecided):
                self.res.amd_status, self.res.amd_cause = item.status, item.cause
                log.info("dialer.amd", status=item.status, cause=item.cause)
                if item.status == "MACHINE":
                    self.r.record(AttemptAmdFact(self.p.attempt_id, item.status, item.cause, None))
                    await self._machine()
                    return False
                if item.status == "HANGUP":
                    self.gone = True
                return not self.gone
            if isinstance(item, CallerHungUp):
                self.gone = True
            if isinstance(item, CallEnded):
                # Hung up while AMD listened: "hello?... click". A person, not connected.
                self.ended = item
                self.res.outcome = "abandoned" if self.res.amd_status is None else "machine"
                self.res.live_at = self._now()
                self.end_reason = "hung_up_during_amd"
                return False

    async def _machine(self) -> None:
        self.res.outcome = "machine"
        self.end_reason = "machine"
        if self.p.machine_message:
            await self._say(self.p.machine_message, "machine")
        if self.ended is None:
            with contextlib.suppress(TelephonyError):
                await self.r.tel.hangup(self.p.attempt_id)

    # ---- a person ------------------------------------------------------------------------

    def _went_live(self) -> None:
        self.res.live_at = self._now()
        self.live_wall = self.r.wall()
        self.r.record(
            AttemptAmdFact(
                self.p.attempt_id,
                self.res.amd_status or "OFF",
                self.res.amd_cause or "",
                self.live_wall,
            )
        )
        if self.on_live is not None:
            self.on_live(self.p)

    def _connected(self, agent_id: str) -> None:
        now = self._now()
        self.res.connected_at = now
        self.res.agent_id = agent_id
        delay = now - (self.res.live_at or now)
        self.r.m.dialer_connect_delay.labels(campaign=self.p.campaign, result="connected").observe(
            delay
        )
        self.r.record(
            AttemptConnectedFact(self.p.attempt_id, agent_id, self.r.wall(), round(delay, 3))
        )
        log.info("dialer.connected", agent=agent_id, delay=round(delay, 3))
        if self.on_connected is not None:
            self.on_connected(self.p)

    async def _to_agent(self) -> None:
        p = self.p
        info = QueueCallInfo(
            call_id=p.attempt_id,
            queue=p.queue,
            caller_number=p.phone,
            caller_name=p.debtor_name,
            did="",
            language=p.language,
            attributes=dict(p.context),
            answered=True,
            kind="dialer",
            pinned_agent=p.pinned_agent,
            on_connected=self._connected,
        )
        # The queue's run closes the calls row; the attempt's outcome is ours to say.
        self.end_reason = await self.r.queues.run(info, self.inbox)
        self.ended = self.ended or CallEnded(p.attempt_id, 0, "", self.r.wall(), reason="queue")
        if self.res.connected_at is not None:
            self.res.outcome = "connected"
        else:
            self.res.outcome = "abandoned"
            if self.end_reason == "overflow_hangup":
                # The safe-harbour message was said (the queue's overflow prompt).
                delay = self._now() - (self.res.live_at or self._now())
                self.r.m.dialer_connect_delay.labels(
                    campaign=p.campaign, result="safe_harbour"
                ).observe(delay)
                self.res.notes.append("safe_harbour")

    async def _reminder(self) -> None:
        """Agentless: say the amount due and offer an agent on a key."""
        p = self.p
        amount = str(int(p.amount_due))
        media = (
            "sound:sambung/dialer-reminder-amount",
            *say_media("money", amount, p.language),
            "sound:sambung/dialer-reminder-press",
            *say_media("digits", p.reminder_key, p.language),
        )
        self.res.outcome = "reminder"
        pressed = await self._say(media, "reminder", key=p.reminder_key, wait=p.reminder_wait)
        if pressed and self.ended is None:
            log.info("dialer.reminder_agent_asked")
            await self._to_agent()
            if self.res.connected_at is None:
                self.res.outcome = "reminder"  # the reminder was heard; no agent was free
            return
        self.end_reason = "reminder_played"
        if self.ended is None:
            with contextlib.suppress(TelephonyError):
                await self.r.tel.hangup(p.attempt_id)

    async def _say(
        self, media: tuple[str, ...], label: str, *, key: str = "", wait: float = 0.0
    ) -> bool:
        """Play and wait for the end (and ``wait`` more seconds for ``key``); True on the key."""
        pid = f"{self.p.attempt_id}-d-{label}"
        try:
            await self.r.tel.play(self.p.attempt_id, pid, media, language=self.p.language)
        except TelephonyError:
            return False
        deadline = self._now() + PROMPT_BACKSTOP_SECONDS
        playing = True
        while self.ended is None:
            item = await self.inbox.next_any(max(0.0, deadline - self._now()))
            if item is None:
                return False
            if isinstance(item, PromptFinished) and item.prompt_id == pid:
                playing = False
                if not key:
                    return False
                deadline = self._now() + wait
            elif isinstance(item, DigitPressed) and key and item.digit == key:
                if playing:
                    with contextlib.suppress(TelephonyError):
                        await self.r.tel.stop_prompt(pid)
                return True
            elif isinstance(item, CallEnded):
                self.ended = item
            elif isinstance(item, CallerHungUp):
                self.gone = True
        return False

    # ---- the end -----------------------------------------------------------------------

    async def _finish(self) -> None:
        p = self.p
        if self.ended is None and self.res.answered_at is not None:
            with contextlib.suppress(TelephonyError):
                await self.r.tel.hangup(p.attempt_id)
        at = self.r.wall()
        connect = None
        if self.res.live_at is not None:
            end = self.res.connected_at if self.res.connected_at is not None else self._now()
            connect = round(end - self.res.live_at, 3)
        self.r.record(
            AttemptEndedFact(
                p.attempt_id,
                at,
                self.res.outcome,
                self.res.cause,
                self.res.sip_code,
                connect if self.res.outcome in ("connected", "abandoned") else None,
                self.live_wall,
            )
        )
        if not self._queue_closed_call():
            ended = self.ended
            synthetic = ended is None or ended.reason is not None
            self.r.record(
                CallEndedFact(
                    p.attempt_id,
                    at,
                    self.end_reason or self.res.outcome,
                    None if synthetic or ended is None else ended.cause,
                    None if synthetic or ended is None else ended.cause_text,
                    None if ended is None else ended.sip_code,
                )
            )
        self.r.m.dialer_attempts.labels(campaign=p.campaign, outcome=self.res.outcome).inc()
        log.info(
            "dialer.attempt_ended",
            campaign=p.campaign,
            outcome=self.res.outcome,
            cause=self.res.cause,
            sip_code=self.res.sip_code,
        )

    def _queue_closed_call(self) -> bool:
        # QueueRunner.run writes the calls row's end itself.
        return self.ended is not None and self.ended.reason == "queue"
