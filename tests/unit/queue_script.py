"""Drives ``acd/queue_machine.py`` as the call task does, for the machine's tests: replies are
made from the commands that asked for them, times move on by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sambung.acd.callback_rules import NumberVerdict
from sambung.acd.facts import LegEndedFact, QueueEnteredFact
from sambung.acd.queue_machine import (
    AgentAnswered,
    Bridged,
    CallbackScreened,
    CancelTimer,
    Command,
    Dial,
    Dialled,
    Enqueued,
    EnterHolding,
    EntryMade,
    Event,
    HoldingJoined,
    Instant,
    LeaveQueue,
    Log,
    MarkPlace,
    NewEntry,
    Notify,
    NotifyCall,
    Offered,
    Place,
    Play,
    QueueCallState,
    QueueRules,
    Record,
    ReleaseAgent,
    ReleaseOffer,
    StartTimer,
    TimerFired,
    ToCallback,
    resume,
    resume_talk,
    rules_of,
    start,
    step,
)
from sambung.acd.service import CallbackScreen
from sambung.acd.settings import queue_config
from sambung.engine.config import QueueSettings

CID = "c1"
BASE = datetime(2026, 12, 29, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Jakarta
OK_SCREEN = CallbackScreen(NumberVerdict(True, None, "+62812345678", None), (), BASE, None)
REFUSED = CallbackScreen(NumberVerdict(False, "withheld", None, None), (), None, "withheld")


def rules(name: str = "support", **settings: Any) -> QueueRules:
    """A queue's rules as the engine derives them from its settings (defaults, validation)."""
    base: dict[str, Any] = {"name": name, "announce_every_seconds": 30}
    return rules_of(queue_config(QueueSettings.model_validate({**base, **settings})))


def short(cmd: Command) -> str:
    """A command in a few words, for the tables."""
    match cmd:
        case LeaveQueue(outcome=outcome, counted=counted):
            return f"leave {outcome}" + ("" if counted else " (uncounted)")
        case ToCallback(not_before=nb):
            return "to callback" + (" later" if nb is not None else "")
        case ReleaseOffer(agent_id=agent, outcome=outcome, late=late):
            return f"release offer {agent} {outcome}" + (" late" if late else "")
        case ReleaseAgent(agent_id=agent, wrap_up_seconds=wrap):
            return f"release {agent} wrap {wrap:g}"
        case Notify(event=event):
            return f"publish {event.kind}"
        case NotifyCall(event=event_type):
            return f"publish {event_type.kind}"
        case Record(fact=LegEndedFact(outcome=outcome)):
            return f"fact leg ended {outcome}"
        case Record(fact=fact):
            return f"fact {type(fact).__name__}"
        case StartTimer(timer_id=tid):
            return f"start {tid.partition(':')[0]}"
        case CancelTimer(timer_id=tid):
            return f"cancel {tid.partition(':')[0]}"
        case Play(label=label):
            return f"play {label}"
        case Log(event=event):
            return f"log {event}"
        case _:
            return type(cmd).__name__


def shorts(cmds: list[Command]) -> list[str]:
    """The commands but the log lines and the place marks (their own tests look at those)."""
    return [short(c) for c in cmds if not isinstance(c, Log | MarkPlace)]


@dataclass(frozen=True)
class Step:
    """One step as it went: ``event`` None for the start."""

    event: Event | None
    before: QueueCallState | None
    commands: list[Command]
    after: QueueCallState


