"""``engine.ports.Telephony`` over ARI, and the translation of ARI events into domain events.

ARI names stop here: the engine sees ``CallOffered``, ``DigitPressed``, ``CallEnded``... Only
channels that are calls (entered our app with ``Stasis(<app>,inbound,<did>)``) produce call
events; events about other channels (agent legs, Local halves, later features) are dropped by
this translation until those features claim them.

Exactly one ``CallEnded`` per call, and it comes from ``StasisEnd``. Verified on Asterisk
22.10.1 (captures in tests/fixtures/ari/): an inbound channel does NOT deliver
``ChannelDestroyed`` to the app after ``StasisEnd``, neither when the caller hangs up
(ChannelHangupRequest -> StasisEnd) nor when we DELETE it (ChannelHangupRequest{cause 32,
soft} -> StasisEnd): the app's implicit subscription ends with Stasis. Only an explicit
``channel:<id>`` subscription brings it, and then with cause 0 "Unknown" for a caller's BYE and
no SIP code, so it is not worth a REST call per call. Hence:

- ``StasisEnd`` after a hang-up request (the caller's, ours or anyone's) ends the call at once.
- ``StasisEnd`` without one (the channel left the app alive: continue, redirect) waits a short
  grace for ``ChannelDestroyed``, then ends the call anyway: we no longer control it.
- ``ChannelDestroyed`` (subscribed channels, or an order we have not seen) ends it too; the
  first of these wins and the rest are dropped.

Other quirks seen in the captures: the caller's BYE gives a ``ChannelHangupRequest`` with no
``cause`` at all; ours gives ``soft: true`` with ``cause`` 32, which is not the Q.850 cause we
asked for, so the cause of a hang-up we asked for is taken from our own ``reason``. A prompt
that is playing when the caller hangs up ends with ``PlaybackFinished`` state ``failed``
(between ChannelHangupRequest and StasisEnd).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import structlog

from sambung.asterisk import talk_guard
from sambung.asterisk.ari.client import AriClient
from sambung.asterisk.ari.errors import AriConflict, AriNoReply, AriNotFound, AriServerError
from sambung.asterisk.ari.events import (
    AriEvent,
    Bridge,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelHold,
    ChannelStateChange,
    ChannelUnhold,
    DeviceStateChanged,
    Dial,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
)
from sambung.asterisk.ari.stream import DEFAULT_DISALLOWED_EVENTS, AriEventStream, ConnectInfo
from sambung.engine.errors import CallGone, EndpointUnavailable, OriginateUncertain, TelephonyError
from sambung.engine.events import (
    MONITOR_BRIDGE_PREFIX,
    AmdDecided,
    BridgeJoined,
    CallAnswered,
    CallEnded,
    CallerHungUp,
    CallOffered,
    DeviceChanged,
    DigitPressed,
    EngineEvent,
    HeldCall,
    HeldMonitor,
    LegAnswered,
    LegEnded,
    LegHeld,
    LegRinging,
    OutboundAnswered,
    PromptFinished,
    PromptStarted,
    TelephonyConnected,
    TelephonyLost,
    monitor_supervisor,
    snoop_number,
)
from sambung.engine.metrics import Metrics

log = structlog.get_logger(__name__)

INBOUND = "inbound"
FEATURE = "feature"
# The channel variable holding a waiting caller's place (acd/place.py), read back at connect.
PLACE_VARIABLE = "SAMBUNG_PLACE"
# The mixing bridge of a caller's talk with an agent, named after the call (acd/queue_machine.py).
TALK_BRIDGE_PREFIX = "sambung-call-"
# GETs of that variable in flight at once while reconciling (one per unknown waiting caller).
_PLACE_READS = 10
# appArgs of the legs the engine originates: ``leg,<owner call id>``.
LEG = "leg"
# appArgs of a dialer attempt (``dialer,<campaign>``) and of its return from AMD() in the
# dialplan (``amd,<AMDSTATUS>,<AMDCAUSE>``, extensions.conf [dialer-amd]).
DIALER = "dialer"
AMD = "amd"
NORMAL_CLEARING = 16
# Q.850 texts as Asterisk words them (ast_cause2str), for the causes a StasisEnd fallback sees.
_CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    127: "Interworking, unspecified",
}
# DELETE /channels reason -> the Q.850 cause Asterisk hangs up with (resource_channels.c).
_REASON_CAUSE = {
    "normal": 16,
    "busy": 17,
    "timeout": 18,
    "no_answer": 19,
    "rejected": 21,
    "answered_elsewhere": 26,
    "normal_unspecified": 31,
    "congestion": 34,
    "failure": 38,
}
# States in which a live channel found at reconnect is still waiting to be answered by us.
_UNANSWERED = frozenset({"Ring", "Ringing", "Down", "Rsrved"})


@dataclass(slots=True)
class _Call:
    call_id: str
    hangup_cause: int | None = None
    hangup_sip_code: int | None = None
    caller_hung_up: bool = False
    hangup_requested: bool = False
    we_hung_up: bool = False
    our_cause: int = NORMAL_CLEARING
    answered: bool = False
    left_stasis: bool = False
    end_timer: asyncio.TimerHandle | None = None
    # Sent to the dialplan (AMD) and expected back in Stasis: leaving is not the end.
    away: bool = False


@dataclass(slots=True)
class _Outbound:
    """A call we originated that has not been answered yet."""

    call_id: str
    hangup_cause: int | None = None
    sip_code: int | None = None


@dataclass(slots=True)
class _Leg:
    leg_id: str
    owner: str  # the call (or callback) whose task handles this leg's events
    answered: bool = False
    hangup_cause: int | None = None
    sip_code: int | None = None
    we_hung_up: bool = False
    ended: bool = False


def _endpoint_of(channel_name: str) -> str:
    """``PJSIP/agent1001-0000002a`` -> ``agent1001``."""
    _, _, rest = channel_name.partition("/")
    return rest.rpartition("-")[0] or rest


def _at(event: AriEvent) -> datetime:
    return event.timestamp if event.timestamp is not None else datetime.now(UTC)


def _channel_of(target_uri: str) -> str | None:
    kind, _, ident = target_uri.partition(":")
    return ident if kind == "channel" and ident else None


class AriTelephony:
    """Call control for the engine; ``run()`` keeps the ARI event stream up until cancelled."""

    def __init__(
        self,
        client: AriClient,
        session: aiohttp.ClientSession,
        sink: Callable[[EngineEvent], None],
        metrics: Metrics | None = None,
        *,
        ws_url_base: str | None = None,
        subscriptions: Sequence[str] = (),
        disallowed_events: Sequence[str] = DEFAULT_DISALLOWED_EVENTS,
        heartbeat: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
        destroyed_grace: float = 1.0,
    ) -> None:
        self._client = client
        self.translator = CallEventTranslator(
            client.app, sink, destroyed_grace, read_place=self._read_place
        )
        if ws_url_base is None:
            ws_url_base = "ws" + client.base_url.removeprefix("http")
        self._stream = AriEventStream(
            client,
            session,
            ws_url_base,
            client.app,
            on_event=self.translator.handle_event,
            on_connected=self.translator.on_connected,
            on_disconnected=self.translator.on_disconnected,
            metrics=metrics,
            subscriptions=subscriptions,
            disallowed_events=disallowed_events,
            heartbeat=heartbeat,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            rng=rng,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._stream.run()
        finally:
            self.translator.close()

    @property
    def is_connected(self) -> bool:
        return self._stream.is_connected

    def adopt_leg(self, leg_id: str, owner: str) -> None:
        """An agent's leg an earlier engine left talking with ``owner`` (see
        ``CallEventTranslator.adopt_leg``)."""
        self.translator.adopt_leg(leg_id, owner)

    @property
    def replaced(self) -> bool:
        """Another connection took our Stasis app over (ApplicationReplaced)."""
        return self._stream.replaced

    @property
    def stream(self) -> AriEventStream:
        return self._stream

    @property
    def live_calls(self) -> frozenset[str]:
        return self.translator.live_calls

    def request_resync(self, reason: str) -> None:
        self._stream.request_resync(reason)

    # -- engine.ports.Telephony ------------------------------------------------------------

    async def answer(self, call_id: str) -> None:
        await self._client.answer(call_id)

    async def play(
        self, call_id: str, prompt_id: str, media: Sequence[str], language: str | None = None
    ) -> None:
        # The prompt id is the playback id: callers choose deterministic ids, so a playback
        # can be found again after a reconnect (there is no list-playbacks call).
        await self._client.play(call_id, prompt_id, media, lang=language)

    async def stop_prompt(self, prompt_id: str) -> None:
        await self._client.stop_playback(prompt_id)

    async def prompt_active(self, prompt_id: str) -> bool:
        """Queued, playing or between URIs; False once finished, stopped or flushed."""
        playback = await self._client.get_playback(prompt_id)
        return playback is not None and playback.state in ("queued", "playing", "continuing")

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        self.translator.hanging_up(call_id, reason)
        await self._client.hangup(call_id, reason)

    # -- bridges, legs and devices (the ACD) ----------------------------------------------

    async def ensure_holding_bridge(self, bridge_id: str, moh_class: str) -> None:
        """Create the queue's holding bridge if missing and make sure its music plays.

        A bridge that outlived an engine keeps its music (its announcer belongs to the
        bridge), and callers an earlier engine left there may be listening: starting it again
        answers 204 whether it plays or not (checked on Asterisk 22.10.1), so it is not
        stopped first, which would cut it for everyone. Only if that start fails (the one
        announcer slot taken, ari-notes 1.3) is it stopped and started anew.
        """
        try:
            await self._client.get_bridge(bridge_id)
            existed = True
        except AriNotFound:
            existed = False
        if not existed:
            try:
                await self._client.create_bridge(bridge_id, "holding", name=bridge_id)
            except AriConflict:
                return  # created by another task just now, which starts its music
        else:
            try:
                await self._client.start_bridge_moh(bridge_id, moh_class)
                return
            except TelephonyError:
                with contextlib.suppress(TelephonyError):
                    await self._client.stop_bridge_moh(bridge_id)
        await self._client.start_bridge_moh(bridge_id, moh_class)

    async def create_mixing_bridge(self, bridge_id: str) -> None:
        await self._client.create_bridge(bridge_id, "mixing", name=bridge_id)

    async def join_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self._client.add_channel(bridge_id, channel_ids)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._client.destroy_bridge(bridge_id)

    async def dial(
        self,
        owner: str,
        leg_id: str,
        endpoint: str,
        *,
        caller_id: str | None,
        timeout: int,
        originator: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> None:
        """Ring ``endpoint`` as a leg of ``owner``; its events go to the owner's task.

        Raises ``EndpointUnavailable`` when Asterisk cannot even start the call: an
        unregistered PJSIP endpoint answers the originate with 500 (ari-notes pitfall 12).
        """
        self.translator.track_leg(leg_id, owner)
        try:
            await self._client.originate(
                endpoint,
                channel_id=leg_id,
                app_args=(LEG, owner),
                caller_id=caller_id,
                ring_timeout=timeout,
                originator=originator,
                variables=variables,
            )
        except (AriServerError, AriNotFound) as err:
            self.translator.forget_leg(leg_id)
            raise EndpointUnavailable(f"{endpoint}: {err.detail}") from err
        except BaseException:
            self.translator.forget_leg(leg_id)
            raise

    async def originate_call(
        self,
        call_id: str,
        endpoint: str,
        *,
        caller_id: str | None,
        timeout: int,
        app_args: Sequence[str],
        variables: dict[str, str] | None = None,
    ) -> None:
        """Originate a call of our own (a dialer attempt) with a preassigned channel id.

        Its answer arrives as ``OutboundAnswered``; a call that never answers ends with
        ``CallEnded`` carrying the Q.850 cause and the SIP status. The id is tracked before
        the POST: the channel's first events can beat the HTTP response.
        """
        self.translator.track_outbound(call_id)
        try:
            await self._client.originate(
                endpoint,
                channel_id=call_id,
                app_args=(DIALER, *app_args),
                caller_id=caller_id,
                ring_timeout=timeout,
                variables=variables,
            )
        except (AriServerError, AriNotFound) as err:
            self.translator.forget_outbound(call_id)
            raise EndpointUnavailable(f"{endpoint}: {err.detail}") from err
        except AriNoReply as err:
            # Still tracked: if Asterisk did create the channel, its events reach the call
            # task, which carries on as if the reply had come; if not, the task hangs the id
            # up at its ring backstop.
            raise OriginateUncertain(f"{endpoint}: {err.reason}") from err
        except BaseException:
            self.translator.forget_outbound(call_id)
            raise

    async def continue_to(self, call_id: str, context: str, extension: str = "s") -> None:
        """Send an answered call to dialplan (AMD); it comes back as ``AmdDecided``."""
        self.translator.leaving_for_dialplan(call_id)
        try:
            await self._client.continue_in_dialplan(call_id, context, extension, 1)
        except BaseException:
            self.translator.back_from_dialplan(call_id)
            raise

    async def hangup_leg(self, leg_id: str, reason: str = "normal") -> None:
        self.translator.hanging_up_leg(leg_id)
        await self._client.hangup(leg_id, reason)

    async def device_state(self, device: str) -> str:
        return await self._client.get_device_state(device)

    async def play_on(
        self, channel_id: str, prompt_id: str, media: Sequence[str], language: str | None = None
    ) -> None:
        """Play on any channel of a call (a leg too); events come as the owner's prompts."""
        await self._client.play(channel_id, prompt_id, media, lang=language)

    async def record_message(self, call_id: str, name: str, max_seconds: int) -> None:
        await self._client.record(call_id, name, max_seconds=max_seconds, max_silence_seconds=10)

    async def mark_place(self, call_id: str, place: str) -> None:
        await self._client.set_channel_var(call_id, PLACE_VARIABLE, place)

    async def set_safeguard(self, call_id: str, seconds: float) -> None:
        """``TIMEOUT(absolute)``: when it runs out, Asterisk soft-hangs-up the channel, which
        leaves Stasis and runs the ``T`` extension of its context (extensions.conf: the
        engine-down message, then cause 34), also while no engine is connected (checked on
        Asterisk 22.10.1). Whole seconds, rounded up; 0 clears it."""
        value = "0" if seconds <= 0 else str(math.ceil(seconds))
        await self._client.set_channel_var(call_id, "TIMEOUT(absolute)", value)

    async def guard_talk(self, channel_id: str, partner_id: str) -> None:
        """Have Asterisk end ``partner_id`` when ``channel_id`` hangs up while no engine runs
        (``asterisk/talk_guard.py``); replaces any earlier partner's."""
        await self._client.set_channel_var(
            channel_id, "CHANNEL(hangup_handler_wipe)", talk_guard.handler(partner_id)
        )

    async def set_engine_until(self, epoch: int) -> None:
        """Until when (Asterisk's epoch seconds) an engine drives talks; 0: none does."""
        await self._client.set_global_var(talk_guard.ENGINE_UNTIL, str(epoch))

    async def _read_place(self, channel_id: str) -> str:
        """A waiting caller's place ("" when none is written: Asterisk answers 404)."""
        try:
            return await self._client.get_channel_var(channel_id, PLACE_VARIABLE)
        except AriNotFound:
            return ""

    async def hangup_orphan(self, channel_id: str) -> bool:
        """Hang up a channel left in our app by an earlier run; never raises.

        Returns True if it was hung up now, False if already gone or Asterisk refused.
        """
        try:
            done = await self._client.hangup(channel_id, "normal")
        except CallGone:
            return False
        except TelephonyError as err:
            log.warning("ari.orphan_hangup_failed", call_id=channel_id, error=err.detail)
            return False
        log.info("ari.orphan_hung_up", call_id=channel_id, hung_up=done)
        return done


