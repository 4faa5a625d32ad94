"""Hypothesis: random lines over random event sequences (``sambung/dialer/line_machine.py``).

A driver plays the call task's part: it answers each command that has a reply, lets the queue
connect agents and end, and otherwise delivers what Asterisk might send (in any order, late,
duplicated), the timer when a deadline passes, or ``Stopped`` at any moment. Over every run:
exactly one result; nothing after it; a live answer is connected or counted abandoned; the
call is hung up at most once, and at the end it is hung up, over, or the queue's; every phase
that waits has a deadline, so a silent call still ends. And fed anything at all, the machine
never raises and never acts after the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.dialer.facts import AttemptEndedFact
from sambung.dialer.line_machine import (
    LOST_REASONS,
    REPLIED,
    AgentConnected,
    AmdGone,
    AmdStarted,
    AmdUnavailable,
    AmdVerdict,
    Answered,
    CalleeLeft,
    Command,
    Fault,
    Finished,
    HandToQueue,
    Hangup,
    KeyPressed,
    LineEnded,
    LineEvent,
    LineSpec,
    LineState,
    Log,
    NotifyConnected,
    NotifyLive,
    Now,
    ObserveConnectDelay,
    Originate,
    Originated,
    OriginateFailed,
    OriginateUncertain,
    Phase,
    Play,
    PlayFailed,
    PlayStarted,
    PromptDone,
    QueueDone,
    Record,
    StartAmd,
    Stopped,
    TimedOut,
    start,
    step,
)
from sambung.engine.facts import CallEndedFact

W0 = datetime(2026, 8, 14, 2, 0, tzinfo=UTC)
AID = "a1"
PROMPTS = [f"{AID}-d-machine", f"{AID}-d-reminder", "elsewhere"]
# Phases in which the call task waits on the call's inbox (and so needs a deadline).
WAITING = {Phase.RINGING, Phase.AMD, Phase.MACHINE_MESSAGE, Phase.REMINDER, Phase.REMINDER_WAIT}
# What may be carried out inside the queue's on_connected, where nothing can be awaited.
NO_AWAIT = (Record, ObserveConnectDelay, Log, NotifyConnected)
MAX_EVENTS = 30

specs = st.builds(
    LineSpec,
    attempt_id=st.just(AID),
    campaign=st.just("kolek"),
    queue=st.just("dialer-kolek"),
    mode=st.sampled_from(["predictive", "progressive", "preview", "reminder"]),
    phone=st.just("081234567890"),
    debtor_name=st.just("Budi"),
    language=st.sampled_from(["id", "en"]),
    amount_due=st.sampled_from([Decimal("1500000"), Decimal("0"), Decimal("-5")]),
    context=st.just((("account_id", "ACC1"),)),
    endpoint=st.just("PJSIP/0812@trunk"),
    caller_id=st.just("021"),
    ring_seconds=st.sampled_from([6, 20]),
    amd=st.booleans(),
    machine_message=st.sampled_from([(), ("sound:vm",)]),
    reminder_key=st.sampled_from(["1", "1", "1", "0", ""]),
    reminder_wait=st.sampled_from([0.0, 6.0]),
    pinned_agent=st.sampled_from([None, "siti"]),
)


def at(t: float) -> Now:
    return Now(t, W0 + timedelta(seconds=t))


def inbox_events(t: float) -> st.SearchStrategy[LineEvent]:
    """Anything Asterisk might send about the call, at any time."""
    now = at(t)
    return st.one_of(
        st.just(Answered(now.wall, now)),
        st.builds(
            LineEnded,
            cause=st.sampled_from([16, 17, 19, 21, 34, 0]),
            cause_text=st.just("x"),
            sip_code=st.sampled_from([None, 486, 480, 603, 503]),
            reason=st.sampled_from([None, None, "asterisk_restart"]),
            cancelled=st.booleans(),
            now=st.just(now),
        ),
        st.just(CalleeLeft(now)),
        st.builds(
            AmdVerdict,
            st.sampled_from(["HUMAN", "MACHINE", "NOTSURE", "HANGUP"]),
            st.just("C"),
            st.just(now),
        ),
        st.builds(PromptDone, st.sampled_from(PROMPTS), st.just(now)),
        st.builds(KeyPressed, st.sampled_from(["1", "0", "5"]), st.just(now)),
    )


def likely(state: LineState, t: float) -> st.SearchStrategy[LineEvent]:
    """What usually comes next in the phase, so that runs get far."""
    now = at(t)
    match state.phase:
        case Phase.RINGING:
            return st.just(Answered(now.wall, now))
        case Phase.AMD:
            return st.builds(
                AmdVerdict, st.sampled_from(["HUMAN", "MACHINE"]), st.just("C"), st.just(now)
            )
        case Phase.MACHINE_MESSAGE | Phase.REMINDER if state.prompt is not None:
            return st.just(PromptDone(state.prompt, now))
    return st.just(KeyPressed(state.spec.reminder_key, now))


def reply_to(cmd: Command, t: float) -> st.SearchStrategy[LineEvent]:
    now = at(t)
    match cmd:
        case Originate():
            return st.sampled_from(
                [Originated(now)] * 4
                + [OriginateFailed("refused", now), OriginateUncertain("timed out", now)]
            )
        case StartAmd():
            return st.sampled_from(
                [AmdStarted(now)] * 4 + [AmdGone(now), AmdUnavailable("500", now)]
            )
        case Play(prompt_id=pid):
            return st.sampled_from([PlayStarted(pid, now)] * 3 + [PlayFailed(pid, now)])
        case HandToQueue():
            return st.sampled_from(
                [
                    AgentConnected("siti", now),
                    AgentConnected("made", now),
                    QueueDone("completed", now),
                    QueueDone("overflow_hangup", now),
                    QueueDone("caller_abandoned_queue", now),
                ]
            )
    raise AssertionError(cmd)


@dataclass
class Run:
    spec: LineSpec
    steps: list[tuple[LineEvent | None, LineState, LineState, list[Command]]] = field(
        default_factory=list
    )

    @property
    def commands(self) -> list[Command]:
        return [c for *_, cmds in self.steps for c in cmds]

    @property
    def final(self) -> LineState:
        return self.steps[-1][2]

    def fed(self, kind: type) -> bool:
        return any(isinstance(ev, kind) for ev, *_ in self.steps)


def drive(data: st.DataObject, spec: LineSpec) -> Run:
    """One line as the call task would run it, with a random world around it."""
    state, cmds = start(spec)
    run = Run(spec, [(None, state, state, cmds)])
    awaiting: Command | None = cmds[-1] if cmds and isinstance(cmds[-1], REPLIED) else None
    t = 0.0
    for n in range(MAX_EVENTS + 10):
        if state.phase is Phase.ENDED:
            break
        t += data.draw(st.sampled_from([0.0, 0.4, 2.0]))
        quiet = n >= MAX_EVENTS  # the world falls silent: only the timer is left
        if not quiet and data.draw(st.integers(0, 40)) == 40:
            ev: LineEvent = Stopped(at(t), cancelled=data.draw(st.booleans()))
        elif awaiting is not None:
            if quiet and isinstance(awaiting, HandToQueue):
                ev = QueueDone("completed", at(t))  # a queue always ends its call
            else:
                ev = data.draw(reply_to(awaiting, t))
        else:
            assert state.phase in WAITING, state.phase
            assert state.deadline is not None, f"{state.phase} waits with no deadline"
            if quiet or data.draw(st.integers(0, 4)) == 4:
                t = max(t, state.deadline)
                ev = TimedOut(at(t))
            elif data.draw(st.booleans()):
                ev = data.draw(likely(state, t))
            else:
                ev = data.draw(inbox_events(t))
        before = state
        state, cmds = step(state, ev)
        run.steps.append((ev, before, state, cmds))
        if isinstance(ev, AgentConnected):
            assert all(isinstance(c, NO_AWAIT) for c in cmds), cmds
        replied = [c for c in cmds if isinstance(c, REPLIED)]
        if replied:
            assert len(replied) == 1
            assert cmds[-1] is replied[0], "a command with a reply is the last of its step"
            awaiting = replied[0]
        elif not isinstance(ev, AgentConnected):
            awaiting = None  # answered (agents connecting leave the queue running)
    return run


@settings(max_examples=600, deadline=None)
@given(spec=specs, data=st.data())
def test_every_line_ends_with_exactly_one_result_and_nothing_after(
    spec: LineSpec, data: st.DataObject
) -> None:
    run = drive(data, spec)
    assert run.final.phase is Phase.ENDED, "a line must end even if the world falls silent"
    finishing = [
        i for i, (*_, cmds) in enumerate(run.steps) if any(isinstance(c, Finished) for c in cmds)
    ]
    assert len(finishing) == 1
    i = finishing[0]
    assert i == len(run.steps) - 1, "no step after the one that finished"
    cmds = run.steps[i][3]
    tail = cmds[[type(c) for c in cmds].index(Finished) + 1 :]
    assert len(tail) <= 1
    assert all(isinstance(c, Fault) for c in tail), tail
    (result,) = (c.result for c in cmds if isinstance(c, Finished))
    assert result.outcome == run.final.outcome
    ends = [c.fact for c in run.commands if isinstance(c, Record)]
    assert sum(isinstance(f, AttemptEndedFact) for f in ends) == 1
    assert sum(isinstance(f, CallEndedFact) for f in ends) == (0 if run.final.handed_over else 1)


@settings(max_examples=600, deadline=None)
@given(spec=specs, data=st.data())
def test_a_live_answer_is_connected_or_counted_abandoned(
    spec: LineSpec, data: st.DataObject
) -> None:
    run = drive(data, spec)
    s = run.final
    went_live = any(isinstance(c, NotifyLive) for c in run.commands)
    # A live answer whose line ended while AMD listened (the debtor hung up, or Asterisk
    # restarted) never went on to the queue.
    ended_in_amd = s.end_reason == "hung_up_during_amd" or (
        s.outcome == "lost" and s.end_reason in LOST_REASONS
    )
    assert went_live == (s.live_at is not None and not ended_in_amd)
    counted_live = s.live_at is not None or s.outcome in ("connected", "abandoned")
    if s.live_at is not None:
        assert counted_live
    cut_short = run.fed(Stopped) or any(isinstance(c, Fault) for c in run.commands)
    if went_live and not cut_short:
        agentless = spec.mode == "reminder"
        allowed = {"connected", "reminder"} if agentless else {"connected", "abandoned"}
        if s.end_reason in LOST_REASONS:
            allowed = allowed | {"lost"}  # Asterisk restarted under the live answer
        assert s.outcome in allowed
        assert (s.outcome == "connected") == (s.connected_at is not None)
        assert (s.outcome == "connected") == any(
            isinstance(c, NotifyConnected) for c in run.commands
        )
    if s.outcome in ("connected", "abandoned", "lost") and s.live_at is not None:
        (ended,) = (
            c.fact
            for c in run.commands
            if isinstance(c, Record) and isinstance(c.fact, AttemptEndedFact)
        )
        assert ended.connect_seconds is not None
        assert ended.connect_seconds >= 0


@settings(max_examples=600, deadline=None)
@given(spec=specs, data=st.data())
def test_the_line_is_hung_up_at_most_once_and_never_left_up(
    spec: LineSpec, data: st.DataObject
) -> None:
    run = drive(data, spec)
    s = run.final
    hangups = [c for c in run.commands if isinstance(c, Hangup)]
    assert len(hangups) <= 1
    if s.answered_at is not None:
        # Answered: Asterisk said it is over, the queue ran it to its end, or we hung up.
        assert (s.ended is not None) or s.handed_over or hangups == [Hangup("normal")]
        assert not (s.handed_over and hangups)
    elif hangups:
        assert hangups == [Hangup("no_answer")]
        # The ring backstop: after a ring whose end was never heard, or an originate that got
        # no reply and of whose channel nothing was heard (hung up by its id all the same);
        # or the task stopped while the line might still ring.
        assert s.end_reason in ("ring_timeout", "originate_uncertain", "task_stopped")
    else:
        # Never answered and not hung up by us: Asterisk ended it, it was never placed, or the
        # service had hung it up itself before the task stopped.
        cancelled = run.fed(Stopped) and s.outcome == "cancelled"
        assert s.ended is not None or s.end_reason == "originate_failed" or cancelled


@settings(max_examples=600, deadline=None)
@given(spec=specs, data=st.data())
def test_amd_off_never_starts_amd_and_amd_on_always_does_once_answered(
    spec: LineSpec, data: st.DataObject
) -> None:
    run = drive(data, spec)
    amd = [c for c in run.commands if isinstance(c, StartAmd)]
    answered = run.final.answered_at is not None
    assert len(amd) == (1 if spec.amd and answered else 0)


ANY_EVENT = st.one_of(
    inbox_events(1.0),
    st.builds(TimedOut, st.just(at(2.0))),
    st.builds(Stopped, st.just(at(3.0)), st.booleans()),
    st.sampled_from(
        [
            Originated(at(0.1)),
            OriginateFailed("x", at(0.1)),
            AmdStarted(at(1.0)),
            AmdGone(at(1.0)),
            AmdUnavailable("x", at(1.0)),
            AgentConnected("siti", at(4.0)),
            QueueDone("completed", at(5.0)),
            *(PlayStarted(p, at(1.0)) for p in PROMPTS),
            *(PlayFailed(p, at(1.0)) for p in PROMPTS),
        ]
    ),
)


@settings(max_examples=400, deadline=None)
@given(spec=specs, events=st.lists(ANY_EVENT, max_size=20))
def test_fed_anything_the_machine_never_raises_nor_acts_after_the_end(
    spec: LineSpec, events: list[LineEvent]
) -> None:
    state, _ = start(spec)
    finished = 0
    for ev in events:
        before = state
        state, cmds = step(state, ev)
        if before.phase is Phase.ENDED:
            assert (state, cmds) == (before, [])
        finished += sum(isinstance(c, Finished) for c in cmds)
        assert (state.phase is Phase.ENDED) == (finished == 1)
    assert replace(state) == state  # still a plain frozen value