@dataclass
class Script:
    """One call through the machine. ``queues``: the rules of every queue it may join."""

    queues: dict[str, QueueRules]
    state: QueueCallState
    last: list[Command]
    t: float = 0.0
    made: int = 0
    legs: int = 0
    history: list[Step] = field(default_factory=list)
    adopted: str | None = None  # the entry a resumed call began with (entered before)

    @classmethod
    def start(
        cls,
        *queues: QueueRules,
        answered: bool = True,
        language: str | None = None,
        kind: str = "caller",
        pinned: str | None = None,
        caller: str = "0812345678",
    ) -> Script:
        qs = queues or (rules(),)
        state, cmds = start(
            call_id=CID,
            queue=qs[0].name,
            caller_number=caller,
            caller_name="Ani",
            language=language,
            kind=kind,
            pinned_agent=pinned,
            answered=answered,
            hold_reminder_seconds=60.0,
            at=Instant(0.0, BASE),
        )
        s = cls({q.name: q for q in qs}, state, cmds)
        s.history.append(Step(None, None, cmds, state))
        return s

    @classmethod
    def resumed(
        cls,
        *queues: QueueRules,
        waited: float = 30.0,
        joined_ago: float | None = None,
        relax_step: int = 0,
        generation: int = 0,
        kind: str = "caller",
        entry: str = f"{CID}-q7",
        priority: int = 0,
        pinned: str | None = None,
        language: str | None = None,
        caller: str = "0812345678",
        answered: bool = True,  # taken over calls are answered; kept for ``runs``' signature
    ) -> Script:
        """A call an earlier engine left waiting in the first queue: it first queued ``waited``
        seconds ago and joined this queue ``joined_ago`` seconds ago (default: then too)."""
        qs = queues or (rules(),)
        q = qs[0]
        first = BASE - timedelta(seconds=waited)
        joined = BASE - timedelta(seconds=waited if joined_ago is None else joined_ago)
        place = Place(
            entry,
            q,
            kind,
            priority,
            language or q.language,
            -waited,
            first,
            joined_wall=joined,
            pinned_agent=pinned,
        )
        state, cmds = resume(
            call_id=CID,
            place=place,
            relax_step=relax_step,
            generation=generation,
            caller_number=caller,
            caller_name="Ani",
            language=language,
            hold_reminder_seconds=60.0,
            at=Instant(0.0, BASE),
        )
        s = cls({r.name: r for r in qs}, state, cmds, adopted=entry)
        s.made = int(entry.rpartition("-q")[2])
        s.history.append(Step(None, None, cmds, state))
        return s

    @classmethod
    def resumed_talk(
        cls,
        *queues: QueueRules,
        talked: float = 45.0,
        waited: float = 30.0,
        agent: str = "siti",
        leg: str = "leg-old",
        generation: int = 0,
        entry: str = f"{CID}-q7",
    ) -> Script:
        """A call an earlier engine left talking to ``agent`` on ``leg`` for ``talked``
        seconds, after waiting ``waited`` seconds in the first queue."""
        qs = queues or (rules(),)
        q = qs[0]
        first = BASE - timedelta(seconds=waited + talked)
        place = Place(entry, q, "caller", 0, q.language, -(waited + talked), first, first)
        state, cmds = resume_talk(
            call_id=CID,
            place=place,
            agent_id=agent,
            leg_id=leg,
            talk_wall=BASE - timedelta(seconds=talked),
            generation=generation,
            caller_number="0812345678",
            caller_name="Ani",
            language=None,
            hold_reminder_seconds=60.0,
            at=Instant(0.0, BASE),
        )
        s = cls({r.name: r for r in qs}, state, cmds, adopted=entry)
        s.made = int(entry.rpartition("-q")[2])
        s.history.append(Step(None, None, cmds, state))
        return s

    # -- time and events ---------------------------------------------------------------------

    def at(self) -> Instant:
        return Instant(self.t, BASE + timedelta(seconds=self.t))

    def wait(self, seconds: float) -> Script:
        self.t += seconds
        return self

    def send(self, event: Event) -> list[Command]:
        before = self.state
        self.state, self.last = step(self.state, event)
        self.history.append(Step(event, before, self.last, self.state))
        return self.last

    def fire(self, name: str) -> list[Command]:
        tid = self.state.timer(name)
        assert tid is not None, f"no {name} timer in {self.state.timers}"
        return self.send(TimerFired(tid, self.at()))

    # -- replies, from the command that asked -------------------------------------------------

    def asked(self, kind: type) -> Any:
        """The last command of ``kind`` the machine gave (events it refused since give none)."""
        for h in reversed(self.history):
            found = [c for c in h.commands if isinstance(c, kind)]
            if found:
                return found[-1]
        raise AssertionError(f"no {kind.__name__} asked")

    def entry_made(self) -> EntryMade:
        cmd: NewEntry = self.asked(NewEntry)
        self.made += 1
        q = self.queues[cmd.queue]
        place = Place(
            f"{CID}-q{self.made}",
            q,
            cmd.kind,
            0,
            self.state.caller_language or q.language,
            cmd.enqueued_at if cmd.enqueued_at is not None else self.t,
            cmd.enqueued_wall or self.at().wall,
        )
        return EntryMade(place, self.at())

    def join(self, *, full: bool = False, position: int | None = 1) -> Script:
        """Answer the join: the entry, the holding bridge, the enqueue (and a screen)."""
        self.send(self.entry_made())
        assert isinstance(self.last[-1], EnterHolding)
        self.send(HoldingJoined(full, self.at()))
        if not full:
            self.send(Enqueued(position, self.at()))
        return self

    def screened(self, screen: CallbackScreen = OK_SCREEN) -> list[Command]:
        return self.send(CallbackScreened(screen, self.at()))

    def entry_id(self) -> str:
        assert self.state.entry is not None
        return self.state.entry.entry_id

    def offer(self, agent: str = "siti") -> list[Command]:
        self.legs += 1
        return self.send(
            Offered(self.entry_id(), agent, f"ep-{agent}", f"leg-{self.legs}", self.at())
        )

    def dialled(self, failure: str | None = None) -> list[Command]:
        cmd: Dial = self.asked(Dial)
        return self.send(Dialled(cmd.leg_id, failure, self.at()))

    def leg(self) -> str:
        assert self.state.leg is not None
        return self.state.leg.leg_id

    def answer(self) -> list[Command]:
        return self.send(AgentAnswered(self.leg(), self.at()))

    def bridged(self, ok: bool = True) -> list[Command]:
        return self.send(Bridged(ok, True, True, self.at()))


# ---- the call in each phase ---------------------------------------------------------------


def waiting(*queues: QueueRules, **start: Any) -> Script:
    s = Script.start(*queues, **start).join()
    if s.state.pending is not None:
        s.screened()
    return s


def offering(*queues: QueueRules, **start: Any) -> Script:
    s = waiting(*queues, **start)
    s.offer()
    s.dialled()
    return s


def connected(*queues: QueueRules, **start: Any) -> Script:
    s = offering(*queues, **start).wait(2)
    s.answer()
    s.bridged()
    return s


def resumed(*queues: QueueRules, **start: Any) -> Script:
    return Script.resumed(*queues, **start)


def resumed_offering(*queues: QueueRules, **start: Any) -> Script:
    s = Script.resumed(*queues, **start)
    s.offer()
    s.dialled()
    return s


def entered_ids(cmds: list[Command]) -> list[str]:
    return [
        c.fact.entry_id
        for c in cmds
        if isinstance(c, Record) and isinstance(c.fact, QueueEnteredFact)
    ]
