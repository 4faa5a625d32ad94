"""A call's life in a queue: waiting with music and announcements, ringing agents, talking.

One task per call (the call's own task, continuing after the IVR or a hotline greeting) runs
``QueuedCall.run``: it feeds the pure machine (``acd/queue_machine.py``) and carries out what
the machine decides. The ACD service decides which agent to ring and posts ``Offer`` into the
call's inbox; timers (announcements, maximum wait, ring backstop, hold reminder) post into the
same inbox, so the machine sees one ordered stream of events. A command that needs an answer
(an entry's id, a join, a dial, a bridge, a PostgreSQL lookup) is answered here at once, before
the next event is read.

Waiting: the caller sits in the queue's holding bridge (``sambung-queue-<name>``), whose one
announcer plays the queue's music; greeting and announcements are played on the caller's own
channel, which suspends the caller from the bridge's music while they play (ari-notes 1.3).
Ringing: the agent's phone is originated as a leg of the call with a preassigned id while the
caller keeps hearing music. On answer, the optional whisper plays to the agent only, then
caller and agent move into the call's own mixing bridge (``sambung-call-<call id>``).

Callbacks: the agent is rung first and the customer only when the agent has answered, so a
customer called back never waits for an agent (which would be an abandoned call by another
name). The entry keeps the caller's original place in the queue while it waits. Whether a
caller may be offered a callback at all is decided once per call, the first time it could be
offered, by the callback rules (``acd.callback_rules``, with the do-not-call list and the
callbacks already made to the number from PostgreSQL): a caller id that is withheld, invalid,
foreign, premium rate... is never offered one (the offer is not played, the key does nothing).
A callback accepted outside the calling window waits until the window opens, and the caller is
told when they will be called.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog

from sambung.acd import queue_machine as qm
from sambung.acd.agents import AgentStateError
from sambung.acd.callback_rules import next_dial_at
from sambung.acd.facts import QueueLeftFact
from sambung.acd.hub import AgentHub
from sambung.acd.place import PlaceTag, format_place
from sambung.acd.queue_machine import (
    CALLBACK_OFFER_SECONDS,
    MESSAGE_MAX_SECONDS,
    RING_BACKSTOP_SECONDS,
    WHISPER_BACKSTOP_SECONDS,
    bridge_for_call,
    callback_when,
    offer_outcome,
)
from sambung.acd.safeguard import Safeguard
from sambung.acd.service import AcdService, Entry, Offer, QueueFull, TransferRequest
from sambung.asterisk import talk_guard
from sambung.engine.calls import CallInbox
from sambung.engine.errors import CallGone, EndpointUnavailable, TelephonyError
from sambung.engine.events import (
    BridgeJoined,
    CallEnded,
    CallerHungUp,
    DigitPressed,
    LegAnswered,
    LegEnded,
    LegHeld,
    LegRinging,
    PromptFinished,
)
from sambung.engine.facts import CallAnsweredFact, CallEndedFact, Fact
from sambung.engine.metrics import Metrics
from sambung.engine.ports import QueueTelephony

__all__ = [
    "CALLBACK_OFFER_SECONDS",
    "MESSAGE_MAX_SECONDS",
    "RING_BACKSTOP_SECONDS",
    "WHISPER_BACKSTOP_SECONDS",
    "QueueCallInfo",
    "QueueRunner",
    "QueuedCall",
    "TalkHooks",
    "bridge_for_call",
    "bridge_for_queue",
    "callback_when",
    "offer_outcome",
]

log = structlog.get_logger(__name__)

_HANGUP_CONFIRM_SECONDS = 5.0


@dataclass(slots=True)
class QueueCallInfo:
    """What a call brings into a queue."""

    call_id: str
    queue: str
    caller_number: str
    caller_name: str
    did: str
    language: str | None
    attributes: dict[str, str]
    answered: bool = True
    # A dialer's live answer: the entry's kind, an agent it must go to (a promised callback),
    # and who wants to know the moment an agent is connected (the attempt's connect time).
    kind: str = "caller"
    pinned_agent: str | None = None
    on_connected: Callable[[str], None] | None = None


def bridge_for_queue(queue: str) -> str:
    return f"sambung-queue-{queue}"


class TalkHooks(Protocol):
    """Told when an agent is connected with a caller and when that talk ends (recordings,
    monitoring). Synchronous and quick: the call's task does not wait on them."""

    def talk_started(
        self,
        call_id: str,
        agent_id: str,
        leg_id: str,
        bridge_id: str,
        queue: str,
        resumed: bool = False,
        since: datetime | None = None,
    ) -> None: ...

    def talk_ended(self, call_id: str) -> None: ...


