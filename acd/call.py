"""A call's life in a queue: waiting with music and announcements, ringing agents, talking.

One task per call (the call's own task, continuing after the IVR or a hotline greeting) runs
``QueuedCall.run``. The ACD service decides which agent to ring and posts ``Offer`` into the
call's inbox; the task does the telephony and reports back. Timers (announcements, maximum
wait, ring backstop, hold reminder) post into the same inbox, so the task sees one ordered
stream of events and owns every decision about its call.

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
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

import structlog

from acd.agents import AgentStateError
from acd.callback_rules import next_dial_at
from acd.facts import (
    LegAnsweredFact,
    LegEndedFact,
    LegStartedFact,
    QueueEnteredFact,
    QueueLeftFact,
)
from acd.hub import AgentHub
from acd.service import AcdService, CallbackScreen, Entry, Offer, QueueFull, TransferRequest
from dialer.phones import WIB, WIT, WITA
from engine.calls import CallInbox
from engine.errors import CallGone, EndpointUnavailable, TelephonyError
from engine.events import (
    BridgeJoined,
    CallEnded,
    CallerHungUp,
    CallResynced,
    DigitPressed,
    LegAnswered,
    LegEnded,
    LegHeld,
    LegRinging,
    PromptFinished,
)
from engine.facts import CallAnsweredFact, CallEndedFact, Fact
from engine.metrics import Metrics
from engine.ports import QueueTelephony
from ivr.speech import say_media

log = structlog.get_logger(__name__)

RING_BACKSTOP_SECONDS = 3.0  # past Asterisk's own dial timeout, in case its event is lost
CALLBACK_OFFER_SECONDS = 8.0
WHISPER_BACKSTOP_SECONDS = 15.0
MESSAGE_MAX_SECONDS = 120
_HANGUP_CONFIRM_SECONDS = 5.0
# Q.850 causes of a leg that never answered -> why the offer failed.
_BUSY = {17, 21}  # user busy; call rejected (the agent pressed decline)
_NO_ANSWER = {18, 19}
_UNAVAILABLE = {0, 1, 3, 20, 27, 38}


def offer_outcome(cause: int, timed_out: bool) -> str:
    """Why an agent's phone did not take a call: rona, busy or unavailable."""
    if timed_out or cause in _NO_ANSWER:
        return "rona"
    if cause in _BUSY:
        return "busy"
    if cause in _UNAVAILABLE:
        return "unavailable"
    return "busy"  # anything else (congestion...): try the next agent at once


@dataclass(frozen=True, slots=True)
class Tick:
    """A timer of the call fired."""

    name: str
    token: int


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


# Written out (not built from the weekday's name) so that every prompt a call may play can be
# found by its name in the code.
_WEEKDAYS: Final = (
    "sound:sambung/day-monday",
    "sound:sambung/day-tuesday",
    "sound:sambung/day-wednesday",
    "sound:sambung/day-thursday",
    "sound:sambung/day-friday",
    "sound:sambung/day-saturday",
    "sound:sambung/day-sunday",
)
_ZONE_NAMES: Final = {
    WIB: "sound:sambung/zone-wib",
    WITA: "sound:sambung/zone-wita",
    WIT: "sound:sambung/zone-wit",
}


def callback_when(
    when: datetime, now: datetime, zone: str | None, language: str
) -> tuple[str, ...]:
    """The media that say: we will call you back tomorrow at 8 a.m. Western Indonesia Time.

    The time is said in the number's zone, or in WIB when the number says nothing about where
    its owner is (a mobile), naming the zone either way; a foreign number's time is said in
    its own zone as "your local time". Rounded up to the minute: never earlier than the call.
    Indonesian says the time on a 24-hour clock ("pukul empat belas lewat tiga puluh menit"),
    as announcements in Indonesia do; English on a 12-hour one ("at two thirty p.m.").
    """
    tz = ZoneInfo(zone or WIB)
    local = when.astimezone(tz)
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    days = (local.date() - now.astimezone(tz).date()).days
    media: list[str] = ["sound:sambung/callback-later"]
    if days <= 0:
        media.append("sound:sambung/callback-today")
    elif days == 1:
        media.append("sound:sambung/callback-tomorrow")
    elif days < 7:
        media += ["sound:sambung/callback-on", _WEEKDAYS[local.weekday()]]
    else:
        media += [
            "sound:sambung/callback-in",
            *say_media("number", str(days), language),
            "sound:sambung/callback-days",
        ]
    media.append("sound:sambung/callback-at")
    hour, minute = local.hour, local.minute
    if language == "id":
        media += say_media("number", str(hour), language)
        if minute:
            media += [
                "sound:sambung/time-past",
                *say_media("number", str(minute), language),
                "sound:sambung/queue-minutes",
            ]
    else:
        media += say_media("number", str(hour % 12 or 12), language)
        if minute:
            if minute < 10:
                media.append("digits:0")  # 8:05 is "eight zero five"
            media += say_media("number", str(minute), language)
        media.append("sound:sambung/time-am" if hour < 12 else "sound:sambung/time-pm")
    media.append(_ZONE_NAMES.get(zone or WIB, "sound:sambung/zone-local"))
    media.append("sound:sambung/callback-bye")
    return tuple(media)


