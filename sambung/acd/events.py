"""What the ACD tells about an agent: offers, connections, holds, ends of calls, state changes.

Each event is a frozen value naming its agent. ``AgentHub`` (``acd/hub.py``) hands it to the
engine's own subscribers as it is (the call index, the console's call cards), and to the
agent's screens: ``to_wire()`` is the JSON object the WebSocket
``/api/v1/agents/{agent_id}/events`` sends (the hub adds ``seq``). Agents' screens and
integrations read it, so each event's wire ``type`` and keys stay as they are; besides
``seq``, ``type`` and ``agent_id``:

- ``state`` (``AgentStateChanged``): state, reason, previous, at, call_id
- ``offered`` (``AgentOffered``), ``connected`` (``AgentConnected``): call
- ``offer_ended`` (``OfferEnded``): call_id, result
- ``hold`` (``CallHeld``), ``unhold`` (``CallUnheld``): call_id
- ``hold_reminder`` (``HoldReminder``): call_id, held_seconds
- ``call_ended`` (``CallEnded``): call_id, talk_seconds, wrap_up_seconds (not for a callback)

``call`` is the call as agents see it (``CallContext``): entry_id, call_id, queue, kind,
caller_number, caller_name, did, language, enqueued_at, attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sambung.acd.agents import AgentState


@dataclass(frozen=True, slots=True)
class CallContext:
    """A call (or a callback) in a queue as the agent it is offered to sees it."""

    entry_id: str
    call_id: str
    queue: str
    kind: str  # caller | callback | dialer | transfer
    caller_number: str
    caller_name: str
    did: str
    language: str
    enqueued_at: datetime  # the caller's place: kept through transfers and overflows
    attributes: Mapping[str, str]  # the IVR's inputs and lookups, or the dialer's record

    def to_wire(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "call_id": self.call_id,
            "queue": self.queue,
            "kind": self.kind,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "did": self.did,
            "language": self.language,
            "enqueued_at": self.enqueued_at.isoformat(),
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """Something the agent's screen (and whoever listens in the engine) is told."""

    kind: ClassVar[str]  # the wire ``type``
    agent_id: str

    def to_wire(self) -> dict[str, Any]:
        """The JSON object a screen receives, but its ``seq``."""
        return {"type": self.kind, "agent_id": self.agent_id, **self._body()}

    def _body(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class AgentStateChanged(AgentEvent):
    kind: ClassVar[str] = "state"
    state: AgentState
    reason: str  # "" when the state has none
    previous: AgentState
    at: datetime
    call_id: str | None

    def _body(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "reason": self.reason,
            "previous": self.previous.value,
            "at": self.at.isoformat(),
            "call_id": self.call_id,
        }


@dataclass(frozen=True, slots=True)
class CallShown(AgentEvent):
    """An event that shows the agent the call itself (an offer, a connection)."""

    call: CallContext

    def _body(self) -> dict[str, Any]:
        return {"call": self.call.to_wire()}


@dataclass(frozen=True, slots=True)
class AgentOffered(CallShown):
    """The agent's phone is being rung for the call."""

    kind: ClassVar[str] = "offered"


@dataclass(frozen=True, slots=True)
class AgentConnected(CallShown):
    """The agent and the caller are talking."""

    kind: ClassVar[str] = "connected"


@dataclass(frozen=True, slots=True)
class OfferEnded(AgentEvent):
    """The agent's phone stopped ringing without a talk: why (rona, busy, caller_left...)."""

    kind: ClassVar[str] = "offer_ended"
    call_id: str
    result: str

    def _body(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "result": self.result}


@dataclass(frozen=True, slots=True)
class CallHeld(AgentEvent):
    kind: ClassVar[str] = "hold"
    call_id: str

    def _body(self) -> dict[str, Any]:
        return {"call_id": self.call_id}


@dataclass(frozen=True, slots=True)
class CallUnheld(AgentEvent):
    kind: ClassVar[str] = "unhold"
    call_id: str

    def _body(self) -> dict[str, Any]:
        return {"call_id": self.call_id}


@dataclass(frozen=True, slots=True)
class HoldReminder(AgentEvent):
    """The caller has been on hold this long (repeated while the hold lasts)."""

    kind: ClassVar[str] = "hold_reminder"
    call_id: str
    held_seconds: float

    def _body(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "held_seconds": self.held_seconds}


@dataclass(frozen=True, slots=True)
class CallEnded(AgentEvent):
    """The agent's talk is over. ``wrap_up_seconds``: the wrap-up that follows; a callback's
    end has never said it (None), so its message has no such key."""

    kind: ClassVar[str] = "call_ended"
    call_id: str
    talk_seconds: float
    wrap_up_seconds: float | None = None

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"call_id": self.call_id, "talk_seconds": self.talk_seconds}
        if self.wrap_up_seconds is not None:
            body["wrap_up_seconds"] = self.wrap_up_seconds
        return body