class QueueRunner:
    def __init__(
        self,
        acd: AcdService,
        telephony: QueueTelephony,
        record: Callable[[Fact], None],
        metrics: Metrics,
        hub: AgentHub,
        *,
        max_silent_seconds: float = 300.0,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        talk_hooks: TalkHooks | None = None,
        adopt_within_seconds: float = 120.0,
    ) -> None:
        self.talk_hooks = talk_hooks
        self.acd = acd
        self.tel = telephony
        self.record = record
        self.m = metrics
        self.hub = hub
        self.max_silent = max_silent_seconds
        self.wall = wall
        self.safeguard = Safeguard(telephony, adopt_within_seconds, metrics)
        # The engine is stopping and leaves waiting callers to the next one (see hand_over).
        self.handing_over = False

    def knows(self, queue: str) -> bool:
        return queue in self.acd.queues

    def hand_over(self, inboxes: list[CallInbox]) -> None:
        """From now on every call that waits is handed over (``queue_machine``, "Handing
        over"); ``inboxes``: the calls in queues now, woken to see it."""
        self.handing_over = True
        for inbox in inboxes:
            inbox.post_local(_HandOver())

    async def run(self, info: QueueCallInfo, inbox: CallInbox) -> str:
        """Run the call to its end; returns the end reason (the caller's row is closed here,
        unless the call was handed over: then nothing of it is closed)."""
        call = QueuedCall(self, info, inbox)
        return self._closed(call, info, inbox, await call.run())

    async def resume(
        self, info: QueueCallInfo, entry: Entry, tag: PlaceTag, inbox: CallInbox
    ) -> str:
        """Carry on a call an earlier engine left waiting: ``entry`` (readmitted by the ACD)
        at the place ``tag`` read from its channel. Ends as ``run`` does."""
        call = QueuedCall(self, info, inbox)
        return self._closed(call, info, inbox, await call.run((entry, tag)))

    def _closed(self, call: QueuedCall, info: QueueCallInfo, inbox: CallInbox, reason: str) -> str:
        if call.state is not None and call.state.handed_over:
            inbox.hand_over()
            return reason
        ended = call.ended
        synthetic = isinstance(ended, CallEnded) and ended.reason is not None
        cause = None if ended is None or synthetic else ended.cause
        text = ended.cause_text if isinstance(ended, CallEnded) else None
        sip = ended.sip_code if isinstance(ended, CallEnded) else None
        at = ended.at if ended is not None else self.wall()
        self.record(CallEndedFact(info.call_id, at, reason, cause, text, sip))
        return reason


# What a batch cut short does not owe: it would start something nobody will see to.
_NOT_OWED = (
    *qm.REPLIED,
    qm.Play,
    qm.PlayToAgent,
    qm.StopPrompts,
    qm.StartTimer,
    qm.Requeue,
    qm.RelaxEntry,
    qm.MarkPlace,  # the call ends: its place and safeguard go with it, or with its hang-up
)


@dataclass(frozen=True, slots=True)
class _Tick:
    """A timer of the call fired (posted by the loop; stamped when the task reads it)."""

    timer_id: str


@dataclass(frozen=True, slots=True)
class _HandOver:
    """Wakes the call's task: the engine is handing waiting callers over."""