def bridge_for_queue(queue: str) -> str:
    return f"sambung-queue-{queue}"


def bridge_for_call(call_id: str) -> str:
    return f"sambung-call-{call_id}"


class TalkHooks(Protocol):
    """Told when an agent is connected with a caller and when that talk ends (recordings,
    monitoring). Synchronous and quick: the call's task does not wait on them."""

    def talk_started(
        self, call_id: str, agent_id: str, leg_id: str, bridge_id: str, queue: str
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
    ) -> None:
        self.talk_hooks = talk_hooks
        self.acd = acd
        self.tel = telephony
        self.record = record
        self.m = metrics
        self.hub = hub
        self.max_silent = max_silent_seconds
        self.wall = wall

    def knows(self, queue: str) -> bool:
        return queue in self.acd.queues

    async def run(self, info: QueueCallInfo, inbox: CallInbox) -> str:
        """Run the call to its end; returns the end reason (the caller's row is closed here)."""
        call = QueuedCall(self, info, inbox)
        reason = await call.run()
        ended = call.ended
        synthetic = isinstance(ended, CallEnded) and ended.reason is not None
        cause = None if ended is None or synthetic else ended.cause
        text = ended.cause_text if isinstance(ended, CallEnded) else None
        sip = ended.sip_code if isinstance(ended, CallEnded) else None
        at = ended.at if ended is not None else self.wall()
        self.record(CallEndedFact(info.call_id, at, reason, cause, text, sip))
        return reason


