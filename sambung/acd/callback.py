"""Calling back a caller who asked for it while waiting.

The callback kept the caller's place in the queue; routing matched it to an agent like any
other waiting call. This task then rings the agent first, tells them it is a callback, and only
then dials the customer through the callback trunk: a customer called back never waits for an
agent. The agent hears ringing meanwhile. If the customer does not answer (or is busy) the agent
is told, goes to wrap-up, and the callback waits again (``CALLBACK_RETRY_SECONDS`` later, up to
``CALLBACK_ATTEMPTS`` attempts in all, its place kept); after the last attempt it is closed as
``callback_failed``. Each attempt is a row in ``calls`` with direction ``callback``.

Before each attempt, before any phone rings, the callback rules are checked again with what
PostgreSQL knows now: the calling window may have closed while the callback waited, the number
may have been put on the do-not-call list, the day's callbacks to it may be used up. Then
nobody is rung: the callback waits for the first moment the rules allow (its place kept), or is
closed as ``callback_refused`` when no such moment comes. The customer is dialled at the E.164
number the rules checked, never at the caller id as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from sambung.acd.call import RING_BACKSTOP_SECONDS, bridge_for_call, offer_outcome
from sambung.acd.events import AgentConnected, AgentOffered, CallEnded, OfferEnded
from sambung.acd.facts import LegAnsweredFact, LegEndedFact, LegStartedFact, QueueLeftFact
from sambung.acd.hub import AgentHub
from sambung.acd.model import QueueConfig
from sambung.acd.service import CALLBACK_RETRY_SECONDS, AcdService, Entry, Offer
from sambung.asterisk import talk_guard
from sambung.engine.calls import CallInbox
from sambung.engine.errors import EndpointUnavailable, TelephonyError
from sambung.engine.events import LegAnswered, LegEnded, PromptFinished
from sambung.engine.facts import CallEndedFact, CallStartedFact, Fact
from sambung.engine.metrics import Metrics
from sambung.engine.ports import QueueTelephony

log = structlog.get_logger(__name__)

CUSTOMER_RING_SECONDS = 30
# The reason an attempt whose talk a graceful stop left to the next engine returns.
HANDED_OVER = "handed_over"


class CallbackRunner:
    def __init__(
        self,
        acd: AcdService,
        telephony: QueueTelephony,
        record: Callable[[Fact], None],
        metrics: Metrics,
        hub: AgentHub,
        engine_instance: str,
        asterisk_id: Callable[[], str],
        trunk: str,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        handing_over: Callable[[], bool] = lambda: False,
    ) -> None:
        # The engine is stopping and leaves talks to the next one (QueueRunner.handing_over).
        self.handing_over = handing_over
        self.acd = acd
        self.tel = telephony
        self.record = record
        self.m = metrics
        self.hub = hub
        self._instance = engine_instance
        self._asterisk_id = asterisk_id
        self.trunk = trunk
        self.wall = wall

    async def run(self, attempt_id: str, entry: Entry, offer: Offer, inbox: CallInbox) -> None:
        number = await self._may_dial(entry)
        if number is None:
            return
        now = self.wall()
        # This attempt counts against the number's caps from now on, whenever PostgreSQL
        # has its row.
        entry.callback_history = (*entry.callback_history, now)
        self.record(
            CallStartedFact(
                attempt_id,
                "callback",
                "",
                entry.did,
                number,
                entry.caller_name,
                None,
                self._asterisk_id(),
                self._instance,
                now,
            )
        )
        reason = "callback_failed"
        try:
            reason = await self._attempt(attempt_id, entry, offer, inbox, number)
        finally:
            if reason != HANDED_OVER:
                self.record(CallEndedFact(attempt_id, datetime.now(UTC), reason, None, None, None))

    async def resume_talk(
        self,
        cid: str,
        agent_id: str,
        agent_leg: str,
        customer_leg: str,
        talk_since: datetime,
        queue: str | None,
        inbox: CallInbox,
    ) -> None:
        """Carry on a callback's talk an earlier engine left (the ACD took its legs over and
        put the agent back on the call): until one side hangs up, then as ``_attempt`` ends
        one, the talk time counted from ``talk_since`` (the agent's answer)."""
        back = (self.wall() - talk_since).total_seconds()
        agent_answered = asyncio.get_running_loop().time() - max(0.0, back)
        log.info("acd.callback_talk_taken_over", call_id=cid, agent=agent_id)
        ended = await self._until_one_leaves(inbox, agent_leg, customer_leg)
        if ended is None:
            log.info("acd.callback_talk_handed_over", call_id=cid, agent=agent_id)
            return
        other = customer_leg if ended == agent_leg else agent_leg
        with contextlib.suppress(TelephonyError):
            await self.tel.hangup_leg(other, "normal")
        self.record(
            LegEndedFact(customer_leg, datetime.now(UTC), "answered", None, None, None, None)
        )
        q = self.acd.queues.get(queue or "")
        await self._talk_over(cid, agent_id, cid, agent_leg, customer_leg, q, agent_answered)
        self.record(CallEndedFact(cid, datetime.now(UTC), "callback_completed", None, None, None))

    async def _may_dial(self, entry: Entry) -> str | None:
        """The E.164 number to dial when the rules allow it now; else None, with the entry
        waiting for the moment they do (or closed) and the agent reserved for it released."""
        acd = self.acd
        now = self.wall()
        screen = await acd.screen_callback(
            entry.caller_number, now, dialled=entry.callback_history, offering=False
        )
        if screen.ok and screen.next_at == now and screen.verdict.e164 is not None:
            entry.callback_verdict = screen.verdict
            entry.callback_history = screen.history
            return screen.verdict.e164
        if screen.reason == "unchecked":
            # PostgreSQL did not answer: not checked, not dialled; ask again a little later.
            acd.hold_callback(entry, now + timedelta(seconds=CALLBACK_RETRY_SECONDS))
        elif screen.next_at is not None:
            entry.callback_verdict = screen.verdict
            entry.callback_history = screen.history
            acd.hold_callback(entry, screen.next_at)
        else:
            reason = screen.reason or "no_window"
            acd.callback_refused(reason)
            log.info("acd.callback_refused", entry=entry.entry_id, reason=reason)
            waited = acd.leave(entry, "callback_refused")
            self.record(
                QueueLeftFact(entry.entry_id, now, "callback_refused", waited, False, None, reason)
            )
        return None

    async def _attempt(
        self, cid: str, entry: Entry, offer: Offer, inbox: CallInbox, number: str
    ) -> str:
        acd, tel = self.acd, self.tel
        q = acd.queue(entry.queue)
        # Routing reserved the agent under the entry's id; the attempt has its own call row.
        reserved_as = entry.call_id
        agent_leg = offer.leg_id
        customer_leg = f"{cid}-customer"
        self.record(
            LegStartedFact(
                agent_leg,
                cid,
                entry.entry_id,
                "agent",
                offer.agent_id,
                offer.endpoint,
                datetime.now(UTC),
            )
        )
        self.hub.publish(AgentOffered(offer.agent_id, entry.context()))
        try:
            await tel.dial(
                cid,
                agent_leg,
                f"PJSIP/{offer.endpoint}",
                caller_id=f'"Callback" <{entry.caller_number}>',
                timeout=q.ring_timeout_seconds,
                # Each leg names the other for Asterisk's talk guard (asterisk/talk_guard.py).
                variables=talk_guard.leg_variables(customer_leg),
            )
        except (EndpointUnavailable, TelephonyError) as err:
            outcome = "unavailable" if isinstance(err, EndpointUnavailable) else "busy"
            self._agent_failed(cid, entry, offer, outcome, None)
            return "callback_agent_" + outcome
        ev = await self._leg_result(
            inbox, agent_leg, q.ring_timeout_seconds + RING_BACKSTOP_SECONDS
        )
        if not isinstance(ev, LegAnswered):
            if ev is None:
                with contextlib.suppress(TelephonyError):
                    await tel.hangup_leg(agent_leg, "no_answer")
            outcome = offer_outcome(ev.cause if ev else 19, ev is None)
            self._agent_failed(cid, entry, offer, outcome, ev)
            return "callback_agent_" + outcome
        loop = asyncio.get_running_loop()
        agent_answered = loop.time()
        self.record(LegAnsweredFact(agent_leg, datetime.now(UTC)))
        acd.agents.answered(offer.agent_id, reserved_as)
        self.m.agent_offers.labels(result="answered").inc()
        self.hub.publish(AgentConnected(offer.agent_id, entry.context()))
        bridge = bridge_for_call(cid)
        # The trunk takes E.164 digits without the +, as the dialer's campaigns dial.
        dial = f"{number.removeprefix('+')}@{self.trunk}"
        result = "callback_failed"
        handed_over = False
        try:
            await tel.create_mixing_bridge(bridge)
            await tel.join_bridge(bridge, [agent_leg])
            await tel.play_on(
                agent_leg, f"{cid}-whisper", ("sound:sambung/callback-whisper",), q.language
            )
            self.record(
                LegStartedFact(
                    customer_leg,
                    cid,
                    entry.entry_id,
                    "customer",
                    None,
                    dial,
                    datetime.now(UTC),
                )
            )
            await tel.dial(
                cid,
                customer_leg,
                f"PJSIP/{dial}",
                caller_id=entry.did or None,
                timeout=CUSTOMER_RING_SECONDS,
                variables=talk_guard.leg_variables(agent_leg),
            )
            cust = await self._leg_result(inbox, customer_leg, CUSTOMER_RING_SECONDS + 5, agent_leg)
            if isinstance(cust, LegAnswered):
                self.record(LegAnsweredFact(customer_leg, datetime.now(UTC)))
                await tel.join_bridge(bridge, [agent_leg, customer_leg])
                self._close_entry(entry, offer, "callback_connected", "agent rung first")
                log.info("acd.callback_connected", entry=entry.entry_id, agent=offer.agent_id)
                ended = await self._until_one_leaves(inbox, agent_leg, customer_leg)
                if ended is None:
                    # A graceful stop: the talk goes on in Asterisk for the next engine, which
                    # finds it from the bridge and the legs alone. Nothing is closed here.
                    log.info("acd.callback_talk_handed_over", call_id=cid, agent=offer.agent_id)
                    handed_over = True
                    return HANDED_OVER
                other = customer_leg if ended == agent_leg else agent_leg
                with contextlib.suppress(TelephonyError):
                    await tel.hangup_leg(other, "normal")
                result = "callback_completed"
                self.record(
                    LegEndedFact(
                        customer_leg, datetime.now(UTC), "answered", None, None, None, None
                    )
                )
            else:
                cause = cust.cause if isinstance(cust, LegEnded) else 19
                if cust is None:
                    with contextlib.suppress(TelephonyError):
                        await tel.hangup_leg(customer_leg, "no_answer")
                self.record(
                    LegEndedFact(
                        customer_leg,
                        datetime.now(UTC),
                        "no_answer" if cause in (18, 19) else "failed",
                        cause,
                        None,
                        None,
                        None,
                    )
                )
                pid = f"{cid}-noanswer"
                await tel.play_on(agent_leg, pid, ("sound:sambung/callback-no-answer",), q.language)
                await self._leg_result(inbox, None, 8, prompt=pid)
                with contextlib.suppress(TelephonyError):
                    await tel.hangup_leg(agent_leg, "normal")
                if not acd.retry_callback_later(entry):
                    self._close_entry(entry, offer, "callback_failed", f"cause {cause}")
                result = "callback_no_answer"
        except TelephonyError as err:
            log.warning("acd.callback_failed", error=str(err))
            with contextlib.suppress(TelephonyError):
                await tel.hangup_leg(agent_leg, "normal")
            if not acd.retry_callback_later(entry):
                self._close_entry(entry, offer, "callback_failed", str(err))
        finally:
            # Whatever happened (the engine stopping included), no leg outlives the attempt,
            # unless the talk was handed over to the next engine.
            if not handed_over:
                await self._talk_over(
                    cid, offer.agent_id, reserved_as, agent_leg, customer_leg, q, agent_answered
                )
        return result

    async def _talk_over(
        self,
        cid: str,
        agent_id: str,
        reserved_as: str,
        agent_leg: str,
        customer_leg: str,
        q: QueueConfig | None,
        agent_answered: float,
    ) -> None:
        """What the end of an attempt with the agent on owes: both legs hung up, the agent's
        leg closed with its talk time, the agent released to wrap-up, the bridge destroyed."""
        tel = self.tel
        for leg in (customer_leg, agent_leg):
            with contextlib.suppress(TelephonyError):
                await tel.hangup_leg(leg, "normal")
        talk = asyncio.get_running_loop().time() - agent_answered
        self.record(
            LegEndedFact(agent_leg, datetime.now(UTC), "answered", None, None, round(talk, 3), 0.0)
        )
        wrap = q.wrap_up_seconds if q is not None else 0.0
        if q is not None:
            self.acd.handle_done(q.name, talk + wrap)
        self.acd.agents.call_ended(agent_id, reserved_as, wrap)
        self.hub.publish(CallEnded(agent_id, cid, round(talk, 1)))
        with contextlib.suppress(TelephonyError):
            await tel.destroy_bridge(bridge_for_call(cid))

    def _agent_failed(
        self, cid: str, entry: Entry, offer: Offer, outcome: str, ev: LegEnded | None
    ) -> None:
        self.record(
            LegEndedFact(
                offer.leg_id,
                datetime.now(UTC),
                outcome,
                ev.cause if ev else None,
                ev.sip_code if ev else None,
                None,
                None,
            )
        )
        self.m.agent_offers.labels(result=outcome).inc()
        self.acd.agents.offer_failed(offer.agent_id, entry.call_id, outcome)
        self.hub.publish(OfferEnded(offer.agent_id, cid, outcome))
        self.acd.back_to_queue(entry, offer.agent_id, outcome)

    def _close_entry(self, entry: Entry, offer: Offer, outcome: str, detail: str) -> None:
        waited = self.acd.leave(entry, outcome)
        entry.agent_id = offer.agent_id
        self.record(
            QueueLeftFact(
                entry.entry_id, datetime.now(UTC), outcome, waited, False, offer.agent_id, detail
            )
        )

    async def _leg_result(
        self,
        inbox: CallInbox,
        leg: str | None,
        timeout: float,
        watch: str | None = None,
        prompt: str | None = None,
    ) -> LegAnswered | LegEnded | None:
        """Wait for ``leg`` to answer or end (None on timeout); ``watch`` ending aborts."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return None
            item = await inbox.next_any(left)
            match item:
                case None:
                    return None
                case LegAnswered(leg_id=lid) | LegEnded(leg_id=lid) if lid == leg:
                    return item
                case LegEnded(leg_id=lid) if lid == watch:
                    raise TelephonyError("the agent hung up while the customer was rung")
                case PromptFinished(prompt_id=pid) if pid == prompt:
                    return None
                case _:
                    pass

    async def _until_one_leaves(self, inbox: CallInbox, a: str, b: str) -> str | None:
        """The leg that hung up first; None when the engine hands the talk over (a graceful
        stop wakes the task)."""
        while True:
            if self.handing_over():
                return None
            item = await inbox.next_any(None)
            if isinstance(item, LegEnded) and item.leg_id in (a, b):
                return item.leg_id