class QueuedCall:
    """One caller's time in queues, with agents, until the call ends. Owned by its task:
    the machine's state, and what the machine refers to by name (the ACD's entries, the
    loop's timers)."""

    def __init__(self, r: QueueRunner, info: QueueCallInfo, inbox: CallInbox) -> None:
        self.r = r
        self.info = info
        self.inbox = inbox
        self.call_id = info.call_id
        self.state: qm.QueueCallState | None = None
        self.entries: dict[str, Entry] = {}  # every entry the call had, for the ACD's calls
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.ended: CallEnded | CallerHungUp | None = None
        self._unfinished: deque[qm.Command] = deque()  # the batch being carried out

    def _now(self) -> qm.Instant:
        return qm.Instant(asyncio.get_running_loop().time(), self.r.wall())

    # ---- main loop ---------------------------------------------------------------------

    async def run(self, resumed: tuple[Entry, PlaceTag] | None = None) -> str:
        """The call from its arrival in a queue, or (``resumed``) from where an earlier
        engine left it waiting, to its end."""
        info = self.info
        try:
            if resumed is None:
                state, commands = qm.start(
                    call_id=self.call_id,
                    queue=info.queue,
                    caller_number=info.caller_number,
                    caller_name=info.caller_name,
                    language=info.language,
                    kind=info.kind,
                    pinned_agent=info.pinned_agent,
                    answered=info.answered,
                    hold_reminder_seconds=self.r.acd.settings.hold_reminder_seconds,
                    at=self._now(),
                )
                why = "start"
            else:
                state, commands = self._resume(*resumed)
                why = "resume_talk" if resumed[1].talking else "resume"
            await self._drain(await self._run_batch(None, state, commands, why))
            while self.state is not None and self.state.phase is not qm.Phase.ENDED:
                if self.r.handing_over and not self.state.handing_over:
                    await self._feed(qm.HandOverAsked(self._now()))
                    continue
                ending = self.state.phase is qm.Phase.ENDING
                item = await self.inbox.next_any(
                    _HANGUP_CONFIRM_SECONDS if ending else self.r.max_silent
                )
                event = self._event_of(item)
                if event is not None:
                    await self._feed(event)
        finally:
            await self._settle()
            for h in self.timers.values():
                h.cancel()
            self.timers.clear()
            if self.state is not None and self.state.phase is not qm.Phase.ENDED:
                # Shutdown or a failure: the machine says what the call still owes (its entry,
                # its agent, its channel, its bridge).
                await self._feed(qm.Abort(self._now()))
            self.r.safeguard.forget(self.call_id)
        return (self.state.end_reason if self.state else "") or "completed"

    def _resume(self, entry: Entry, tag: PlaceTag) -> tuple[qm.QueueCallState, list[qm.Command]]:
        """The machine for a call an earlier engine left: waiting at its place, or talking."""
        self.entries[entry.entry_id] = entry
        info = self.info
        place = qm.Place(
            entry.entry_id,
            qm.rules_of(self.r.acd.queue(entry.queue)),
            entry.kind,
            entry.priority,
            entry.language,
            entry.enqueued_at,
            entry.enqueued_wall,
            joined_wall=tag.entry_wall,
            pinned_agent=None if tag.talking else entry.pinned_agent,
        )
        reminder = self.r.acd.settings.hold_reminder_seconds
        if tag.talking:
            assert tag.talk_agent is not None
            assert tag.talk_leg is not None
            assert tag.talk_wall is not None
            return qm.resume_talk(
                call_id=self.call_id,
                place=place,
                agent_id=tag.talk_agent,
                leg_id=tag.talk_leg,
                talk_wall=tag.talk_wall,
                generation=tag.generation,
                caller_number=info.caller_number,
                caller_name=info.caller_name,
                language=info.language,
                hold_reminder_seconds=reminder,
                at=self._now(),
            )
        return qm.resume(
            call_id=self.call_id,
            place=place,
            relax_step=tag.relax_step,
            generation=tag.generation,
            caller_number=info.caller_number,
            caller_name=info.caller_name,
            language=info.language,
            hold_reminder_seconds=reminder,
            at=self._now(),
        )

    def _event_of(self, item: object) -> qm.Event | None:
        """The machine's event for what the inbox gave (None: nothing happened for a while)."""
        at = self._now()
        match item:
            case None:
                return qm.Silence(at)
            case CallEnded() | CallerHungUp():
                if self.ended is None or isinstance(item, CallEnded):
                    self.ended = item
                lost = item.reason if isinstance(item, CallEnded) else None
                return qm.CallerGone(at, lost=lost)
            case DigitPressed(digit=d):
                return qm.Digit(d, at)
            case Offer():
                return qm.Offered(item.entry_id, item.agent_id, item.endpoint, item.leg_id, at)
            case LegRinging(leg_id=lid):
                return qm.AgentRinging(lid, at)
            case LegAnswered(leg_id=lid):
                return qm.AgentAnswered(lid, at)
            case LegEnded():
                return qm.AgentLegEnded(item.leg_id, item.cause, item.sip_code, item.answered, at)
            case LegHeld(leg_id=lid, held=held):
                return qm.AgentHold(lid, held, at)
            case PromptFinished(prompt_id=pid):
                return qm.PromptDone(pid, at)
            case _Tick(timer_id=tid):
                self.timers.pop(tid, None)
                return qm.TimerFired(tid, at)
            case TransferRequest():
                return qm.TransferAsked(self._transfer_target(item), item.agent_id, at)
            case BridgeJoined(channel_id=ch, bridge_id=b):
                log.debug("acd.bridge_joined", channel=ch, bridge=b)
            case _HandOver():
                pass  # the loop asks the machine (QueueRunner.handing_over)
        # CallResynced: legs that vanished meanwhile are reported as LegEnded by the adapter.
        return None

    def _transfer_target(self, req: TransferRequest) -> str | None:
        """The configured queue a transfer goes to: the one asked for, else the agent's first."""
        acd = self.r.acd
        target = req.queue
        if req.agent_id is not None:
            agent = acd.agents.get(req.agent_id)
            target = target or next(iter(sorted(agent.profile.queues)), None)
        return target if target is not None and target in acd.queues else None

    async def _feed(self, event: qm.Event) -> None:
        """Step the machine with ``event`` and carry out its commands; then the replies those
        commands gave, in order, before anything else is read."""
        await self._drain([event])

    async def _drain(self, events: list[qm.Event]) -> None:
        todo: deque[qm.Event] = deque(events)
        while todo:
            ev = todo.popleft()
            assert self.state is not None
            state, commands = qm.step(self.state, ev)
            todo.extend(await self._run_batch(self.state, state, commands, type(ev).__name__))

    async def _run_batch(
        self,
        old: qm.QueueCallState | None,
        state: qm.QueueCallState,
        commands: list[qm.Command],
        why: str,
    ) -> list[qm.Event]:
        self.state = state
        before = old.phase.value if old is not None else "-"
        if old is None or old.phase is not state.phase:
            log.info(
                f"transition: {before} -> {why} -> {state.phase.value}",
                detail=state.last_transition,
            )
        elif state.last_transition:
            log.debug(f"step: {before} -> {why}", detail=state.last_transition)
        replies: list[qm.Event] = []
        todo = self._unfinished = deque(commands)
        while todo:
            try:
                reply = await self._execute(todo[0])
            except asyncio.CancelledError:
                raise  # the command in progress is carried out again if it is owed
            except BaseException:
                todo.popleft()  # a command that failed is not tried again
                raise
            todo.popleft()
            if reply is not None:
                replies.append(reply)
        return replies

    async def _settle(self) -> None:
        """The task is ending in the middle of a batch (shutdown, a failure): carry out what
        the batch still owes (releases, leaves, facts, hang-ups); the machine's state already
        counts on it. Nothing that starts something (a prompt, a timer, a dial) is done."""
        owed = [c for c in self._unfinished if not isinstance(c, _NOT_OWED)]
        self._unfinished = deque()
        for cmd in owed:
            await self._execute(cmd)

    # ---- carrying out commands -----------------------------------------------------------

    async def _execute(self, cmd: qm.Command) -> qm.Event | None:
        r = self.r
        acd = r.acd
        match cmd:
            case qm.NewEntry():
                return self._new_entry(cmd)
            case qm.EnterHolding():
                return await self._enter_holding(cmd)
            case qm.Enqueue(entry_id=eid):
                try:
                    position: int | None = acd.enqueue(self.entries[eid])
                except QueueFull:
                    position = None
                return qm.Enqueued(position, self._now())
            case qm.Requeue(entry_id=eid):
                acd.entries[eid] = self.entries[eid]
                acd.kick()
            case qm.RelaxEntry(entry_id=eid):
                entry = self.entries[eid]
                entry.needs, entry.relax = (), ()
                acd.kick()
            case qm.LeaveQueue():
                self._leave(cmd)
            case qm.ToCallback(entry_id=eid, callback_id=cb, screen=screen, not_before=nb):
                acd.to_callback(self.entries[eid], cb, screen, not_before=nb)
            case qm.BackToQueue(entry_id=eid, agent_id=agent, outcome=outcome):
                acd.back_to_queue(self.entries[eid], agent, outcome)
            case qm.ScreenCallback():
                screen = await acd.screen_callback(self.info.caller_number, r.wall())
                return qm.CallbackScreened(screen, self._now())
            case qm.RefuseCallback(reason=reason):
                acd.callback_refused(reason)
            case qm.PlanCallback(screen=screen):
                now = self._now()
                when = next_dial_at(screen.verdict, acd.callback_rules, now.wall, screen.history)
                return qm.CallbackPlanned(when, now)
            case qm.AskPosition(entry_id=eid, queue=queue):
                position = acd.position(eid)
                wait = acd.expected_wait(queue, position) if position > 0 else None
                return qm.PositionKnown(position, wait, self._now())
            case qm.Play(prompt_id=pid, media=media, language=lang, label=label):
                try:
                    await r.tel.play(self.call_id, pid, media, language=lang)
                except CallGone:
                    return qm.PlayFailed(pid, self._now())
                except TelephonyError as err:
                    log.warning("acd.prompt_failed", label=label, error=str(err))
                    return qm.PlayFailed(pid, self._now())
            case qm.PlayToAgent(leg_id=leg, prompt_id=pid, media=media, language=lang):
                try:
                    await r.tel.play_on(leg, pid, media, language=lang)
                except TelephonyError as err:
                    log.warning("acd.whisper_failed", error=str(err))
                    return qm.PlayFailed(pid, self._now())
            case qm.StopPrompts(prompt_ids=ids):
                await self._stop_prompts(ids)
            case qm.Dial():
                return await self._dial(cmd)
            case qm.HangupAgent(leg_id=leg, reason=reason):
                with contextlib.suppress(TelephonyError):
                    await r.tel.hangup_leg(leg, reason)
            case qm.Hangup():
                with contextlib.suppress(TelephonyError):
                    await r.tel.hangup(self.call_id)
            case qm.Connect():
                return await self._connect(cmd)
            case qm.IsolateCaller(bridge_id=bridge):
                await self._isolate(bridge)
            case qm.RecordMessage(name=name, max_seconds=secs):
                try:
                    await r.tel.record_message(self.call_id, name, secs)
                except TelephonyError as err:
                    log.warning("acd.message_record_failed", error=str(err))
                    return qm.RecordingStarted(False, self._now())
                return qm.RecordingStarted(True, self._now())
            case qm.DestroyBridge(bridge_id=bridge):
                with contextlib.suppress(TelephonyError):
                    await r.tel.destroy_bridge(bridge)
            case qm.StartTimer(timer_id=tid, seconds=secs):
                old = self.timers.pop(tid, None)
                if old is not None:
                    old.cancel()
                loop = asyncio.get_running_loop()
                self.timers[tid] = loop.call_later(secs, self.inbox.post_local, _Tick(tid))
            case qm.CancelTimer(timer_id=tid):
                handle = self.timers.pop(tid, None)
                if handle is not None:
                    handle.cancel()
            case qm.MarkRinging(agent_id=agent):
                acd.agents.ringing(agent, self.call_id)
            case qm.MarkOnCall(agent_id=agent):
                acd.agents.answered(agent, self.call_id)
            case qm.MarkHeld(agent_id=agent, held=held):
                acd.agents.held(agent, self.call_id, held)
            case qm.ReleaseOffer(agent_id=agent, outcome=outcome, late=late):
                if late:
                    # The call moved on meanwhile (callback, transfer, gone): the agent may
                    # already be back at work.
                    with contextlib.suppress(AgentStateError):
                        acd.agents.offer_failed(agent, self.call_id, outcome)
                else:
                    acd.agents.offer_failed(agent, self.call_id, outcome)
            case qm.ReleaseAgent(agent_id=agent, wrap_up_seconds=wrap):
                acd.agents.call_ended(agent, self.call_id, wrap)
            case qm.TalkDone(queue=queue, talk_seconds=talk, wrap_up_seconds=wrap):
                r.m.talk_time.labels(queue=queue).observe(talk)
                # Handle time includes the wrap-up the agent will now spend.
                acd.handle_done(queue, talk + wrap)
                r.m.wrap_up_time.labels(queue=queue).observe(wrap)
            case qm.CountOffer(result=result):
                r.m.agent_offers.labels(result=result).inc()
            case qm.ObserveHold(queue=queue, seconds=secs):
                r.m.hold_time.labels(queue=queue).observe(secs)
            case qm.CountHoldReminder():
                r.m.hold_reminders.inc()
            case qm.Notify(event=event):
                r.hub.publish(event)
            case qm.NotifyCall(agent_id=agent, entry_id=entry_id, event=make):
                r.hub.publish(make(agent, self.entries[entry_id].context()))
            case qm.TalkStarted(
                agent_id=agent, leg_id=leg, bridge_id=bridge, queue=queue, resumed=resumed
            ):
                if r.talk_hooks is not None:
                    r.talk_hooks.talk_started(
                        self.call_id, agent, leg, bridge, queue, resumed, cmd.since
                    )
            case qm.TalkEnded():
                if r.talk_hooks is not None:
                    r.talk_hooks.talk_ended(self.call_id)
            case qm.NotifyConnected(agent_id=agent):
                if self.info.on_connected is not None:
                    self.info.on_connected(agent)
            case qm.MarkPlace(place=tag, safeguard=guard):
                await r.safeguard.mark(self.call_id, format_place(tag) if tag else "", guard)
            case qm.HandOver(entry_id=eid):
                acd.unlist(self.entries[eid])
                await r.safeguard.hand_over(self.call_id)
            case qm.Record(fact=fact):
                r.record(fact)
            case qm.Log(event=event, fields=fields_, level=level):
                if level == "warning":
                    log.warning(event, **dict(fields_))
                else:
                    log.info(event, **dict(fields_))
        return None

    def _new_entry(self, cmd: qm.NewEntry) -> qm.Event:
        info, acd = self.info, self.r.acd
        entry = acd.new_entry(
            self.call_id,
            cmd.queue,
            kind=cmd.kind,
            inbox=self.inbox,
            caller_number=info.caller_number,
            caller_name=info.caller_name,
            did=info.did,
            language=info.language,
            attributes=info.attributes,
            enqueued_at=cmd.enqueued_at,
            enqueued_wall=cmd.enqueued_wall,
            pinned_agent=cmd.pinned_agent,
        )
        self.entries[entry.entry_id] = entry
        place = qm.Place(
            entry.entry_id,
            qm.rules_of(acd.queue(entry.queue)),
            entry.kind,
            entry.priority,
            entry.language,
            entry.enqueued_at,
            entry.enqueued_wall,
            pinned_agent=entry.pinned_agent,
        )
        return qm.EntryMade(place, self._now())

    async def _enter_holding(self, cmd: qm.EnterHolding) -> qm.Event:
        r = self.r
        bridge = bridge_for_queue(cmd.queue)
        try:
            if cmd.answer:
                await r.tel.answer(self.call_id)
                self.info.answered = True
                r.record(CallAnsweredFact(self.call_id, r.wall()))
            try:
                await r.tel.join_bridge(bridge, [self.call_id])
            except CallGone:
                raise
            except TelephonyError:
                # The bridge is missing (Asterisk restarted before the ACD's sync ran).
                await r.tel.ensure_holding_bridge(bridge, cmd.moh_class)
                await r.tel.join_bridge(bridge, [self.call_id])
        except CallGone:
            return qm.HoldingFailed(True, self._now())
        except TelephonyError as err:
            log.warning("acd.join_failed", queue=cmd.queue, error=str(err))
            return qm.HoldingFailed(False, self._now())
        return qm.HoldingJoined(r.acd.is_full(cmd.queue), self._now())

    def _leave(self, cmd: qm.LeaveQueue) -> None:
        r = self.r
        entry = self.entries[cmd.entry_id]
        if not cmd.counted:
            # It never waited (the queue was full on arrival): no wait to count.
            r.record(
                QueueLeftFact(entry.entry_id, r.wall(), cmd.outcome, 0.0, False, None, cmd.detail)
            )
            r.m.queue_calls.labels(queue=entry.queue, outcome=cmd.outcome).inc()
            return
        waited = r.acd.leave(entry, cmd.outcome)
        short = cmd.outcome == "abandoned" and waited < r.acd.settings.short_abandon_seconds
        r.record(
            QueueLeftFact(
                entry.entry_id, r.wall(), cmd.outcome, waited, short, entry.agent_id, cmd.detail
            )
        )

    async def _stop_prompts(self, ids: tuple[str, ...]) -> None:
        for pid in ids:
            with contextlib.suppress(TelephonyError):
                await self.r.tel.stop_prompt(pid)

    async def _dial(self, cmd: qm.Dial) -> qm.Event:
        try:
            await self.r.tel.dial(
                self.call_id,
                cmd.leg_id,
                cmd.endpoint,
                caller_id=cmd.caller_id,
                timeout=cmd.timeout,
                originator=self.call_id,
                # The leg names its caller for Asterisk's talk guard (asterisk/talk_guard.py).
                variables={**dict(cmd.variables), **talk_guard.leg_variables(self.call_id)},
            )
        except (EndpointUnavailable, TelephonyError) as err:
            log.info("acd.offer_failed_at_dial", agent=cmd.agent_id, error=str(err))
            failure = "unavailable" if isinstance(err, EndpointUnavailable) else "busy"
            return qm.Dialled(cmd.leg_id, failure, self._now())
        return qm.Dialled(cmd.leg_id, None, self._now())

    async def _connect(self, cmd: qm.Connect) -> qm.Event:
        tel = self.r.tel
        made = stopped = False
        try:
            if cmd.create:
                await tel.create_mixing_bridge(cmd.bridge_id)
                made = True
            await self._stop_prompts(cmd.prompt_ids)
            stopped = True
            await tel.join_bridge(cmd.bridge_id, [self.call_id, cmd.leg_id])
        except TelephonyError as err:
            log.warning("acd.bridge_failed", error=str(err))
            return qm.Bridged(False, made, stopped, self._now())
        try:
            # Should the agent hang up while no engine runs, Asterisk ends the caller too.
            await tel.guard_talk(self.call_id, cmd.leg_id)
        except TelephonyError as err:
            # The talk goes on; only that guard is missing (a next engine still ends a talk
            # it finds with one side).
            log.warning("acd.talk_guard_not_set", error=str(err))
        return qm.Bridged(True, made, True, self._now())

    async def _isolate(self, bridge: str) -> None:
        tel = self.r.tel
        made = False
        try:
            await tel.create_mixing_bridge(bridge)
            made = True
            await tel.join_bridge(bridge, [self.call_id])
            await tel.destroy_bridge(bridge)
        except TelephonyError as err:
            log.warning("acd.message_bridge_failed", error=str(err))
            if made:
                with contextlib.suppress(TelephonyError):
                    await tel.destroy_bridge(bridge)
