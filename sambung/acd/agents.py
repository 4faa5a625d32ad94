"""Agents and their states: the one place where an agent's state changes.

States: ``logged_out``, ``ready``, ``reserved`` (picked by routing, not yet rung), ``ringing``,
``on_call``, ``on_hold`` (the phone put the call on hold), ``wrap_up`` and ``paused`` (with a
reason). Every change is published to listeners (facts in PostgreSQL, metrics, the agent's
event stream) with the time it happened, so the state log is complete.

Asking for something the state does not allow is a domain error naming the agent, its state and
what was asked (``AgentStateError``), never a silent no-op. Pause and log-out asked during a call
are kept and applied when the call (and its wrap-up) is over, as agents expect from a desk phone.
A phone that is not registered cannot be ready: login and ready are refused while it is offline,
and a ready agent whose phone drops is paused with reason ``phone_offline`` until it is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sambung.acd.routing import ReadyAgent
from sambung.engine.errors import SambungError


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RESERVED = "reserved"
    RINGING = "ringing"
    ON_CALL = "on_call"
    ON_HOLD = "on_hold"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


IN_CALL = frozenset(
    {AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL, AgentState.ON_HOLD}
)
# Reasons the engine itself pauses with; agents pick their own (break, lunch, training...).
PHONE_OFFLINE = "phone_offline"
RONA = "rona"  # ring, no answer
UNREACHABLE = "unreachable"  # registered, yet Asterisk could not ring the phone


# What a person may ask of an agent's state, from the API, the console or a phone's keys.
AGENT_ACTIONS = ("login", "ready", "pause", "logout", "end-wrap-up")


class AgentError(SambungError):
    pass


class UnknownAgent(AgentError):
    error_id = "acd.unknown_agent"
    title = "No such agent"
    http_status = 404


class UnknownAgentAction(AgentError):
    error_id = "acd.unknown_action"
    title = "No such agent action"
    http_status = 404


class AgentStateError(AgentError):
    error_id = "acd.agent_state"
    title = "Not possible in the agent's current state"
    http_status = 409


class PhoneOffline(AgentError):
    error_id = "acd.phone_offline"
    title = "The agent's phone is not registered"
    http_status = 409


@dataclass(frozen=True, slots=True)
class AgentProfile:
    agent_id: str
    name: str
    endpoint: str  # PJSIP endpoint name
    skills: tuple[tuple[str, int], ...]
    queues: frozenset[str]
    team: str = ""

    @property
    def device(self) -> str:
        return f"PJSIP/{self.endpoint}"


@dataclass(frozen=True, slots=True)
class StateChange:
    agent_id: str
    seq: int
    state: AgentState
    reason: str
    at: datetime
    previous: AgentState
    call_id: str | None
    source: str  # api, phone, routing, call, timer, system


@dataclass(slots=True)
class Agent:
    profile: AgentProfile
    state: AgentState = AgentState.LOGGED_OUT
    reason: str = ""
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    idle_since: float = 0.0  # loop clock; routing's longest-idle order
    calls_today: int = 0
    calls_day: str = ""
    last_offered: float = 0.0
    online: bool = False
    call_id: str | None = None
    pending: tuple[AgentState, str] | None = None  # pause or log out asked during a call
    seq: int = 0
    wrap_timer: asyncio.TimerHandle | None = None
    held_since: float | None = None

    def view(self) -> dict[str, object]:
        p = self.profile
        return {
            "agent_id": p.agent_id,
            "name": p.name,
            "endpoint": p.endpoint,
            "team": p.team,
            "skills": dict(p.skills),
            "queues": sorted(p.queues),
            "state": self.state.value,
            "reason": self.reason,
            "since": self.since.isoformat(),
            "phone_online": self.online,
            "call_id": self.call_id,
            "calls_today": self.calls_today,
            "pending": None if self.pending is None else self.pending[0].value,
        }


Listener = Callable[[Agent, StateChange], None]


class AgentBook:
    """Every configured agent and its state; synchronous, owned by the event loop's thread."""

    def __init__(
        self,
        profiles: Iterable[AgentProfile],
        clock: Callable[[], float],
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_ready``: called after an agent became ready (and every listener heard it)."""
        self._agents = {p.agent_id: Agent(p) for p in profiles}
        self._by_endpoint = {a.profile.endpoint: a for a in self._agents.values()}
        self._clock = clock
        self._wall = wall
        self.listeners: list[Listener] = []
        self._on_ready = on_ready

    # ---- lookups -------------------------------------------------------------------------

    def all(self) -> list[Agent]:
        return list(self._agents.values())

    def get(self, agent_id: str) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"agent {agent_id!r} is not configured")
        return agent

    def find(self, agent_id: str) -> Agent | None:
        return self._agents.get(agent_id)

    def by_endpoint(self, endpoint: str) -> Agent | None:
        return self._by_endpoint.get(endpoint)

    def by_device(self, device: str) -> Agent | None:
        tech, _, resource = device.partition("/")
        return self._by_endpoint.get(resource) if tech.upper() == "PJSIP" else None

    def ready_for_routing(self) -> list[ReadyAgent]:
        return [
            ReadyAgent(
                agent_id=a.profile.agent_id,
                skills=a.profile.skills,
                queues=a.profile.queues,
                idle_since=a.idle_since,
                calls_today=a.calls_today,
                last_offered=a.last_offered,
            )
            for a in self._agents.values()
            if a.state is AgentState.READY and a.online
        ]

    def staffed(self, queue: str) -> int:
        """Agents serving ``queue`` who are working (not paused, not logged out)."""
        return sum(
            1
            for a in self._agents.values()
            if queue in a.profile.queues
            and a.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED)
        )

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in AgentState}
        for a in self._agents.values():
            out[a.state.value] += 1
        return out

    # ---- the one mutator -------------------------------------------------------------

    def _set(
        self,
        agent: Agent,
        state: AgentState,
        reason: str = "",
        *,
        source: str,
        call_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        previous = agent.state
        if agent.wrap_timer is not None and state is not AgentState.WRAP_UP:
            agent.wrap_timer.cancel()
            agent.wrap_timer = None
        agent.state = state
        agent.reason = reason
        agent.since = at or self._wall()
        agent.call_id = call_id if state in IN_CALL or state is AgentState.WRAP_UP else None
        if state is AgentState.READY:
            agent.idle_since = self._clock()
        agent.seq += 1
        change = StateChange(
            agent.profile.agent_id,
            agent.seq,
            state,
            reason,
            agent.since,
            previous,
            call_id,
            source,
        )
        for listener in self.listeners:
            listener(agent, change)
        if state is AgentState.READY:
            self._on_ready()

    def restore(self, agent_id: str, state: AgentState, reason: str, since: datetime) -> None:
        """Put back the state a previous run left (no change is logged: it is not one)."""
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        agent.state, agent.reason, agent.since = state, reason, since
        agent.idle_since = self._clock()

    # ---- agent's own actions (API or phone) --------------------------------------------

    def login(self, agent_id: str, source: str) -> Agent:
        agent = self.get(agent_id)
        if agent.state is not AgentState.LOGGED_OUT:
            raise AgentStateError(f"agent {agent_id!r} is already logged in ({agent.state})")
        if not agent.online:
            raise PhoneOffline(
                f"agent {agent_id!r}: phone {agent.profile.endpoint} is not registered"
            )
        self._set(agent, AgentState.READY, source=source)
        return agent

    def make_ready(self, agent_id: str, source: str) -> Agent:
        agent = self.get(agent_id)
        if agent.state is AgentState.LOGGED_OUT:
            raise AgentStateError(f"agent {agent_id!r} is logged out: log in first")
        if agent.state in IN_CALL:
            agent.pending = None  # "ready after this call" cancels a pending pause
            return agent
        if agent.state is AgentState.READY:
            return agent
        if not agent.online:
            raise PhoneOffline(
                f"agent {agent_id!r}: phone {agent.profile.endpoint} is not registered"
            )
        self._set(agent, AgentState.READY, source=source)
        return agent

    def pause(self, agent_id: str, reason: str, source: str) -> Agent:
        agent = self.get(agent_id)
        if agent.state is AgentState.LOGGED_OUT:
            raise AgentStateError(f"agent {agent_id!r} is logged out")
        if agent.state in IN_CALL:
            agent.pending = (AgentState.PAUSED, reason)
            return agent
        self._set(agent, AgentState.PAUSED, reason, source=source)
        return agent

    def logout(self, agent_id: str, source: str) -> Agent:
        agent = self.get(agent_id)
        if agent.state is AgentState.LOGGED_OUT:
            return agent
        if agent.state in IN_CALL:
            agent.pending = (AgentState.LOGGED_OUT, "")
            return agent
        self._set(agent, AgentState.LOGGED_OUT, source=source)
        return agent

    # ---- what routing and calls do to an agent ----------------------------------------

    def reserve(self, agent_id: str, call_id: str) -> Agent:
        agent = self.get(agent_id)
        if agent.state is not AgentState.READY:
            raise AgentStateError(f"agent {agent_id!r} is {agent.state}, not ready")
        agent.last_offered = self._clock()
        self._set(agent, AgentState.RESERVED, source="routing", call_id=call_id)
        return agent

    def ringing(self, agent_id: str, call_id: str) -> None:
        agent = self.get(agent_id)
        if agent.state is AgentState.RESERVED and agent.call_id == call_id:
            self._set(agent, AgentState.RINGING, source="call", call_id=call_id)

    def answered(self, agent_id: str, call_id: str) -> None:
        agent = self.get(agent_id)
        if agent.state in (AgentState.RESERVED, AgentState.RINGING) and agent.call_id == call_id:
            day = self._wall().date().isoformat()
            if agent.calls_day != day:
                agent.calls_day, agent.calls_today = day, 0
            agent.calls_today += 1
            self._set(agent, AgentState.ON_CALL, source="call", call_id=call_id)

    def adopt_call(self, agent_id: str, call_id: str, since: datetime) -> None:
        """The agent talks on a call an earlier engine connected (taken over at a restart or
        a failover): on that call again, from when its talk began."""
        agent = self.get(agent_id)
        self._set(agent, AgentState.ON_CALL, source="system", call_id=call_id, at=since)

    def held(self, agent_id: str, call_id: str, on_hold: bool) -> None:
        agent = self.get(agent_id)
        if agent.call_id != call_id:
            return
        if on_hold and agent.state is AgentState.ON_CALL:
            agent.held_since = self._clock()
            self._set(agent, AgentState.ON_HOLD, source="phone", call_id=call_id)
        elif not on_hold and agent.state is AgentState.ON_HOLD:
            agent.held_since = None
            self._set(agent, AgentState.ON_CALL, source="phone", call_id=call_id)

    def offer_failed(self, agent_id: str, call_id: str, outcome: str) -> None:
        """The agent's phone did not take the call: ``rona``, ``busy`` or ``unavailable``."""
        agent = self.get(agent_id)
        if agent.call_id != call_id or agent.state not in (
            AgentState.RESERVED,
            AgentState.RINGING,
        ):
            return
        if outcome == "rona":
            # Not answering while ready means the agent is away: stop offering calls. A log-out
            # the agent already asked for still wins over the pause.
            pending, agent.pending = agent.pending, None
            if pending is not None and pending[0] is AgentState.LOGGED_OUT:
                self._set(agent, AgentState.LOGGED_OUT, source="call")
            else:
                self._set(agent, AgentState.PAUSED, RONA, source="call")
        elif outcome == "unavailable" or not agent.online:
            # Registration is the device state's to say; a failed dial only pauses the agent
            # (as offline when the phone is known to be, else as unreachable).
            self._after_call(agent, PHONE_OFFLINE if not agent.online else UNREACHABLE)
        else:
            self._after_call(agent, None)

    def call_ended(self, agent_id: str, call_id: str, wrap_up_seconds: float) -> None:
        agent = self.get(agent_id)
        if agent.call_id != call_id or agent.state not in IN_CALL:
            return
        agent.held_since = None
        if agent.state in (AgentState.RESERVED, AgentState.RINGING):
            self._after_call(agent, None)  # the caller left before the agent answered
            return
        if wrap_up_seconds <= 0:
            self._after_call(agent, None)
            return
        self._set(agent, AgentState.WRAP_UP, source="call", call_id=call_id)
        loop = asyncio.get_running_loop()
        agent.wrap_timer = loop.call_later(wrap_up_seconds, self._wrap_done, agent, call_id)

    def end_wrap_up(self, agent_id: str, source: str) -> Agent:
        """The agent is done early (disposition saved, or the button)."""
        agent = self.get(agent_id)
        if agent.state is AgentState.WRAP_UP:
            self._after_call(agent, None, source=source)
        return agent

    def _wrap_done(self, agent: Agent, call_id: str) -> None:
        agent.wrap_timer = None
        if agent.state is AgentState.WRAP_UP and agent.call_id == call_id:
            self._after_call(agent, None, source="timer")

    def _after_call(self, agent: Agent, pause_reason: str | None, source: str = "call") -> None:
        pending, agent.pending = agent.pending, None
        if pending is not None and pending[0] is AgentState.LOGGED_OUT:
            self._set(agent, AgentState.LOGGED_OUT, source=source)
        elif pending is not None:
            self._set(agent, AgentState.PAUSED, pending[1], source=source)
        elif pause_reason is not None or not agent.online:
            self._set(agent, AgentState.PAUSED, pause_reason or PHONE_OFFLINE, source=source)
        else:
            self._set(agent, AgentState.READY, source=source)

    def act(self, agent_id: str, action: str, reason: str, source: str) -> Agent:
        """One of ``AGENT_ACTIONS``; ``reason`` is the pause's (``break`` when none is given)."""
        match action:
            case "login":
                return self.login(agent_id, source)
            case "ready":
                return self.make_ready(agent_id, source)
            case "pause":
                return self.pause(agent_id, reason or "break", source)
            case "logout":
                return self.logout(agent_id, source)
            case "end-wrap-up":
                return self.end_wrap_up(agent_id, source)
        raise UnknownAgentAction(f"no agent action {action!r}; actions: {', '.join(AGENT_ACTIONS)}")

    # ---- phone registration ---------------------------------------------------------------

    def phone_state(self, agent: Agent, online: bool) -> None:
        if agent.online == online:
            return
        agent.online = online
        if not online and agent.state is AgentState.READY:
            self._set(agent, AgentState.PAUSED, PHONE_OFFLINE, source="system")
        elif online and agent.state is AgentState.PAUSED and agent.reason == PHONE_OFFLINE:
            # Paused only because the phone dropped: back to work as soon as it is back.
            self._set(agent, AgentState.READY, source="system")
