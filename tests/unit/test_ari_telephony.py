"""ARI events -> domain events (the translation inside sambung/asterisk/telephony.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from sambung.asterisk.ari.events import Bridge, Channel, parse_event
from sambung.asterisk.ari.stream import ConnectInfo
from sambung.asterisk.telephony import CallEventTranslator
from sambung.engine.events import (
    CallAnswered,
    CallEnded,
    CallerHungUp,
    CallOffered,
    DigitPressed,
    EngineEvent,
    HeldMonitor,
    PromptFinished,
    PromptStarted,
    TelephonyConnected,
    TelephonyLost,
)
from tests.fakes.fake_ari import ari_time, channel_json, load_capture

GRACE = 0.05


class Sink(list[EngineEvent]):
    def __call__(self, event: EngineEvent) -> None:
        self.append(event)


def translator(sink: Sink) -> CallEventTranslator:
    return CallEventTranslator("sambung", sink, destroyed_grace=GRACE)


def feed(t: CallEventTranslator, *events: dict[str, Any]) -> None:
    for data in events:
        t.handle_event(
            parse_event(
                {"application": "sambung", "timestamp": ari_time(), "asterisk_id": "e", **data}
            )
        )


def start(cid: str = "c1", args: tuple[str, ...] = ("inbound", "1500")) -> dict[str, Any]:
    return {"type": "StasisStart", "args": list(args), "channel": channel_json(cid)}


def up(cid: str = "c1") -> dict[str, Any]:
    return {"type": "ChannelStateChange", "channel": channel_json(cid, state="Up")}


def hangup_request(cid: str = "c1", cause: int | None = 16) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "ChannelHangupRequest", "channel": channel_json(cid)}
    if cause is not None:
        data["cause"] = cause
    return data


def stasis_end(cid: str = "c1") -> dict[str, Any]:
    return {"type": "StasisEnd", "channel": channel_json(cid, state="Up")}


def destroyed(cid: str = "c1", cause: int = 16, tech: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "ChannelDestroyed",
        "cause": cause,
        "cause_txt": "Normal Clearing",
        "channel": channel_json(cid, state="Up"),
    }
    if tech is not None:
        data["tech_cause"] = tech
    return data


def playback(kind: str, pb_id: str, cid: str = "c1", state: str = "playing") -> dict[str, Any]:
    return {
        "type": kind,
        "playback": {
            "id": pb_id,
            "media_uri": "sound:hello-world",
            "target_uri": f"channel:{cid}",
            "language": "en",
            "state": state,
        },
    }


async def test_given_inbound_stasis_start_then_call_offered_with_caller_and_did() -> None:
    sink = Sink()
    feed(translator(sink), start())
    [offer] = sink
    assert isinstance(offer, CallOffered)
    assert offer.call_id == "c1"
    assert offer.did == "1500"
    assert offer.caller_number == "628111000111"
    assert offer.caller_name == "Budi"
    assert offer.channel_name.startswith("PJSIP/trunk-")
    assert offer.protocol_id == "c1@127.0.0.1"
    assert offer.at.tzinfo is not None


async def test_given_a_call_when_its_events_arrive_then_each_maps_to_its_domain_event() -> None:
    sink = Sink()
    t = translator(sink)
    feed(
        t,
        start(),
        up(),
        up(),  # a second Up (e.g. after a re-INVITE) is not a second answer
        playback("PlaybackStarted", "c1-p1"),
        {
            "type": "ChannelDtmfReceived",
            "digit": "1",
            "duration_ms": 120,
            "channel": up()["channel"],
        },
        playback("PlaybackFinished", "c1-p1", state="done"),
        playback("PlaybackStarted", "c1-p2"),
        playback("PlaybackFinished", "c1-p2", state="failed"),
    )
    kinds = [type(e) for e in sink]
    assert kinds == [
        CallOffered,
        CallAnswered,
        PromptStarted,
        DigitPressed,
        PromptFinished,
        PromptStarted,
        PromptFinished,
    ]
    digit = sink[3]
    assert isinstance(digit, DigitPressed)
    assert (digit.digit, digit.duration_ms) == ("1", 120)
    first, second = sink[4], sink[6]
    assert isinstance(first, PromptFinished)
    assert isinstance(second, PromptFinished)
    assert (first.prompt_id, first.failed) == ("c1-p1", False)
    assert (second.prompt_id, second.failed) == ("c1-p2", True)


async def test_given_channel_not_a_call_then_its_events_are_dropped() -> None:
    sink = Sink()
    feed(
        translator(sink),
        start("agent-leg", args=("agent", "c1")),
        up("agent-leg"),
        playback("PlaybackStarted", "x", cid="agent-leg"),
        hangup_request("agent-leg"),
        stasis_end("agent-leg"),
        destroyed("agent-leg"),
        playback("PlaybackStarted", "b", cid="bridge-1"),
    )
    await asyncio.sleep(GRACE * 2)
    assert sink == []


def capture_events(name: str) -> tuple[str, list[dict[str, Any]]]:
    """A capture from the real Asterisk and the id of its call."""
    capture = load_capture(name)
    return capture.channel_ids()[0], capture.events


def feed_capture(t: CallEventTranslator, events: list[dict[str, Any]]) -> None:
    for data in events:
        t.handle_event(parse_event(data))


def summary(events: list[EngineEvent]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for e in events:
        match e:
            case PromptFinished():
                out.append(("PromptFinished", e.failed))
            case DigitPressed():
                out.append(("DigitPressed", e.digit, e.duration_ms))
            case CallerHungUp():
                out.append(("CallerHungUp", e.cause))
            case CallEnded():
                out.append(("CallEnded", e.cause, e.cause_text, e.sip_code))
            case _:
                out.append((type(e).__name__,))
    return out


OFFER_ANSWER_PROMPT = [("CallOffered",), ("CallAnswered",), ("PromptStarted",)]


@pytest.mark.parametrize(
    ("capture", "we_hang_up", "expected"),
    [
        (
            "inbound_caller_bye",
            False,
            [
                *OFFER_ANSWER_PROMPT,
                ("PromptFinished", False),
                ("CallerHungUp", 16),
                ("CallEnded", 16, "Normal Clearing", None),
            ],
        ),
        (
            "inbound_caller_bye_subscribed",
            False,
            [
                *OFFER_ANSWER_PROMPT,
                ("PromptFinished", False),
                ("CallerHungUp", 16),
                ("CallEnded", 16, "Normal Clearing", None),
            ],
        ),
        (
            "inbound_app_hangup",
            True,
            [
                *OFFER_ANSWER_PROMPT,
                ("PromptFinished", False),
                ("CallEnded", 16, "Normal Clearing", None),
            ],
        ),
        (
            "inbound_app_hangup_subscribed",
            True,
            [
                *OFFER_ANSWER_PROMPT,
                ("PromptFinished", False),
                ("CallEnded", 16, "Normal Clearing", None),
            ],
        ),
        (
            "inbound_dtmf",
            False,
            [
                *OFFER_ANSWER_PROMPT,
                ("PromptFinished", False),
                ("DigitPressed", "1", 280),
                ("CallerHungUp", 16),
                ("CallEnded", 16, "Normal Clearing", None),
            ],
        ),
        (
            "inbound_playback_failed",
            True,
            [
                *OFFER_ANSWER_PROMPT,
                ("PromptFinished", True),
                ("CallEnded", 16, "Normal Clearing", None),
            ],
        ),
        (
            "inbound_caller_bye_during_playback",
            False,
            [
                *OFFER_ANSWER_PROMPT,
                ("CallerHungUp", 16),
                ("PromptFinished", True),
                ("CallEnded", 16, "Normal Clearing", None),
            ],
        ),
    ],
)
async def test_given_a_call_captured_from_asterisk_when_translated_then_domain_events_match(
    capture: str, we_hang_up: bool, expected: list[tuple[Any, ...]]
) -> None:
    sink = Sink()
    t = translator(sink)
    call_id, events = capture_events(capture)
    if we_hang_up:
        # The engine calls hangup() (which marks the call) before Asterisk reports it.
        cut = next(i for i, e in enumerate(events) if e["type"] == "ChannelHangupRequest")
        feed_capture(t, events[:cut])
        t.hanging_up(call_id, "normal")
        feed_capture(t, events[cut:])
    else:
        feed_capture(t, events)
    # CallEnded comes from StasisEnd at once: no ChannelDestroyed follows for these channels.
    assert summary(sink) == expected
    assert all(getattr(e, "call_id", call_id) == call_id for e in sink)
    assert t.live_calls == frozenset()
    await asyncio.sleep(GRACE * 2)
    assert len(sink) == len(expected)


async def test_given_our_hangup_with_a_reason_then_call_ended_carries_its_cause() -> None:
    sink = Sink()
    t = translator(sink)
    call_id, events = capture_events("inbound_app_hangup")
    cut = next(i for i, e in enumerate(events) if e["type"] == "ChannelHangupRequest")
    feed_capture(t, events[:cut])
    t.hanging_up(call_id, "busy")
    feed_capture(t, events[cut:])
    ended = sink[-1]
    assert isinstance(ended, CallEnded)
    assert (ended.cause, ended.cause_text) == (17, "User busy")


async def test_given_a_soft_hangup_we_did_not_ask_for_then_no_caller_hung_up_but_call_ended() -> (
    None
):
    sink = Sink()
    _, events = capture_events("inbound_app_hangup")  # as if an operator hung it up
    feed_capture(translator(sink), events)
    assert [type(e) for e in sink][-2:] == [PromptFinished, CallEnded]


async def test_given_caller_bye_then_destroyed_then_one_call_ended() -> None:
    sink = Sink()
    t = translator(sink)
    feed(t, start(), up(), hangup_request(cause=16), stasis_end(), destroyed(tech=200))
    assert [type(e) for e in sink] == [CallOffered, CallAnswered, CallerHungUp, CallEnded]


async def test_given_destroyed_before_stasis_end_then_it_ends_the_call_with_its_sip_code() -> None:
    sink = Sink()
    t = translator(sink)
    feed(t, start(), up(), destroyed(cause=17, tech=486), stasis_end())
    ended = sink[-1]
    assert isinstance(ended, CallEnded)
    assert (ended.cause, ended.sip_code) == (17, 486)
    assert sum(isinstance(e, CallEnded) for e in sink) == 1


async def test_given_we_hang_up_then_no_caller_hung_up_and_one_call_ended() -> None:
    sink = Sink()
    t = translator(sink)
    feed(t, start(), up())
    t.hanging_up("c1")
    feed(t, hangup_request(), stasis_end(), destroyed())
    assert [type(e) for e in sink] == [CallOffered, CallAnswered, CallEnded]


async def test_given_channel_leaves_stasis_alive_then_call_ended_after_grace() -> None:
    sink = Sink()
    t = translator(sink)
    feed(t, start(), up(), stasis_end())  # e.g. continue in dialplan: no hang-up request
    assert not any(isinstance(e, CallEnded) for e in sink)
    await asyncio.sleep(GRACE * 3)
    ended = sink[-1]
    assert isinstance(ended, CallEnded)
    assert (ended.cause, ended.cause_text, ended.sip_code) == (16, "Normal Clearing", None)
    assert t.live_calls == frozenset()
    feed(t, destroyed(cause=16))  # late: the call already ended once
    assert sum(isinstance(e, CallEnded) for e in sink) == 1


async def test_given_stasis_end_without_any_cause_then_normal_clearing() -> None:
    sink = Sink()
    feed(translator(sink), start(), hangup_request(cause=None), stasis_end())
    ended = sink[-1]
    assert isinstance(ended, CallEnded)
    assert ended.cause == 16


async def test_given_hangup_request_twice_then_caller_hung_up_once() -> None:
    sink = Sink()
    feed(translator(sink), start(), hangup_request(), hangup_request(cause=None))
    assert [type(e) for e in sink] == [CallOffered, CallerHungUp]


async def test_given_duplicate_stasis_start_then_one_offer() -> None:
    sink = Sink()
    feed(translator(sink), start(), start())
    assert len(sink) == 1


def info(
    channels: list[dict[str, Any]], *, restarted: bool = False, first: bool = False
) -> ConnectInfo:
    return ConnectInfo(
        asterisk_id="e",
        startup_time=datetime(2026, 8, 6, tzinfo=UTC),
        restarted=restarted,
        first_connect=first,
        channels=[Channel.from_json(c) for c in channels],
        bridges=[],
    )


async def test_given_reconnect_then_live_calls_are_listed_and_vanished_ones_forgotten() -> None:
    sink = Sink()
    t = translator(sink)
    feed(t, start("c1"), up("c1"), start("c2"), up("c2"))
    sink.clear()
    await t.on_connected(info([channel_json("c1", state="Up")]))
    [connected] = sink
    assert isinstance(connected, TelephonyConnected)
    assert connected.live_call_ids == frozenset({"c1"})
    assert t.live_calls == frozenset({"c1"})
    feed(t, destroyed("c2"))  # c2 vanished while we were away: the engine closes it, not us
    assert len(sink) == 1


async def test_given_unanswered_caller_waiting_at_reconnect_then_it_is_adopted_as_a_new_call() -> (
    None
):
    sink = Sink()
    t = translator(sink)
    await t.on_connected(
        info(
            [
                channel_json("waiting", state="Ring", did="1501"),
                channel_json("answered-orphan", state="Up"),
            ],
            first=True,
        )
    )
    connected, offered = sink
    assert isinstance(connected, TelephonyConnected)
    assert connected.live_call_ids == frozenset({"answered-orphan"})
    assert connected.first_connect is True
    assert isinstance(offered, CallOffered)
    assert (offered.call_id, offered.did) == ("waiting", "1501")
    feed(t, start("waiting"))  # its buffered StasisStart: not offered twice
    assert len(sink) == 2


def bridge(bridge_id: str, kind: str, *channels: str) -> Bridge:
    return Bridge.from_json(
        {
            "id": bridge_id,
            "technology": "holding_bridge" if kind == "holding" else "simple_bridge",
            "bridge_type": kind,
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": bridge_id,
            "channels": list(channels),
            "creationtime": ari_time(),
        }
    )


async def test_given_callers_left_waiting_with_a_place_then_they_are_held_for_the_engine() -> None:
    sink = Sink()
    places = {"tagged": "1;e=tagged-q1", "talking": "1;e=talking-q1"}
    read: list[str] = []

    async def read_place(channel_id: str) -> str:
        read.append(channel_id)
        return places.get(channel_id, "")

    t = CallEventTranslator("sambung", sink, destroyed_grace=GRACE, read_place=read_place)
    connect = info(
        [
            channel_json("tagged", state="Up", did="1600"),
            channel_json("untagged", state="Up"),
            channel_json("talking", state="Up"),
            channel_json("ringing", state="Ring"),
        ],
        first=True,
    )
    connect = replace(
        connect,
        bridges=[
            bridge("sambung-queue-support", "holding", "tagged", "untagged", "ringing"),
            bridge("sambung-call-talking", "mixing", "talking", "leg-1"),
        ],
    )
    await t.on_connected(connect)
    connected = sink[0]
    assert isinstance(connected, TelephonyConnected)
    # Only answered callers in a holding bridge, or talking in their own mixing bridge with
    # one other channel (the agent's leg), are asked for their place.
    assert sorted(read) == ["tagged", "talking", "untagged"]
    held, talk = sorted(connected.held, key=lambda h: h.call_id)
    assert (held.call_id, held.did, held.bridge_id, held.place, held.leg_id) == (
        "tagged",
        "1600",
        "sambung-queue-support",
        "1;e=tagged-q1",
        None,
    )
    assert held.caller_number == "628111000111"
    assert (talk.call_id, talk.bridge_id, talk.place, talk.leg_id) == (
        "talking",
        "sambung-call-talking",
        "1;e=talking-q1",
        "leg-1",
    )
    # Still live calls for the engine to own or hang up as orphans.
    assert connected.live_call_ids == frozenset({"tagged", "untagged", "talking"})
    # A held caller's events are a call's from now on.
    feed(
        t,
        {
            "type": "ChannelDtmfReceived",
            "digit": "1",
            "duration_ms": 100,
            "channel": channel_json("tagged", state="Up"),
        },
    )
    assert isinstance(sink[-1], DigitPressed)
    feed(
        t,
        {
            "type": "ChannelDtmfReceived",
            "digit": "1",
            "duration_ms": 100,
            "channel": channel_json("untagged", state="Up"),
        },
    )
    # One with no place is nobody's call (the engine hangs it up as an orphan).
    assert [e.call_id for e in sink if isinstance(e, DigitPressed)] == ["tagged"]


async def connected_with(
    channels: list[dict[str, Any]],
    bridges: list[Bridge],
    place: Callable[[str], str] = lambda channel_id: "",
) -> tuple[TelephonyConnected, list[str], Sink]:
    """The first connect finding ``channels`` in ``bridges``; the channels whose place was
    read (``place`` gives it) and everything emitted."""
    sink = Sink()
    read: list[str] = []

    async def read_place(channel_id: str) -> str:
        read.append(channel_id)
        return place(channel_id)

    t = CallEventTranslator("sambung", sink, destroyed_grace=GRACE, read_place=read_place)
    await t.on_connected(replace(info(channels, first=True), bridges=bridges))
    connected = sink[0]
    assert isinstance(connected, TelephonyConnected)
    return connected, read, sink


async def test_given_debtors_lines_left_in_queues_then_those_in_a_bridge_are_held() -> None:
    # A debtor's line back from AMD (or from a campaign without AMD) talking to an agent or
    # waiting in the campaign's queue is held like a caller's; one in no bridge (a machine
    # message, a reminder) is nobody's to resume, and the engine hangs it up as an orphan.
    connected, read, _ = await connected_with(
        [
            channel_json("dlr-talk", state="Up", app_args="sambung,amd,HUMAN,HUMAN-800-800"),
            channel_json("dlr-wait", state="Up", app_args="sambung,dialer,kolek"),
            channel_json("dlr-reminder", state="Up", app_args="sambung,dialer,kolek"),
            channel_json("other-app", state="Up", app_args="elsewhere,dialer,kolek"),
        ],
        [
            bridge("sambung-call-dlr-talk", "mixing", "dlr-talk", "leg-1"),
            bridge("sambung-queue-dialer-kolek", "holding", "dlr-wait", "other-app"),
        ],
        lambda channel_id: f"1;e={channel_id}-q1;k=dialer",
    )
    assert sorted(read) == ["dlr-talk", "dlr-wait"]
    talk, wait = sorted(connected.held, key=lambda h: h.call_id)
    assert (talk.call_id, talk.did, talk.leg_id, talk.in_bridge) == ("dlr-talk", "", "leg-1", True)
    assert (wait.call_id, wait.did, wait.bridge_id) == (
        "dlr-wait",
        "",
        "sambung-queue-dialer-kolek",
    )


async def test_given_a_callbacks_talk_left_then_it_is_held_from_its_bridge_and_legs() -> None:
    # The attempt is no channel: its bridge holds the customer's leg and the agent's, both
    # legs of the attempt by their Stasis arguments. No place is read.
    cb = "c1-1-abc123"
    agent_phone = "PJSIP/agent1001-0000001a"
    connected, read, _ = await connected_with(
        [
            channel_json(f"{cb}-customer", state="Up", app_args=f"sambung,leg,{cb}"),
            channel_json("leg-9", state="Up", app_args=f"sambung,leg,{cb}", name=agent_phone),
            channel_json("x-customer", state="Up", app_args="sambung,leg,x"),
            channel_json("leg-7", state="Up", app_args="sambung,leg,other"),
        ],
        [
            bridge(f"sambung-call-{cb}", "mixing", f"{cb}-customer", "leg-9"),
            # A leg of another owner in the bridge: not a callback's talk.
            bridge("sambung-call-x", "mixing", "x-customer", "leg-7"),
        ],
    )
    assert read == []
    (talk,) = connected.held
    assert (talk.call_id, talk.customer_leg, talk.leg_id, talk.leg_name, talk.bridge_id) == (
        cb,
        f"{cb}-customer",
        "leg-9",
        "PJSIP/agent1001-0000001a",
        f"sambung-call-{cb}",
    )
    assert talk.in_bridge
    # Until the engine adopts its legs, they are live channels nobody owns.
    assert {f"{cb}-customer", "leg-9"} <= connected.live_call_ids


async def test_given_monitoring_sessions_left_then_they_are_found_from_their_bridges() -> None:
    connected, _, _ = await connected_with(
        [
            channel_json("sambung-sup-s1", state="Up", app_args="sambung,monitor,s1"),
            channel_json("sambung-snoop-s1-2", state="Up", app_args="sambung,monitor,s1"),
            channel_json("sambung-sup-s2", state="Up", app_args="sambung,monitor,s2"),
            channel_json("sambung-snoop-s3-1", state="Up", app_args="sambung,monitor,s3"),
        ],
        [
            bridge("sambung-monitor-s1", "mixing", "sambung-sup-s1", "sambung-snoop-s1-2"),
            # The talk ended while no engine ran: its snoop is gone.
            bridge("sambung-monitor-s2", "mixing", "sambung-sup-s2"),
            # The supervisor hung up: nothing to go on with.
            bridge("sambung-monitor-s3", "mixing", "sambung-snoop-s3-1"),
        ],
    )
    assert connected.monitors == (
        HeldMonitor("s1", "sambung-sup-s1", "sambung-snoop-s1-2"),
        HeldMonitor("s2", "sambung-sup-s2", None),
    )


async def test_given_asterisk_restarted_then_every_call_is_forgotten() -> None:
    sink = Sink()
    t = translator(sink)
    feed(t, start("c1"), up("c1"))
    await t.on_connected(info([], restarted=True))
    assert t.live_calls == frozenset()
    connected = sink[-1]
    assert isinstance(connected, TelephonyConnected)
    assert connected.restarted is True


async def test_given_disconnect_then_telephony_lost() -> None:
    sink = Sink()
    translator(sink).on_disconnected("closed (code 1006)")
    assert sink == [TelephonyLost(reason="closed (code 1006)")]


@pytest.mark.parametrize("state", ["Ring", "Up"])
async def test_given_stasis_start_with_channel_state_then_answered_once(state: str) -> None:
    sink = Sink()
    t = translator(sink)
    data = start()
    data["channel"]["state"] = state
    feed(t, data, up())
    assert sum(isinstance(e, CallAnswered) for e in sink) == (0 if state == "Up" else 1)


async def test_given_answered_callers_in_no_bridge_then_they_are_held_without_a_place_read() -> (
    None
):
    # A caller in an IVR flow is in no bridge; its session in PostgreSQL says where it is,
    # and its variables could not be read while a prompt plays (Asterisk queues the GET
    # behind the playback): none is asked for.
    sink = Sink()
    read: list[str] = []

    async def read_place(channel_id: str) -> str:
        read.append(channel_id)
        return ""

    t = CallEventTranslator("sambung", sink, destroyed_grace=GRACE, read_place=read_place)
    connect = info(
        [
            channel_json("in-flow", state="Up", did="1500"),
            channel_json("queued", state="Up"),
            channel_json("ringing", state="Ring"),
        ],
        first=True,
    )
    connect = replace(connect, bridges=[bridge("sambung-queue-support", "holding", "queued")])
    await t.on_connected(connect)
    connected = sink[0]
    assert isinstance(connected, TelephonyConnected)
    assert read == ["queued"]
    (flow,) = connected.held
    assert (flow.call_id, flow.did, flow.bridge_id, flow.place, flow.in_bridge) == (
        "in-flow",
        "1500",
        "",
        "",
        False,
    )
    # Its events are a call's from now on (the IVR's task decides what becomes of it).
    feed(
        t,
        {
            "type": "ChannelDtmfReceived",
            "digit": "1",
            "duration_ms": 100,
            "channel": channel_json("in-flow", state="Up"),
        },
    )
    assert isinstance(sink[-1], DigitPressed)