# Ids of the channels the engine makes itself: an agent's leg (acd/service.py), a dialer
# attempt (dialer/service.py), a callback's customer leg (acd/callback.py).
_MADE_PREFIXES = ("leg-", "dlr-")
_MADE_SUFFIXES = ("-customer",)


def engine_made(channel_id: str) -> bool:
    """Whether a channel id is one an engine gives to a channel it originates."""
    return channel_id.startswith(_MADE_PREFIXES) or channel_id.endswith(_MADE_SUFFIXES)


class CallEventTranslator:
    """ARI events in, domain events out, for the channels that are calls.

    Sync and non-blocking (the stream calls it from its delivery loop); keeps the map of live
    calls so that events about other channels are dropped and each call ends exactly once.
    """

    def __init__(
        self,
        app: str,
        sink: Callable[[EngineEvent], None],
        destroyed_grace: float = 1.0,
        *,
        read_place: Callable[[str], Awaitable[str]] | None = None,
    ) -> None:
        self.app = app
        self._sink = sink
        # Reads a channel's place in the queues (PLACE_VARIABLE); None: calls are never held.
        self._read_place = read_place
        # How long after StasisEnd we wait for ChannelDestroyed before ending the call anyway.
        self.destroyed_grace = destroyed_grace
        self._calls: dict[str, _Call] = {}
        self._legs: dict[str, _Leg] = {}
        self._outbound: dict[str, _Outbound] = {}

    @property
    def live_calls(self) -> frozenset[str]:
        return frozenset(self._calls)

    def hanging_up(self, call_id: str, reason: str = "normal") -> None:
        """We are about to DELETE this call's channel: its ChannelHangupRequest is ours."""
        call = self._calls.get(call_id)
        if call is not None:
            call.we_hung_up = True
            call.our_cause = _REASON_CAUSE.get(reason, NORMAL_CLEARING)

    def track_leg(self, leg_id: str, owner: str) -> None:
        """Route this (about to be originated) channel's events to ``owner``'s task.

        Called before the originate: Asterisk's first events about the leg can beat the HTTP
        response (ari-notes pitfall 4).
        """
        self._legs[leg_id] = _Leg(leg_id, owner)

    def adopt_leg(self, leg_id: str, owner: str) -> None:
        """An agent's leg an earlier engine left talking with ``owner``: its events (hang-up,
        hold) go to that call's task from now on."""
        self._legs[leg_id] = _Leg(leg_id, owner, answered=True)

    def forget_leg(self, leg_id: str) -> None:
        """The originate failed outright: no events will come for this leg."""
        self._legs.pop(leg_id, None)

    def track_outbound(self, call_id: str) -> None:
        self._outbound[call_id] = _Outbound(call_id)

    def forget_outbound(self, call_id: str) -> None:
        self._outbound.pop(call_id, None)

    def leaving_for_dialplan(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.away = True

    def back_from_dialplan(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.away = False

    def hanging_up_leg(self, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is not None:
            leg.we_hung_up = True

    def close(self) -> None:
        for call in self._calls.values():
            if call.end_timer is not None:
                call.end_timer.cancel()

    # -- stream callbacks ------------------------------------------------------------------

    async def on_connected(self, info: ConnectInfo) -> None:
        live = {c.id: c for c in info.channels}
        if info.restarted:
            # Every channel is gone with the old Asterisk; the engine ends its calls itself.
            self._forget(set(self._calls))
        else:
            self._forget(set(self._calls) - set(live))
        # A leg that vanished while the stream was down ended without us hearing it; its owner
        # must know, or it would wait for an answer forever.
        now = datetime.now(UTC)
        gone = [x for x in self._legs if info.restarted or x not in info.all_channel_ids]
        for lid in gone:
            leg = self._legs.pop(lid)
            self._sink(
                LegEnded(leg.owner, lid, 0, "lost while disconnected", now, None, leg.answered)
            )
        # Likewise an attempt still ringing when the stream dropped, gone by now.
        for oid in [x for x in self._outbound if info.restarted or x not in info.all_channel_ids]:
            self._outbound.pop(oid)
            self._sink(CallEnded(oid, 0, "lost while disconnected", now, reason="lost"))
        # A caller still waiting unanswered in our app is adopted as a new call rather than
        # called an orphan: its StasisStart may sit in the stream's buffer (it entered while we
        # reconciled), or a previous run never answered it. Answered unknown channels are
        # orphans for the engine to hang up.
        adopt = [
            c
            for cid, c in live.items()
            if cid not in self._calls and c.state in _UNANSWERED and self._inbound_did(c)
        ]
        adopted = {c.id for c in adopt}
        held = () if info.restarted else await self._held(live, info.bridges, adopted)
        strays = frozenset(
            cid
            for cid in info.all_channel_ids
            if engine_made(cid)
            and cid not in live
            and cid not in self._legs
            and cid not in self._outbound
            and cid not in self._calls
        )
        self._sink(
            TelephonyConnected(
                asterisk_id=info.asterisk_id,
                startup_time=info.startup_time,
                restarted=info.restarted,
                first_connect=info.first_connect,
                # Legs are owned through their call, not calls themselves: never orphans.
                live_call_ids=frozenset(
                    cid
                    for cid in live
                    if cid not in adopted and cid not in self._legs and cid not in self._outbound
                ),
                held=held,
                strays=frozenset() if info.restarted else strays,
                monitors=() if info.restarted else _monitors(live, info.bridges),
            )
        )
        for channel in adopt:
            did = self._inbound_did(channel)
            assert did is not None
            log.info("ari.call_adopted", call_id=channel.id, did=did)
            self._offer(channel, did, channel.creationtime)

    async def _held(
        self, live: dict[str, Channel], bridges: Sequence[Bridge], skip: set[str]
    ) -> tuple[HeldCall, ...]:
        """Answered callers no task of ours owns, sitting in a holding bridge with a place
        written on their channel: what an engine before us left waiting (acd/place.py); and
        answered callers in no bridge at all, who may be in an IVR flow (ivr/resume.py).

        Their events are routed as calls from now on (their task may be started by the
        engine); one the engine does not take is hung up as an orphan like any other.
        """
        if self._read_place is None:
            return ()
        bridged = {ch for b in bridges for ch in b.channels}
        holding = {ch: b.id for b in bridges if b.bridge_type == "holding" for ch in b.channels}
        # A caller talking to an agent: in its own mixing bridge (acd: ``sambung-call-<id>``)
        # with one other channel, the agent's leg.
        legs: dict[str, str] = {}
        for b in bridges:
            if b.bridge_type != "mixing" or not b.id.startswith(TALK_BRIDGE_PREFIX):
                continue
            caller = b.id.removeprefix(TALK_BRIDGE_PREFIX)
            others = [ch for ch in b.channels if ch != caller]
            if caller in b.channels and len(others) == 1:
                holding[caller] = b.id
                legs[caller] = others[0]
        unowned = [
            c
            for cid, c in live.items()
            if cid not in skip
            and cid not in self._calls
            and cid not in self._legs
            and cid not in self._outbound
            and c.state == "Up"
            and (self._inbound_did(c) is not None or self._dialer_line(c))
        ]
        # A caller in a queue's holding bridge or a talk's mixing bridge may have a place, read
        # from its channel; a caller in no bridge at all may be in an IVR flow, which its
        # session in PostgreSQL says (a channel variable of a caller hearing a prompt cannot
        # be read before the prompt ends: see ivr/resume.py).
        candidates = [c for c in unowned if c.id in holding]
        read = self._read_place
        gate = asyncio.Semaphore(_PLACE_READS)

        async def place_of(channel: Channel) -> str:
            async with gate:
                try:
                    return await read(channel.id)
                except TelephonyError as err:
                    # Not taken over then: it is hung up as an orphan, as before.
                    log.warning("ari.place_unreadable", call_id=channel.id, error=str(err))
                    return ""

        callbacks = self._callback_talks(live, bridges, skip)
        places = await asyncio.gather(*(place_of(c) for c in candidates))
        found = [(c, p) for c, p in zip(candidates, places, strict=True) if p]
        # A debtor's line in no bridge (a machine message, a reminder) is nobody's to resume.
        found += [(c, "") for c in unowned if c.id not in bridged and not self._dialer_line(c)]
        held: list[HeldCall] = []
        for channel, place in found:
            # A debtor's line (the dialer's, once its answer is live) has no DID.
            did = self._inbound_did(channel) or ""
            self._calls[channel.id] = _Call(channel.id, answered=True)
            held.append(
                HeldCall(
                    call_id=channel.id,
                    channel_name=channel.name,
                    did=did,
                    caller_number=channel.caller.number,
                    caller_name=channel.caller.name,
                    at=channel.creationtime,
                    bridge_id=holding.get(channel.id, ""),
                    place=place,
                    leg_id=legs.get(channel.id),
                )
            )
        return (*held, *callbacks)

    def _callback_talks(
        self, live: dict[str, Channel], bridges: Sequence[Bridge], skip: set[str]
    ) -> list[HeldCall]:
        """Callbacks' talks an earlier engine left: the attempt's mixing bridge
        (``sambung-call-<attempt>``, the attempt being no channel) holding one leg of the
        attempt (the agent's) and its customer's leg (``<attempt>-customer``), both answered;
        or the agent's alone, the customer answered but not yet put in (the engine died in
        between). Asterisk alone says all of it: the legs' Stasis arguments name their owner.
        The engine adopts the legs if it takes the talk over; else they are orphans."""
        out: list[HeldCall] = []
        bridged = {ch for b in bridges for ch in b.channels}
        for b in bridges:
            if b.bridge_type != "mixing" or not b.id.startswith(TALK_BRIDGE_PREFIX):
                continue
            owner = b.id.removeprefix(TALK_BRIDGE_PREFIX)
            customer = f"{owner}-customer"
            others = [ch for ch in b.channels if ch != customer]
            in_bridge = customer in b.channels
            if owner in live or len(others) != 1 or (not in_bridge and customer in bridged):
                continue
            (agent,) = others
            chans = [live.get(customer), live.get(agent)]
            if any(
                c is None
                or c.id in skip
                or c.id in self._legs
                or c.id in self._calls
                or c.state != "Up"
                or c.dialplan.app_data.split(",")[1:3] != [LEG, owner]
                for c in chans
            ):
                continue
            cust, leg = chans
            assert cust is not None
            assert leg is not None
            out.append(
                HeldCall(
                    call_id=owner,
                    channel_name=cust.name,
                    did="",
                    caller_number=cust.caller.number,
                    caller_name=cust.caller.name,
                    at=cust.creationtime,
                    bridge_id=b.id,
                    place="",
                    leg_id=agent,
                    customer_leg=customer,
                    leg_name=leg.name,
                    customer_bridged=in_bridge,
                )
            )
        return out

    def on_disconnected(self, reason: str) -> None:
        self._sink(TelephonyLost(reason=reason))

    def _dialer_line(self, channel: Channel) -> bool:
        """A debtor's line of ours: in Stasis from the dialer's originate, or back from AMD."""
        parts = channel.dialplan.app_data.split(",")
        return len(parts) >= 2 and parts[0] == self.app and parts[1] in (DIALER, AMD)

    def _inbound_did(self, channel: Channel) -> str | None:
        """The DID from ``Stasis(<app>,inbound,<did>)`` dialplan data, if that is the app."""
        parts = channel.dialplan.app_data.split(",")
        if len(parts) >= 2 and parts[0] == self.app and parts[1] == INBOUND:
            return parts[2] if len(parts) > 2 else channel.dialplan.exten
        return None

    def _forget(self, call_ids: set[str]) -> None:
        for cid in call_ids:
            call = self._calls.pop(cid, None)
            if call is not None and call.end_timer is not None:
                call.end_timer.cancel()

    def _offer(
        self,
        channel: Channel,
        did: str,
        at: datetime,
        kind: str = INBOUND,
        endpoint: str = "",
    ) -> None:
        self._calls[channel.id] = _Call(channel.id, answered=channel.state == "Up")
        self._sink(
            CallOffered(
                call_id=channel.id,
                channel_name=channel.name,
                did=did,
                caller_number=channel.caller.number,
                caller_name=channel.caller.name,
                at=at,
                protocol_id=channel.protocol_id,
                kind=kind,
                endpoint=endpoint,
            )
        )

    # -- translation -----------------------------------------------------------------------

    def handle_event(self, event: AriEvent) -> None:
        """Translate one ARI event; sync and non-blocking (called by the stream's reader)."""
        match event:
            case StasisStart():
                self._stasis_start(event)
            case ChannelStateChange(channel=channel) if channel.state == "Up":
                call = self._calls.get(channel.id)
                if call is not None and not call.answered:
                    call.answered = True
                    self._sink(CallAnswered(call_id=channel.id, at=_at(event)))
            case PlaybackStarted(playback=pb):
                cid = self._owner_of(_channel_of(pb.target_uri) or "")
                if cid is not None:
                    self._sink(PromptStarted(call_id=cid, prompt_id=pb.id, at=_at(event)))
            case PlaybackFinished(playback=pb):
                cid = self._owner_of(_channel_of(pb.target_uri) or "")
                if cid is not None:
                    self._sink(
                        PromptFinished(
                            call_id=cid,
                            prompt_id=pb.id,
                            at=_at(event),
                            failed=pb.state == "failed",
                        )
                    )
            case ChannelDtmfReceived(channel=channel):
                if channel.id in self._calls:
                    self._sink(
                        DigitPressed(
                            call_id=channel.id,
                            digit=event.digit,
                            duration_ms=event.duration_ms,
                            at=_at(event),
                        )
                    )
            case Dial(peer=peer) if peer.id in self._legs:
                if event.dialstatus in ("RINGING", "PROGRESS"):
                    leg = self._legs[peer.id]
                    self._sink(LegRinging(leg.owner, leg.leg_id, _at(event)))
            case ChannelHold(channel=channel) | ChannelUnhold(channel=channel) if (
                channel.id in self._legs
            ):
                leg = self._legs[channel.id]
                held = isinstance(event, ChannelHold)
                self._sink(LegHeld(leg.owner, leg.leg_id, held, _at(event)))
            case ChannelEnteredBridge(channel=channel) if channel is not None:
                owner = self._owner_of(channel.id)
                if owner is not None:
                    self._sink(BridgeJoined(owner, channel.id, event.bridge.id, _at(event)))
            case DeviceStateChanged(device_state=ds):
                self._sink(DeviceChanged(ds.name, ds.state, _at(event)))
            case ChannelHangupRequest(channel=channel) if channel.id in self._outbound:
                pending = self._outbound[channel.id]
                if not event.soft and event.cause is not None:
                    pending.hangup_cause = event.cause
                if event.tech_cause is not None:
                    pending.sip_code = event.tech_cause
            case ChannelDestroyed(channel=channel) if channel.id in self._outbound:
                # Never answered: busy, no answer, rejected... the cause and SIP status say.
                pending = self._outbound.pop(channel.id)
                sip = event.tech_cause if event.tech_cause is not None else pending.sip_code
                self._sink(CallEnded(channel.id, event.cause, event.cause_txt, _at(event), sip))
            case ChannelHangupRequest(channel=channel) if channel.id in self._legs:
                leg = self._legs[channel.id]
                if not event.soft and event.cause is not None:
                    leg.hangup_cause = event.cause
                if event.tech_cause is not None:
                    leg.sip_code = event.tech_cause
            case StasisEnd(channel=channel) if channel.id in self._legs:
                # An answered leg leaves the app only by hanging up (we never send legs on to
                # dialplan), and ChannelDestroyed may not follow StasisEnd: end it here.
                leg = self._legs[channel.id]
                cause = leg.hangup_cause if leg.hangup_cause is not None else NORMAL_CLEARING
                self._end_leg(channel.id, cause, _CAUSE_TEXT.get(cause, ""), _at(event), None)
            case ChannelDestroyed(channel=channel) if channel.id in self._legs:
                self._end_leg(
                    channel.id, event.cause, event.cause_txt, _at(event), event.tech_cause
                )
            case ChannelHangupRequest(channel=channel):
                self._hangup_request(event, channel)
            case StasisEnd(channel=channel):
                self._stasis_end(event, channel)
            case ChannelDestroyed(channel=channel):
                self._end(
                    channel.id,
                    event.cause,
                    event.cause_txt,
                    _at(event),
                    event.tech_cause,
                    "destroyed",
                )
            case _:
                pass

    def _stasis_start(self, event: StasisStart) -> None:
        channel = event.channel
        call = self._calls.get(channel.id)
        if call is not None and call.away and event.args[:1] == [AMD]:
            # Back from AMD() in the dialplan: the same call, with the verdict.
            call.away = False
            call.left_stasis = False
            status = event.args[1] if len(event.args) > 1 else "NOTSURE"
            cause = event.args[2] if len(event.args) > 2 else ""
            self._sink(AmdDecided(channel.id, status or "NOTSURE", cause, _at(event)))
            return
        if call is not None:
            # Seen already: adopted at reconnect, then its buffered StasisStart arrived.
            return
        if channel.id in self._outbound and event.args[:1] == [DIALER]:
            self._outbound.pop(channel.id)
            self._calls[channel.id] = _Call(channel.id, answered=True)
            self._sink(OutboundAnswered(channel.id, _at(event)))
            return
        leg = self._legs.get(channel.id)
        if leg is not None:
            if not leg.answered:
                leg.answered = True
                self._sink(LegAnswered(leg.owner, leg.leg_id, _at(event)))
            return
        if len(event.args) >= 1 and event.args[0] == INBOUND:
            did = event.args[1] if len(event.args) > 1 else channel.dialplan.exten
            log.debug("ari.call_offered", call_id=channel.id, did=did)
            self._offer(channel, did, _at(event))
        elif len(event.args) >= 2 and event.args[0] == FEATURE:
            self._offer(channel, event.args[1], _at(event), FEATURE, _endpoint_of(channel.name))
        else:
            log.debug("ari.stasis_start_ignored", channel_id=channel.id, args=event.args)

    def _owner_of(self, channel_id: str) -> str | None:
        if channel_id in self._calls:
            return channel_id
        leg = self._legs.get(channel_id)
        return leg.owner if leg is not None else None

    def _end_leg(
        self, leg_id: str, cause: int, text: str, at: datetime, sip_code: int | None
    ) -> None:
        leg = self._legs.pop(leg_id, None)
        if leg is None:
            return
        sip = sip_code if sip_code is not None else leg.sip_code
        log.debug("ari.leg_ended", leg_id=leg_id, owner=leg.owner, cause=cause, sip_code=sip)
        self._sink(LegEnded(leg.owner, leg_id, cause, text, at, sip, leg.answered))

    def _hangup_request(self, event: ChannelHangupRequest, channel: Channel) -> None:
        call = self._calls.get(channel.id)
        if call is None:
            return
        call.hangup_requested = True
        if event.tech_cause is not None:
            call.hangup_sip_code = event.tech_cause
        if event.soft:
            # Ours (DELETE) or an operator's; its `cause` is not a Q.850 cause (32 for ours).
            return
        if event.cause is not None:
            call.hangup_cause = event.cause
        if call.we_hung_up or call.caller_hung_up:
            return
        call.caller_hung_up = True
        cause = event.cause if event.cause is not None else NORMAL_CLEARING
        self._sink(CallerHungUp(call_id=channel.id, cause=cause, at=_at(event)))

    def _stasis_end(self, event: StasisEnd, channel: Channel) -> None:
        call = self._calls.get(channel.id)
        if call is None or call.left_stasis:
            return
        call.left_stasis = True
        if call.away and not call.hangup_requested and not call.we_hung_up:
            # In the dialplan on our behalf (AMD); it comes back with a new StasisStart, and
            # its ChannelDestroyed still reaches us if it hangs up there (ari-notes 1.7).
            return
        at = _at(event)
        if call.we_hung_up:
            cause = call.our_cause
        elif call.hangup_cause is not None:
            cause = call.hangup_cause
        else:
            cause = NORMAL_CLEARING
        args = (channel.id, cause, _CAUSE_TEXT.get(cause, ""), at, call.hangup_sip_code)
        if call.hangup_requested or call.we_hung_up:
            # Being hung up: ChannelDestroyed will not reach us (see the module docstring).
            self._end(*args, "stasis_end")
            return
        loop = asyncio.get_running_loop()
        call.end_timer = loop.call_later(self.destroyed_grace, self._end, *args, "left_stasis")

    def _end(
        self,
        call_id: str,
        cause: int,
        cause_text: str,
        at: datetime,
        sip_code: int | None,
        source: str,
    ) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return  # not a call, or already ended (ChannelDestroyed after the grace timer)
        if call.end_timer is not None:
            call.end_timer.cancel()
        log.debug("ari.call_ended", call_id=call_id, cause=cause, source=source)
        self._sink(
            CallEnded(call_id=call_id, cause=cause, cause_text=cause_text, at=at, sip_code=sip_code)
        )


def _monitors(live: dict[str, Channel], bridges: Sequence[Bridge]) -> tuple[HeldMonitor, ...]:
    """Monitoring sessions found at connect: a monitor bridge (recordings/monitor.py) with the
    supervisor's phone in our app, and the session's snoop on the agent's leg if still there."""
    out: list[HeldMonitor] = []
    for b in bridges:
        if not b.id.startswith(MONITOR_BRIDGE_PREFIX):
            continue
        session = b.id.removeprefix(MONITOR_BRIDGE_PREFIX)
        sup = monitor_supervisor(session)
        if sup not in b.channels or sup not in live:
            continue
        snoops = [ch for ch in b.channels if snoop_number(session, ch) is not None and ch in live]
        out.append(HeldMonitor(session, sup, snoops[0] if snoops else None))
    return tuple(out)
