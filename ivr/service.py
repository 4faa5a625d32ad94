"""Runs greeting calls: records the call, steps the pure machine, executes its commands."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import structlog

from engine.calls import CallInbox
from engine.errors import CallGone, TelephonyError
from engine.events import CallAnswered, CallEnded, CallOffered, PromptFinished
from engine.facts import CallAnsweredFact, CallEndedFact, CallStartedFact, Fact
from engine.logging import mask_personal
from engine.ports import Telephony
from ivr.greeting import (
    Answer,
    CheckPrompt,
    Command,
    CommandFailed,
    GreetingEvent,
    GreetingState,
    Hangup,
    Phase,
    Play,
    Silence,
    Start,
    step,
)
from ivr.model import GreetingFlow

log = structlog.get_logger(__name__)

# After the engine hangs up, Asterisk confirms with the channel's destruction within
# milliseconds; past this the call is closed anyway so no task lingers on a lost event.
_HANGUP_CONFIRM_SECONDS = 5.0


class GreetingService:
    def __init__(
        self,
        telephony: Telephony,
        record: Callable[[Fact], None],
        flows_by_did: Mapping[str, GreetingFlow],
        unknown_number: GreetingFlow,
        engine_instance: str,
        asterisk_id: Callable[[], str],
        max_silent_seconds: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tel = telephony
        self._record = record
        self._flows = flows_by_did
        self._unknown = unknown_number
        self._instance = engine_instance
        self._asterisk_id = asterisk_id
        self._max_silent = max_silent_seconds
        self._now = clock

    async def handle(self, offer: CallOffered, inbox: CallInbox) -> None:
        flow = self._flows.get(offer.did)
        self._record(
            CallStartedFact(
                call_id=offer.call_id,
                direction="inbound",
                channel_name=offer.channel_name,
                did=offer.did,
                caller_number=offer.caller_number,
                caller_name=offer.caller_name,
                hotline=flow.name if flow else None,
                asterisk_id=self._asterisk_id(),
                engine_instance=self._instance,
                started_at=offer.at,
            )
        )
        if flow is None:
            log.info("call.unknown_number", did=offer.did)
        # The caller's number is personal data: masked here as well as by the log pipeline, so
        # a handler set up without that pipeline cannot print it whole.
        log.info(
            "call.offered",
            did=offer.did,
            caller_number=mask_personal(offer.caller_number),
            flow=(flow or self._unknown).name,
        )
        await self._run(GreetingState(offer.call_id, flow or self._unknown), inbox)

    async def refuse(self, offer: CallOffered) -> None:
        """While shutting down: record the call and release it so the carrier can retry."""
        self._record(
            CallStartedFact(
                offer.call_id,
                "inbound",
                offer.channel_name,
                offer.did,
                offer.caller_number,
                offer.caller_name,
                None,
                self._asterisk_id(),
                self._instance,
                offer.at,
            )
        )
        try:
            await self._tel.hangup(offer.call_id, reason="congestion")
        except TelephonyError as err:
            log.warning("call.refuse_failed", error=str(err))
        self._record(CallEndedFact(offer.call_id, self._now(), "refused_shutdown", 34, None, None))

    async def _run(self, state: GreetingState, inbox: CallInbox) -> None:
        ended: CallEnded | None = None
        try:
            state = await self._apply(state, Start(self._now()))
            while state.phase is not Phase.ENDED:
                wait = (
                    _HANGUP_CONFIRM_SECONDS if state.phase is Phase.HANGING_UP else self._max_silent
                )
                event = await inbox.next(timeout=wait)
                ev: GreetingEvent
                if event is None:
                    if state.phase is Phase.HANGING_UP:
                        log.warning("call.hangup_unconfirmed")
                        ev = CallEnded(
                            state.call_id,
                            0,
                            "hangup not confirmed",
                            self._now(),
                            reason=state.end_reason,
                        )
                    else:
                        ev = Silence(self._now())
                else:
                    ev = event
                if isinstance(ev, CallAnswered):
                    self._record(CallAnsweredFact(state.call_id, ev.at))
                if isinstance(ev, CallEnded):
                    ended = ev
                state = await self._apply(state, ev)
        finally:
            if state.phase is not Phase.ENDED:
                # Cancelled (shutdown past its drain time) or crashed: never leave the caller
                # in silence on a channel nobody owns.
                await self._safe_hangup(state.call_id)
                reason = "shutdown" if state.end_reason is None else state.end_reason
                self._record(CallEndedFact(state.call_id, self._now(), reason, None, None, None))
            else:
                assert ended is not None
                self._record(
                    CallEndedFact(
                        call_id=state.call_id,
                        ended_at=ended.at,
                        end_reason=state.end_reason or "caller_hangup",
                        hangup_cause=ended.cause if ended.reason is None else None,
                        hangup_cause_text=ended.cause_text,
                        sip_code=ended.sip_code,
                    )
                )
                log.info("call.ended", reason=state.end_reason, cause=ended.cause)

    async def _apply(self, state: GreetingState, event: GreetingEvent) -> GreetingState:
        new, commands = step(state, event)
        if new.phase is not state.phase:
            log.info(
                f"transition: {state.phase.value} -> {type(event).__name__} -> {new.phase.value}"
            )
        for cmd in commands:
            follow_up = await self._execute(new.call_id, cmd)
            if follow_up is not None:
                if isinstance(follow_up, CallAnswered):
                    self._record(CallAnsweredFact(new.call_id, follow_up.at))
                return await self._apply(new, follow_up)
        return new

    async def _execute(
        self, call_id: str, cmd: Command
    ) -> CommandFailed | CallAnswered | PromptFinished | None:
        try:
            match cmd:
                case Answer():
                    await self._tel.answer(call_id)
                    # ARI answers synchronously: a 204 means the channel is up. Acting on it,
                    # rather than on the state-change event, keeps a call moving even if that
                    # event is lost while the event stream reconnects.
                    return CallAnswered(call_id, self._now())
                case CheckPrompt(prompt_id=pid):
                    if not await self._tel.prompt_active(pid):
                        log.info("call.prompt_ended_unseen", prompt_id=pid)
                        return PromptFinished(call_id, pid, self._now())
                case Play(prompt_id=pid, media=media, language=lang):
                    await self._tel.play(call_id, pid, media, language=lang)
                case Hangup(reason=reason):
                    await self._tel.hangup(call_id, reason=reason)
        except CallGone:
            # The caller hung up first; the end event is on its way.
            log.debug("call.command_on_gone_call", command=type(cmd).__name__)
        except TelephonyError as err:
            log.warning(
                "call.command_failed",
                command=type(cmd).__name__,
                error=str(err),
                error_id=err.error_id,
            )
            if not isinstance(cmd, Hangup):
                return CommandFailed(type(cmd).__name__, self._now())
        return None

    async def _safe_hangup(self, call_id: str) -> None:
        try:
            await self._tel.hangup(call_id)
        except TelephonyError as err:
            log.warning("call.final_hangup_failed", error=str(err))
