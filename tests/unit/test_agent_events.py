"""The agents' events (``acd/events.py``) and their notifier (``acd/hub.py``): each event's wire
shape is the screens' protocol, subscribers get typed events, and a slow screen loses its
oldest messages with a gap in ``seq``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from sambung.acd.agents import AgentState
from sambung.acd.events import (
    AgentConnected,
    AgentEvent,
    AgentOffered,
    AgentStateChanged,
    CallContext,
    CallEnded,
    CallHeld,
    CallShown,
    CallUnheld,
    HoldReminder,
    OfferEnded,
)
from sambung.acd.hub import SUBSCRIBER_BUFFER, AgentHub, Delivered
from sambung.acd.service import Entry

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTEXT = CallContext(
    "e7", "c1", "support", "caller", "0812000111", "Budi", "1500", "id", T0, {"account": "ACC-77"}
)
CALL = {
    "entry_id": "e7",
    "call_id": "c1",
    "queue": "support",
    "kind": "caller",
    "caller_number": "0812000111",
    "caller_name": "Budi",
    "did": "1500",
    "language": "id",
    "enqueued_at": "2026-03-02T09:00:00+00:00",
    "attributes": {"account": "ACC-77"},
}

# Each event and the JSON object a screen receives for it (but ``seq``), keys in order.
WIRE: list[tuple[AgentEvent, dict[str, Any]]] = [
    (
        AgentStateChanged("siti", AgentState.PAUSED, "lunch", AgentState.READY, T0, None),
        {
            "type": "state",
            "agent_id": "siti",
            "state": "paused",
            "reason": "lunch",
            "previous": "ready",
            "at": "2026-03-02T09:00:00+00:00",
            "call_id": None,
        },
    ),
    (
        AgentStateChanged("siti", AgentState.ON_CALL, "", AgentState.RINGING, T0, "c1"),
        {
            "type": "state",
            "agent_id": "siti",
            "state": "on_call",
            "reason": "",
            "previous": "ringing",
            "at": "2026-03-02T09:00:00+00:00",
            "call_id": "c1",
        },
    ),
    (AgentOffered("siti", CONTEXT), {"type": "offered", "agent_id": "siti", "call": CALL}),
    (AgentConnected("siti", CONTEXT), {"type": "connected", "agent_id": "siti", "call": CALL}),
    (
        OfferEnded("siti", "c1", "rona"),
        {"type": "offer_ended", "agent_id": "siti", "call_id": "c1", "result": "rona"},
    ),
    (CallHeld("siti", "c1"), {"type": "hold", "agent_id": "siti", "call_id": "c1"}),
    (CallUnheld("siti", "c1"), {"type": "unhold", "agent_id": "siti", "call_id": "c1"}),
    (
        HoldReminder("siti", "c1", 61.25),
        {"type": "hold_reminder", "agent_id": "siti", "call_id": "c1", "held_seconds": 61.25},
    ),
    (
        CallEnded("siti", "c1", 42.5, 10.0),
        {
            "type": "call_ended",
            "agent_id": "siti",
            "call_id": "c1",
            "talk_seconds": 42.5,
            "wrap_up_seconds": 10.0,
        },
    ),
    # A callback's end has never told the wrap-up.
    (
        CallEnded("siti", "cb-1", 42.5),
        {"type": "call_ended", "agent_id": "siti", "call_id": "cb-1", "talk_seconds": 42.5},
    ),
]


def event_types(base: type[AgentEvent] = AgentEvent) -> set[type[AgentEvent]]:
    """Every event a publisher can send: the subclasses that name a wire type."""
    found: set[type[AgentEvent]] = set()
    for sub in base.__subclasses__():
        if getattr(sys.modules[sub.__module__], sub.__qualname__, None) is not sub:
            continue  # the class a slotted dataclass was made from, left behind
        if "kind" in vars(sub):
            found.add(sub)
        found |= event_types(sub)
    return found


@pytest.mark.parametrize(("event", "wire"), WIRE, ids=lambda v: getattr(v, "kind", ""))
def test_each_event_has_its_wire_shape(event: AgentEvent, wire: dict[str, Any]) -> None:
    assert list(event.to_wire().items()) == list(wire.items())
    sent = json.dumps(Delivered(7, event).to_wire(), default=str)
    assert list(json.loads(sent).items()) == [("seq", 7), *wire.items()]


def test_the_table_covers_every_event_type_and_each_has_its_own_wire_type() -> None:
    assert {type(e) for e, _ in WIRE} == event_types()
    kinds = [t.kind for t in event_types()]
    assert len(set(kinds)) == len(kinds)


def test_an_entry_shows_its_call_as_before() -> None:
    entry = Entry(
        "e7",
        "c1",
        "support",
        "caller",
        0,
        12.0,
        T0,
        12.0,
        caller_number="0812000111",
        caller_name="Budi",
        did="1500",
        language="id",
        attributes={"account": "ACC-77"},
    )
    assert entry.context() == CONTEXT
    assert list(entry.context().to_wire().items()) == list(CALL.items())


def test_subscribers_get_the_typed_events_they_asked_for_in_order() -> None:
    hub = AgentHub()
    heard: list[tuple[str, AgentEvent]] = []
    hub.subscribe(AgentEvent, lambda e: heard.append(("all", e)))
    hub.subscribe(CallShown, lambda e: heard.append(("shown", e)))
    stop = hub.subscribe(CallEnded, lambda e: heard.append(("ended", e)))
    offered = AgentOffered("siti", CONTEXT)
    held = CallHeld("made", "c2")
    ended = CallEnded("siti", "c1", 30.0, 10.0)
    for event in (offered, held, ended):
        hub.publish(event)
    assert heard == [
        ("all", offered),
        ("shown", offered),
        ("all", held),
        ("all", ended),
        ("ended", ended),
    ]
    heard.clear()
    stop()
    stop()  # twice is harmless
    hub.publish(ended)
    assert heard == [("all", ended)]


def test_a_screen_hears_only_its_agent_numbered_by_the_hub() -> None:
    hub = AgentHub()
    siti = hub.open_stream("siti")
    hub.publish(CallHeld("siti", "c1"))
    hub.publish(CallHeld("made", "c2"))  # numbered too, though nobody watches made
    hub.publish(CallUnheld("siti", "c1"))
    got = [siti.get_nowait() for _ in range(siti.qsize())]
    assert [(d.seq, d.event) for d in got] == [
        (1, CallHeld("siti", "c1")),
        (3, CallUnheld("siti", "c1")),
    ]
    hub.close_stream("siti", siti)
    hub.publish(CallHeld("siti", "c1"))
    assert siti.empty()


def test_a_slow_screen_loses_its_oldest_messages_and_sees_the_gap() -> None:
    hub = AgentHub()
    slow = hub.open_stream("siti")
    heard: list[AgentEvent] = []
    hub.subscribe(AgentEvent, heard.append)
    extra = 3
    for n in range(SUBSCRIBER_BUFFER + extra):
        hub.publish(HoldReminder("siti", "c1", float(n)))
    # The subscribers in the engine miss nothing; the screen keeps the newest it has room for.
    assert len(heard) == SUBSCRIBER_BUFFER + extra
    assert slow.qsize() == SUBSCRIBER_BUFFER
    got = [slow.get_nowait() for _ in range(SUBSCRIBER_BUFFER)]
    seqs = [d.seq for d in got]
    assert seqs == list(range(extra + 1, SUBSCRIBER_BUFFER + extra + 1))
    first = got[0].to_wire()
    assert (first["seq"], first["held_seconds"]) == (extra + 1, float(extra))
    # The next message follows on from the last one kept: the gap was only what was dropped.
    hub.publish(CallUnheld("siti", "c1"))
    assert slow.get_nowait().seq == SUBSCRIBER_BUFFER + extra + 1