class QueuedCall:
    """One caller's time in queues, with agents, until the call ends. Owned by its task."""

    def __init__(self, r: QueueRunner, info: QueueCallInfo, inbox: CallInbox) -> None:
        self.r = r
        self.info = info
        self.inbox = inbox
        self.call_id = info.call_id
        self.entry: Entry | None = None
        self.first_enqueued: tuple[float, datetime] | None = None
        self.phase = "waiting"  # waiting | offering | whisper | connected | ending
        self.ended: CallEnded | CallerHungUp | None = None
        self.end_reason = ""
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.tokens: dict[str, int] = {}
        self.playing: set[str] = set()
        self.prompt_seq = 0
        self.leg: str | None = None
        self.leg_agent: str | None = None
        self.leg_answered_at: float | None = None
        self.leg_timed_out = False
        self.leg_started_wall: datetime | None = None
        self.bridge: str | None = None  # the call's mixing bridge once created
        self.hold_started: float | None = None
        self.hold_total = 0.0
        self.overflowed = False
        self.connected_queue = ""
        self.message: str | None = None  # the recording's name while taking a message
        # Whether (and from when) the caller may be called back: decided once, the first time
        # a callback could be offered.
        self.callback: CallbackScreen | None = None

    @property
    def language(self) -> str:
        if self.entry is not None:
            return self.entry.language
        return self.info.language or "en"

    # ---- main loop ---------------------------------------------------------------------

    async def run(self) -> str:
        try:
            if not await self._join(
                self.info.queue, kind=self.info.kind, pinned_agent=self.info.pinned_agent
            ):
                return self.end_reason or "engine_error"
            while self.phase != "ending" or self.ended is None:
                wait = _HANGUP_CONFIRM_SECONDS if self.phase == "ending" else self.r.max_silent
                item = await self.inbox.next_any(wait)
                if item is None:
                    if self.phase == "ending":
                        break
                    if self.phase != "waiting" or self.entry is None:
                        continue  # a conversation, a ringing agent, a message: not stuck
                    if self.timers:
                        continue  # max wait (or an announcement) is still to come
                    log.warning("acd.silent_call")
                    await self._finish("timeout")
                    continue
                await self._feed(item)
                if self.ended is not None and self.phase == "ending":
                    break
        finally:
            for h in self.timers.values():
                h.cancel()
            await self._cleanup()
        return self.end_reason or "completed"

    async def _feed(self, item: object) -> None:
        match item:
            case CallEnded() | CallerHungUp():
                if self.ended is None or isinstance(item, CallEnded):
                    self.ended = item
                await self._caller_gone()
            case DigitPressed(digit=d):
                await self._digit(d)
            case Offer():
                await self._offer(item)
            case LegRinging(leg_id=lid) if lid == self.leg and self.leg_agent:
                self.r.acd.agents.ringing(self.leg_agent, self.call_id)
            case LegAnswered(leg_id=lid) if lid == self.leg:
                await self._leg_answered()
            case LegEnded(leg_id=lid) if lid == self.leg:
                await self._leg_ended(item)
            case LegEnded():
                pass  # a leg we already gave up on (hung up after a timeout)
            case LegHeld(leg_id=lid, held=held) if lid == self.leg:
                self._held(held)
            case PromptFinished(prompt_id=pid):
                self.playing.discard(pid)
                if pid == self._whisper_id() and self.phase == "whisper":
                    self._cancel_timer("whisper")
                    await self._connect()
            case Tick(name=name, token=token) if self.tokens.get(name) == token:
                self.timers.pop(name, None)
                await self._tick(name)
            case TransferRequest():
                await self._transfer(item)
            case BridgeJoined(channel_id=ch, bridge_id=b):
                log.debug("acd.bridge_joined", channel=ch, bridge=b)
            case CallResynced():
                pass  # legs that vanished meanwhile are reported as LegEnded by the adapter
            case _:
                pass

    # ---- timers ------------------------------------------------------------------------

    def _start_timer(self, name: str, seconds: float) -> None:
        self._cancel_timer(name)
        token = self.tokens.get(name, 0) + 1
        self.tokens[name] = token
        loop = asyncio.get_running_loop()
        self.timers[name] = loop.call_later(seconds, self.inbox.post_local, Tick(name, token))

    def _cancel_timer(self, name: str) -> None:
        h = self.timers.pop(name, None)
        if h is not None:
            h.cancel()
        self.tokens[name] = self.tokens.get(name, 0) + 1

    async def _tick(self, name: str) -> None:
        match name:
            case "announce" if self.phase in ("waiting", "offering"):
                await self._announce()
                self._schedule_announce()
            case "max_wait" if self.phase in ("waiting", "offering"):
                await self._overflow("max_wait")
            case "ring" if self.phase == "offering" and self.leg is not None:
                # Asterisk's dial timeout should have ended the leg already; make sure.
                self.leg_timed_out = True
                with contextlib.suppress(TelephonyError):
                    await self.r.tel.hangup_leg(self.leg, "no_answer")
            case "hold_reminder" if self.hold_started is not None and self.leg_agent:
                held = asyncio.get_running_loop().time() - self.hold_started
                self.r.m.hold_reminders.inc()
                log.info("acd.hold_reminder", agent=self.leg_agent, held=round(held, 1))
                self.r.hub.publish(
                    self.leg_agent, "hold_reminder", call_id=self.call_id, held_seconds=held
                )
                self._start_timer("hold_reminder", self.r.acd.settings.hold_reminder_seconds)
            case "callback_offer" if self.phase == "waiting" and self.overflowed:
                await self._polite_hangup("overflow_hangup")
            case "whisper" if self.phase == "whisper" and self.entry is not None:
                await self._connect()
            case "connect_failed" if self.phase in ("offering", "whisper"):
                await self._finish("engine_error")
            case "message_done" if self.phase == "message":
                await self._message_done()
            case _:
                pass

    def _schedule_announce(self) -> None:
        q = self.r.acd.queue(self.entry.queue) if self.entry else None
        if q is not None and q.announce_every_seconds > 0:
            self._start_timer("announce", q.announce_every_seconds)

    # ---- joining a queue -------------------------------------------------------------

    async def _join(
        self, queue: str, *, kind: str, pinned_agent: str | None = None, greet: bool = True
    ) -> bool:
        acd = self.r.acd
        q = acd.queue(queue)
        kept = self.first_enqueued
        entry = acd.new_entry(
            self.call_id,
            queue,
            kind=kind,
            inbox=self.inbox,
            caller_number=self.info.caller_number,
            caller_name=self.info.caller_name,
            did=self.info.did,
            language=self.info.language,
            attributes=self.info.attributes,
            enqueued_at=kept[0] if kept else None,
            enqueued_wall=kept[1] if kept else None,
            pinned_agent=pinned_agent,
        )
        try:
            if not self.info.answered:
                await self.r.tel.answer(self.call_id)
                self.info.answered = True
                self.r.record(CallAnsweredFact(self.call_id, self.r.wall()))
            try:
                await self.r.tel.join_bridge(bridge_for_queue(queue), [self.call_id])
            except CallGone:
                raise
            except TelephonyError:
                # The bridge is missing (Asterisk restarted before the ACD's sync ran).
                await self.r.tel.ensure_holding_bridge(bridge_for_queue(queue), q.moh_class)
                await self.r.tel.join_bridge(bridge_for_queue(queue), [self.call_id])
        except CallGone:
            self.end_reason = "caller_abandoned_queue"
            return False
        except TelephonyError as err:
            log.warning("acd.join_failed", queue=queue, error=str(err))
            self.end_reason = "engine_error"
            with contextlib.suppress(TelephonyError):
                await self.r.tel.hangup(self.call_id)
            return False
        if acd.is_full(queue):
            log.info("acd.queue_full", queue=queue)
            self.entry = entry  # for the overflow's language and queue
            self.r.record(self._entered_fact(entry))
            await self._overflow("full", counted=False)
            return True
        self.entry = entry
        if self.first_enqueued is None:
            self.first_enqueued = (entry.enqueued_at, entry.enqueued_wall)
        self.r.record(self._entered_fact(entry))
        try:
            position = acd.enqueue(entry)
        except QueueFull:
            await self._overflow("full", counted=False)
            return True
        self.phase = "waiting"
        log.info("acd.waiting", queue=queue, position=position)
        if greet and q.greeting:
            await self._play(tuple(q.greeting), "greeting")
        self._schedule_announce()
        self._start_timer("max_wait", q.max_wait_seconds)
        # Asks PostgreSQL (briefly) while the greeting plays; the offer is queued after it.
        if q.callback_key and greet and await self._may_call_back():
            await self._play(
                ("sound:sambung/queue-callback-offer", *self._say_key(q.callback_key)),
                "callback-offer",
            )
        return True

    def _entered_fact(self, entry: Entry) -> QueueEnteredFact:
        first = self.first_enqueued[1] if self.first_enqueued else entry.enqueued_wall
        return QueueEnteredFact(
            entry.entry_id,
            entry.call_id,
            entry.queue,
            entry.kind,
            entry.priority,
            first,
            self.r.wall(),
        )

    def _left(self, outcome: str, detail: str | None = None) -> None:
        entry = self.entry
        if entry is None:
            return
        waited = self.r.acd.leave(entry, outcome)
        short = outcome == "abandoned" and waited < self.r.acd.settings.short_abandon_seconds
        self.r.record(
            QueueLeftFact(
                entry.entry_id, self.r.wall(), outcome, waited, short, entry.agent_id, detail
            )
        )

    # ---- prompts -----------------------------------------------------------------------

    def _say_key(self, key: str) -> tuple[str, ...]:
        if key.isdigit():
            return say_media("digits", key, self.language)
        return ()

    async def _play(self, media: tuple[str, ...], label: str) -> str | None:
        if not media:
            return None
        self.prompt_seq += 1
        pid = f"{self.call_id}-q{self.prompt_seq}-{label}"
        try:
            await self.r.tel.play(self.call_id, pid, media, language=self.language)
        except CallGone:
            return None
        except TelephonyError as err:
            log.warning("acd.prompt_failed", label=label, error=str(err))
            return None
        self.playing.add(pid)
        return pid

    async def _stop_prompts(self) -> None:
        for pid in list(self.playing):
            with contextlib.suppress(TelephonyError):
                await self.r.tel.stop_prompt(pid)
        self.playing.clear()

    async def _announce(self) -> None:
        if self.entry is None or self.playing:
            return  # never talk over the greeting or the last announcement
        q = self.r.acd.queue(self.entry.queue)
        position = self.r.acd.position(self.entry.entry_id)
        if position <= 0:
            return
        media: list[str] = []
        if q.announce_position:
            if position == 1:
                media.append("sound:sambung/queue-next")
            else:
                media += [
                    "sound:sambung/queue-position",
                    *say_media("number", str(position), self.language),
                ]
        if q.announce_wait:
            wait = self.r.acd.expected_wait(self.entry.queue, position)
            if wait is not None and wait > 0:
                minutes = max(1, math.ceil(wait / 60))
                media += [
                    "sound:sambung/queue-wait",
                    *say_media("number", str(minutes), self.language),
                    "sound:sambung/queue-minutes",
                ]
        if media:
            log.info("acd.announce", position=position)
            await self._play(tuple(media), "announce")

    # ---- caller input and departure -------------------------------------------------------

    async def _digit(self, digit: str) -> None:
        if self.phase == "message" and digit == "#":
            self._cancel_timer("message_done")
            await self._message_done()
            return
        if self.entry is None or self.phase not in ("waiting", "offering"):
            return
        q = self.r.acd.queue(self.entry.queue)
        keys = {q.callback_key} - {""}
        if self.overflowed and q.overflow.action == "callback":
            keys.add("1")  # the overflow's default offer says "press 1"
        if digit in keys and await self._may_call_back():
            await self._to_callback()

    async def _may_call_back(self) -> bool:
        """May this caller be offered a callback? Asked once per call (PostgreSQL is asked)."""
        if self.callback is None:
            screen = await self.r.acd.screen_callback(self.info.caller_number, self.r.wall())
            self.callback = screen
            if not screen.ok:
                assert screen.reason is not None
                self.r.acd.callback_refused(screen.reason)
                # The reason only: the caller's number is personal data.
                log.info("acd.callback_not_offered", reason=screen.reason)
        return self.callback.ok

    async def _to_callback(self) -> None:
        entry = self.entry
        screen = self.callback
        assert entry is not None
        assert screen is not None
        acd = self.r.acd
        now = self.r.wall()
        # Since the offer the window may have closed: the callback is made when it opens.
        when = next_dial_at(screen.verdict, acd.callback_rules, now, screen.history)
        if when is None:
            log.info("acd.callback_not_offered", reason="no_window")
            return  # nothing to promise: the caller waits on as before
        await self._withdraw_offer("caller_left")
        cb_id = f"cb-{entry.entry_id}"
        later = when > now
        acd.to_callback(entry, cb_id, screen, not_before=when if later else None)
        self.entry = None  # the service owns it now; it keeps the caller's place
        log.info(
            "acd.callback_requested",
            entry=entry.entry_id,
            queue=entry.queue,
            not_before=when.isoformat() if later else None,
        )
        self._cancel_timer("announce")
        self._cancel_timer("max_wait")
        await self._stop_prompts()
        if later:
            bye = callback_when(when, now, screen.verdict.zone, self.language)
        else:
            bye = ("sound:sambung/queue-callback-ok",)
        await self._polite_hangup("callback_requested", bye)

    async def _caller_gone(self) -> None:
        if self.phase in ("waiting", "offering", "whisper"):
            await self._withdraw_offer("caller_left")
            self._left("abandoned")
            self.entry = None
            self.end_reason = self.end_reason or "caller_abandoned_queue"
        elif self.phase == "connected":
            await self._end_talk("caller")
            self.end_reason = self.end_reason or "caller_hung_up"
        elif self.phase == "message":
            self.end_reason = self.end_reason or "message_left"
        self.phase = "ending"

    async def _finish(self, reason: str) -> None:
        if self.phase in ("waiting", "offering", "whisper"):
            await self._withdraw_offer("caller_left")
            self._left("hung_up", reason)
            self.entry = None
        elif self.phase == "connected":
            await self._end_talk("engine")
        self.end_reason = self.end_reason or reason
        self.phase = "ending"
        with contextlib.suppress(TelephonyError):
            await self.r.tel.hangup(self.call_id)

    async def _say_and_wait(self, media: tuple[str, ...], label: str) -> None:
        """Play ``media`` and wait until it has finished or the caller has gone."""
        pid = await self._play(media, label)
        while pid is not None and self.ended is None:
            item = await self.inbox.next_any(60)
            if item is None:
                break
            if isinstance(item, CallEnded | CallerHungUp):
                self.ended = item
            elif isinstance(item, PromptFinished) and item.prompt_id == pid:
                break
            elif isinstance(item, LegEnded | LegAnswered) and item.leg_id == self.leg:
                await self._feed(item)

    async def _polite_hangup(self, reason: str, media: tuple[str, ...] = ()) -> None:
        """Say ``media`` then hang up: the hang-up waits for the prompt to finish."""
        self.end_reason = reason
        self.phase = "ending"
        if media:
            await self._say_and_wait(media, "bye")
        if self.ended is None:
            with contextlib.suppress(TelephonyError):
                await self.r.tel.hangup(self.call_id)

    # ---- overflow ----------------------------------------------------------------------

    async def _overflow(self, why: str, counted: bool = True) -> None:
        entry = self.entry
        assert entry is not None
        q = self.r.acd.queue(entry.queue)
        action = q.overflow.action
        if (self.overflowed and action in ("relax", "callback")) or (
            why == "full" and action == "relax"
        ):
            action = "hangup"  # the second expiry (the relaxed wait is over too), or no room
        prompts = tuple(q.overflow.prompts)
        if action == "callback" and not await self._may_call_back():
            # A caller who may not be called back hears that the agents are busy and to call
            # again, and is let go. Not a voice message instead: a message asks to be called
            # back, which is what this number may not be (spoofed, premium, do-not-call...).
            # The queue's own prompts offer the callback, so the default prompt is said.
            action, prompts = "hangup", ()
        log.info("acd.overflow", queue=entry.queue, why=why, action=action)
        if action == "relax":
            self.overflowed = True
            entry.needs, entry.relax = (), ()
            self.r.acd.kick()
            self._start_timer("max_wait", q.max_wait_seconds)
            return
        await self._withdraw_offer("caller_left")
        detail = f"{why}:{action}"
        if action == "message":
            self.message = f"sambung-message-{self.call_id}"
            detail += f":{self.message}"
        if counted:
            self._left("overflowed", detail)
        else:
            self.r.record(
                QueueLeftFact(entry.entry_id, self.r.wall(), "overflowed", 0.0, False, None, detail)
            )
            self.r.m.queue_calls.labels(queue=entry.queue, outcome="overflowed").inc()
        self._cancel_timer("announce")
        self._cancel_timer("max_wait")
        await self._stop_prompts()
        if action == "queue":
            assert q.overflow.target is not None
            self.entry = None
            self.overflowed = False
            if prompts:
                await self._play(prompts, "overflow")
            await self._join(q.overflow.target, kind="overflow", greet=False)
        elif action == "callback":
            # Keep the place: the entry waits on as it is, and the caller may take the offer.
            self.overflowed = True
            self.entry = self.r.acd.new_entry(
                self.call_id,
                entry.queue,
                inbox=self.inbox,
                caller_number=self.info.caller_number,
                caller_name=self.info.caller_name,
                did=self.info.did,
                language=self.info.language,
                attributes=self.info.attributes,
                enqueued_at=entry.enqueued_at,
                enqueued_wall=entry.enqueued_wall,
            )
            self.r.record(self._entered_fact(self.entry))
            self.r.acd.entries[self.entry.entry_id] = self.entry
            self.r.acd.kick()
            await self._play(
                prompts or ("sound:sambung/queue-callback-offer", *self._say_key("1")),
                "callback-offer",
            )
            self._start_timer("callback_offer", CALLBACK_OFFER_SECONDS)
        elif action == "message":
            await self._take_message(prompts)
        else:
            self.entry = None
            await self._polite_hangup("overflow_hangup", prompts or ("sound:sambung/queue-full",))

    async def _take_message(self, prompts: tuple[str, ...]) -> None:
        self.entry = None
        self.phase = "message"
        tel = self.r.tel
        name = self.message or f"sambung-message-{self.call_id}"
        try:
            # A channel in a bridge cannot be recorded (ari-notes pitfall 10): give the caller
            # a bridge of their own, where nothing else plays.
            await tel.create_mixing_bridge(bridge_for_call(self.call_id))
            self.bridge = bridge_for_call(self.call_id)
            await tel.join_bridge(self.bridge, [self.call_id])
            await tel.destroy_bridge(self.bridge)
            self.bridge = None
        except TelephonyError as err:
            log.warning("acd.message_bridge_failed", error=str(err))
        await self._say_and_wait(prompts or ("sound:sambung/queue-message",), "message")
        if self.ended is not None:
            self.end_reason = "message_abandoned"
            self.phase = "ending"
            return
        try:
            await tel.record_message(self.call_id, name, MESSAGE_MAX_SECONDS)
        except TelephonyError as err:
            log.warning("acd.message_record_failed", error=str(err))
            await self._polite_hangup("overflow_hangup", ("sound:sambung/queue-full",))
            return
        log.info("acd.message_recording", recording=name)
        self._start_timer("message_done", MESSAGE_MAX_SECONDS + 2)

    async def _message_done(self) -> None:
        await self._polite_hangup("message_left", ("sound:sambung/queue-message-thanks",))

    # ---- offering to an agent ---------------------------------------------------------------

    async def _offer(self, offer: Offer) -> None:
        entry = self.entry
        acd = self.r.acd
        if entry is None or entry.entry_id != offer.entry_id or self.phase != "waiting":
            # The call moved on meanwhile (callback, transfer, gone): give the agent back.
            with contextlib.suppress(AgentStateError):
                acd.agents.offer_failed(offer.agent_id, self.call_id, "busy")
            return
        self.phase = "offering"
        self.leg = offer.leg_id
        self.leg_agent = offer.agent_id
        self.leg_answered_at = None
        self.leg_timed_out = False
        q = acd.queue(entry.queue)
        now = self.r.wall()
        self.leg_started_wall = now
        self.r.record(
            LegStartedFact(
                offer.leg_id,
                self.call_id,
                entry.entry_id,
                "agent",
                offer.agent_id,
                offer.endpoint,
                now,
            )
        )
        self.r.hub.publish(offer.agent_id, "offered", call=entry.context())
        caller = self.info.caller_number
        caller_id = f'"{self.info.caller_name or caller}" <{caller}>' if caller else None
        variables = {"SAMBUNG_CALL_ID": self.call_id, "SAMBUNG_QUEUE": entry.queue}
        if q.auto_answer:
            # Desk phones answer by themselves on either header (Polycom/Yealink read
            # Alert-Info, others Call-Info answer-after); the agent hears the call at once.
            variables["PJSIP_HEADER(add,Call-Info)"] = "<sip:sambung>;answer-after=0"
            variables["PJSIP_HEADER(add,Alert-Info)"] = "<http://sambung>;info=alert-autoanswer"
        try:
            await self.r.tel.dial(
                self.call_id,
                offer.leg_id,
                f"PJSIP/{offer.endpoint}",
                caller_id=caller_id,
                timeout=q.ring_timeout_seconds,
                originator=self.call_id,
                variables=variables,
            )
        except (EndpointUnavailable, TelephonyError) as err:
            log.info("acd.offer_failed_at_dial", agent=offer.agent_id, error=str(err))
            outcome = "unavailable" if isinstance(err, EndpointUnavailable) else "busy"
            self._offer_failed(outcome, None, None)
            return
        self._start_timer("ring", q.ring_timeout_seconds + RING_BACKSTOP_SECONDS)

    def _offer_failed(self, outcome: str, cause: int | None, sip: int | None) -> None:
        agent_id, leg = self.leg_agent, self.leg
        assert agent_id is not None
        assert leg is not None
        self._cancel_timer("ring")
        self.r.record(LegEndedFact(leg, self.r.wall(), outcome, cause, sip, None, None))
        self.r.m.agent_offers.labels(result=outcome).inc()
        if outcome == "rona":
            self.r.m.agent_rona.inc()
        self.r.acd.agents.offer_failed(agent_id, self.call_id, outcome)
        self.r.hub.publish(agent_id, "offer_ended", call_id=self.call_id, result=outcome)
        self.leg = self.leg_agent = None
        log.info("acd.offer_failed", agent=agent_id, outcome=outcome, cause=cause)
        if self.entry is not None and self.phase in ("offering", "whisper"):
            self.phase = "waiting"
            self.r.acd.back_to_queue(self.entry, agent_id, outcome)

    async def _withdraw_offer(self, outcome: str) -> None:
        """Stop ringing (or whispering to) the agent: the caller left or moved on."""
        if self.leg is None or self.leg_agent is None or self.phase not in ("offering", "whisper"):
            return
        leg, agent_id = self.leg, self.leg_agent
        with contextlib.suppress(TelephonyError):
            await self.r.tel.hangup_leg(leg, "normal")
        self._cancel_timer("ring")
        self._cancel_timer("whisper")
        self._cancel_timer("connect_failed")
        self.phase = "waiting"
        self.r.record(LegEndedFact(leg, self.r.wall(), outcome, None, None, None, None))
        self.r.m.agent_offers.labels(result=outcome).inc()
        self.r.acd.agents.call_ended(agent_id, self.call_id, 0.0)
        self.r.hub.publish(agent_id, "offer_ended", call_id=self.call_id, result=outcome)
        self.leg = self.leg_agent = None

    def _whisper_id(self) -> str:
        return f"{self.call_id}-whisper-{self.leg}"

    async def _leg_answered(self) -> None:
        if self.phase != "offering" or self.entry is None:
            return
        self._cancel_timer("ring")
        self.leg_answered_at = asyncio.get_running_loop().time()
        assert self.leg is not None
        assert self.leg_agent is not None
        self.r.record(LegAnsweredFact(self.leg, self.r.wall()))
        q = self.r.acd.queue(self.entry.queue)
        if q.whisper:
            self.phase = "whisper"
            # If the whisper's end never reaches us, the caller must not wait on it.
            self._start_timer("whisper", WHISPER_BACKSTOP_SECONDS)
            try:
                await self.r.tel.play_on(
                    self.leg, self._whisper_id(), tuple(q.whisper), language=q.language
                )
                return
            except TelephonyError as err:
                log.warning("acd.whisper_failed", error=str(err))
        await self._connect()

    async def _connect(self) -> None:
        entry = self.entry
        assert entry is not None
        assert self.leg is not None
        assert self.leg_agent is not None
        tel = self.r.tel
        bridge = bridge_for_call(self.call_id)
        self._cancel_timer("whisper")
        try:
            if self.bridge is None:
                await tel.create_mixing_bridge(bridge)
                self.bridge = bridge
            await self._stop_prompts()
            await tel.join_bridge(bridge, [self.call_id, self.leg])
        except TelephonyError as err:
            # Usually one side has just hung up (addChannel answers 400/422, not 404, for a
            # channel that is gone): its end event is on its way and decides what follows.
            # If none comes, it was a real failure.
            log.warning("acd.bridge_failed", error=str(err))
            self._start_timer("connect_failed", 3.0)
            return
        self.phase = "connected"
        self._cancel_timer("announce")
        self._cancel_timer("max_wait")
        self.connected_queue = entry.queue
        self.r.acd.agents.answered(self.leg_agent, self.call_id)
        if self.r.talk_hooks is not None:
            self.r.talk_hooks.talk_started(
                self.call_id, self.leg_agent, self.leg, bridge, entry.queue
            )
        self._left("answered")
        self.entry = None
        self.r.m.agent_offers.labels(result="answered").inc()
        self.r.hub.publish(self.leg_agent, "connected", call=entry.context())
        if self.info.on_connected is not None:
            self.info.on_connected(self.leg_agent)
        log.info("acd.connected", agent=self.leg_agent, queue=entry.queue)

    async def _leg_ended(self, ev: LegEnded) -> None:
        if self.phase == "offering" or (self.phase == "whisper" and not ev.answered):
            self._offer_failed(offer_outcome(ev.cause, self.leg_timed_out), ev.cause, ev.sip_code)
        elif self.phase == "whisper":
            # The agent answered and hung up during the whisper: the caller waits on.
            agent = self.leg_agent
            self._cancel_timer("whisper")
            self._talk_over(ev.cause, ev.sip_code, "agent_left_early")
            if self.entry is not None:
                self.phase = "waiting"
                if agent is not None:
                    self.r.acd.back_to_queue(self.entry, agent, "busy")
        elif self.phase == "connected":
            self._talk_over(ev.cause, ev.sip_code, "answered")
            self.end_reason = "agent_hung_up"
            self.phase = "ending"
            with contextlib.suppress(TelephonyError):
                await self.r.tel.hangup(self.call_id)

    def _held(self, held: bool) -> None:
        agent = self.leg_agent
        if agent is None or self.phase != "connected":
            return
        now = asyncio.get_running_loop().time()
        self.r.acd.agents.held(agent, self.call_id, held)
        if held and self.hold_started is None:
            self.hold_started = now
            self._start_timer("hold_reminder", self.r.acd.settings.hold_reminder_seconds)
        elif not held and self.hold_started is not None:
            span = now - self.hold_started
            self.hold_total += span
            self.hold_started = None
            self._cancel_timer("hold_reminder")
            self.r.m.hold_time.labels(queue=self.connected_queue).observe(span)
        self.r.hub.publish(agent, "hold" if held else "unhold", call_id=self.call_id)

    async def _end_talk(self, by: str) -> None:
        """The caller (or the engine) ends a connected call: release the agent's leg."""
        leg = self.leg
        if leg is not None:
            with contextlib.suppress(TelephonyError):
                await self.r.tel.hangup_leg(leg, "normal")
        self._talk_over(None, None, "answered")

    def _talk_over(self, cause: int | None, sip: int | None, outcome: str) -> None:
        agent, leg = self.leg_agent, self.leg
        if agent is None or leg is None:
            return
        if self.r.talk_hooks is not None:
            self.r.talk_hooks.talk_ended(self.call_id)
        loop_now = asyncio.get_running_loop().time()
        if self.hold_started is not None:
            span = loop_now - self.hold_started
            self.hold_total += span
            self.r.m.hold_time.labels(queue=self.connected_queue).observe(span)
            self.hold_started = None
        self._cancel_timer("hold_reminder")
        talk = loop_now - self.leg_answered_at if self.leg_answered_at is not None else 0.0
        self.r.record(
            LegEndedFact(
                leg, self.r.wall(), outcome, cause, sip, round(talk, 3), round(self.hold_total, 3)
            )
        )
        queue = self.connected_queue or (self.entry.queue if self.entry else self.info.queue)
        wrap = self.r.acd.queue(queue).wrap_up_seconds
        if outcome == "answered":
            self.r.m.talk_time.labels(queue=queue).observe(talk)
            # Handle time includes the wrap-up the agent will now spend.
            self.r.acd.handle_done(queue, talk + wrap)
            self.r.m.wrap_up_time.labels(queue=queue).observe(wrap)
        self.r.acd.agents.call_ended(agent, self.call_id, wrap)
        self.r.hub.publish(
            agent,
            "call_ended",
            call_id=self.call_id,
            talk_seconds=round(talk, 1),
            wrap_up_seconds=wrap,
        )
        self.leg = self.leg_agent = None
        self.hold_total = 0.0

    # ---- transfers ---------------------------------------------------------------------

    async def _transfer(self, req: TransferRequest) -> None:
        acd = self.r.acd
        target = req.queue
        if req.agent_id is not None:
            agent = acd.agents.get(req.agent_id)
            target = target or next(iter(sorted(agent.profile.queues)), None)
        if target is None or target not in acd.queues:
            log.warning("acd.transfer_no_queue", agent=req.agent_id)
            return
        log.info("acd.transfer", to_queue=target, to_agent=req.agent_id, phase=self.phase)
        if self.phase == "connected":
            await self._end_talk("transfer")
        elif self.phase in ("waiting", "offering", "whisper"):
            await self._withdraw_offer("caller_left")
            self._left("transferred", f"to {target}")
            self.entry = None
        else:
            return
        self._cancel_timer("announce")
        self._cancel_timer("max_wait")
        await self._join(target, kind="transfer", pinned_agent=req.agent_id, greet=False)

    # ---- the end -----------------------------------------------------------------------

    async def _cleanup(self) -> None:
        if self.entry is not None:
            await self._withdraw_offer("caller_left")
            self._left("lost" if self.ended is None else "abandoned")
            self.entry = None
        if self.leg is not None:
            # The engine is stopping (or the task failed) with an agent on the line: release
            # the agent's phone too, or its channel would outlive the call as an orphan.
            with contextlib.suppress(TelephonyError):
                await self.r.tel.hangup_leg(self.leg, "normal")
            if self.phase in ("offering", "whisper"):
                await self._withdraw_offer("caller_left")
            else:
                self._talk_over(None, None, "answered")
        if self.ended is None and self.phase != "ending":
            with contextlib.suppress(TelephonyError):
                await self.r.tel.hangup(self.call_id)
        if self.bridge is not None:
            with contextlib.suppress(TelephonyError):
                await self.r.tel.destroy_bridge(self.bridge)
