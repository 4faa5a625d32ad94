"""Hypothesis: random event sequences over small random flows (``sambung/ivr/menu.py``).

The machine never raises, never acts after the end, never reuses a prompt id, numbers its step
records without gaps, keeps exactly one timer running while (and only while) it waits for
digits and closes it before the end, and never stalls: in every phase but the end it waits for
something that will come (a prompt, its timer, the lookup's answer, the call's end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.engine.events import (
    CallEnded,
    CallerHungUp,
    CallResynced,
    DigitPressed,
    PromptFinished,
)
from sambung.ivr.menu import (
    CancelTimer,
    CheckPrompt,
    Command,
    Hangup,
    IvrEvent,
    IvrState,
    Lookup,
    LookupDone,
    Phase,
    Play,
    PromptCheck,
    RecordStep,
    StartTimer,
    StopPrompts,
    TimerFired,
    Transfer,
    start,
    step,
)
from sambung.ivr.model import (
    AttrEquals,
    AttrPresent,
    Branch,
    Calendar,
    Condition,
    ConditionNode,
    Flow,
    HangupNode,
    InBusinessHours,
    InputNode,
    IsHoliday,
    LookupNode,
    MenuNode,
    Node,
    OpenSpan,
    PlayNode,
    Retry,
    SayKind,
    SayNode,
    SetNode,
    TransferNode,
)

CID = "c1"
T0 = datetime(2026, 8, 14, 9, 0, tzinfo=UTC)  # Friday 16:00 in Jakarta, the holiday ahead
ATTRS = {"caller_number": "+62811", "did": "1500100", "amount": "1250000", "bad": "1.2.3"}
CAL = Calendar(
    "office",
    "Asia/Jakarta",
    (OpenSpan(frozenset(range(5)), time(8), time(17)),),
    frozenset({date(2026, 8, 17)}),
)
PROMPTS = st.sampled_from([(), ("sound:a",), ("sound:a", "sound:b")])
CONDITIONS: list[Condition] = [
    InBusinessHours("office"),
    IsHoliday("office"),
    AttrEquals("x", "1"),
    AttrPresent("crm_name"),
    InBusinessHours("nope"),
]


NODE_KINDS = [
    *["menu"] * 3, *["input"] * 2, "play", "cond", "set", *["lookup"] * 2, "say", "transfer",
    "hangup",
]  # fmt: skip


@st.composite
def retries(draw: st.DrawFn, target: st.SearchStrategy[str]) -> Retry:
    return Retry(
        draw(st.integers(1, 3)),
        draw(PROMPTS),
        draw(PROMPTS),
        draw(st.just("") | target),
    )


@st.composite
def nodes(draw: st.DrawFn, nid: str, target: st.SearchStrategy[str]) -> Node:
    kind = draw(st.sampled_from(NODE_KINDS))
    if kind == "play":
        return PlayNode(nid, draw(PROMPTS), draw(target), draw(st.booleans()))
    if kind == "menu":
        keys = draw(st.lists(st.sampled_from("1230"), unique=True, max_size=3))
        return MenuNode(
            nid,
            draw(PROMPTS),
            tuple((k, draw(target)) for k in keys),
            timeout_seconds=5.0,
            retry=draw(retries(target)),
            repeat_key=draw(st.sampled_from([None, "9"])),
            zero_out=draw(st.booleans()),
        )
    if kind == "input":
        lo = draw(st.integers(0, 3))
        return InputNode(
            nid,
            draw(PROMPTS),
            "acct",
            draw(target),
            min_length=lo,
            max_length=draw(st.integers(max(lo, 1), 5)),
            terminator=draw(st.sampled_from(["#", None, "*"])),
            pattern=draw(st.sampled_from([None, "[1-9][0-9]*", "("])),  # "(": a broken pattern
            retry=draw(retries(target)),
        )
    if kind == "cond":
        branches = draw(
            st.lists(st.builds(Branch, st.sampled_from(CONDITIONS), target), max_size=3)
        )
        return ConditionNode(nid, tuple(branches), draw(target))
    if kind == "set":
        values = draw(
            st.sampled_from([(("x", "1"),), (("language", "en"),), (("language", "xx"),)])
        )
        return SetNode(nid, values, draw(target))
    if kind == "lookup":
        url = draw(st.sampled_from(["http://crm/{caller_number}", "http://crm/{acct}"]))
        prefix = draw(st.sampled_from(["", "crm_"]))
        return LookupNode(nid, url, draw(target), draw(target), store_prefix=prefix)
    if kind == "say":
        value = draw(st.sampled_from(["amount", "bad", "acct", "nope"]))
        kind_: SayKind = draw(st.sampled_from(["number", "digits", "money"]))
        return SayNode(nid, value, kind_, draw(target), draw(PROMPTS), draw(PROMPTS))
    if kind == "transfer":
        return TransferNode(nid, "cs", draw(PROMPTS))
    return HangupNode(nid, draw(PROMPTS), "done")


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    ids = [f"n{i}" for i in range(draw(st.integers(1, 6)))]
    target = st.sampled_from(ids)
    made = [draw(nodes(nid, target)) for nid in ids]
    return Flow(
        "prop",
        ("1500100",),
        ids[0],
        tuple((n.id, n) for n in made),
        calendars=(CAL,),
        zero_out_target=draw(st.none() | target),
    )


@dataclass
class Checker:
    """What the call task would know, and the invariants over it."""

    flow: Flow
    played: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)  # prompts stopped or finished
    timers_ever: set[str] = field(default_factory=set)
    timers: set[str] = field(default_factory=set)  # started, not cancelled nor fired
    seq: int = 0
    lookups: list[str] = field(default_factory=list)
    abandoned: int = 0

    def deliver(self, event: IvrEvent) -> None:
        # The call task drops a timer once it fires; the machine may no longer want it.
        if isinstance(event, TimerFired):
            self.timers.discard(event.timer_id)
        finished = isinstance(event, PromptFinished) or (
            isinstance(event, PromptCheck) and not event.playing
        )
        if finished and isinstance(event, PromptFinished | PromptCheck):
            self.gone.add(event.prompt_id)

    def check(self, before: IvrState | None, state: IvrState, cmds: list[Command]) -> None:
        if before is not None and before.phase is Phase.ENDED:
            assert (state, cmds) == (before, [])
            return
        if before is not None and before.phase is Phase.ENDING:
            assert cmds == [], "nothing more once the flow has ended the call"
        for c in cmds:
            match c:
                case Play(prompt_id=pid):
                    assert pid not in self.played, f"prompt id {pid} reused"
                    self.played.add(pid)
                case StopPrompts(prompt_ids=ids):
                    assert ids, "an empty StopPrompts"
                    assert set(ids) <= self.played
                    self.gone |= set(ids)
                case StartTimer(timer_id=tid):
                    assert tid not in self.timers_ever, f"timer id {tid} reused"
                    self.timers_ever.add(tid)
                    self.timers.add(tid)
                case CancelTimer(timer_id=tid):
                    assert tid in self.timers, f"cancelling {tid}, not running"
                    self.timers.remove(tid)
                case RecordStep(seq=seq, kind=kind):
                    assert seq == self.seq + 1, "step records numbered without gaps"
                    self.seq = seq
                    self.abandoned += kind == "abandoned"
                case Lookup(node_id=nid):
                    self.lookups.append(nid)
                case CheckPrompt(prompt_id=pid):
                    assert pid in state.playing
                case Hangup() | Transfer():
                    assert state.phase is Phase.ENDING
                case _:
                    pass
        assert state.path_seq == self.seq
        assert set(state.playing) <= self.played - self.gone
        running = {state.timer_id} if state.timer_id is not None else set()
        assert self.timers == running, "exactly the state's timer runs"
        assert (state.phase is Phase.WAITING_DIGITS) == (state.timer_id is not None)
        if state.phase is Phase.PLAYING:
            assert state.playing, "playing nothing: the call would stall"
        if state.phase is Phase.LOOKING_UP:
            assert self.lookups[-1:] == [state.node_id]
        if state.phase in (Phase.ENDING, Phase.ENDED):
            assert not self.timers
            assert state.end_reason
        assert state.attributes["language"] == state.language
        assert state.language in self.flow.languages
        assert self.abandoned <= 1
        if self.abandoned:
            assert state.end_reason == "caller_abandoned_ivr"


# Weighted: the likely events (a key, the playing prompt ending, the running timer) most.
KINDS = [
    *["key"] * 8, *["prompt"] * 6, "prompt_any", "check", *["timer"] * 4, "timer_any",
    *["lookup"] * 3, "lookup_any", "resync", "bye", "ended",
]  # fmt: skip


def draw_event(data: st.DataObject, state: IvrState, chk: Checker, at: datetime) -> IvrEvent:
    """One event, mostly a likely one (a key, the playing prompt ending, the running timer)."""
    kind = data.draw(st.sampled_from(KINDS))
    if kind == "prompt" and state.playing:
        return PromptFinished(CID, state.playing[0], at, data.draw(st.booleans()))
    if kind in ("prompt", "prompt_any", "check"):
        pid = data.draw(st.sampled_from([*sorted(chk.played), "none"]))
        if kind == "check":
            return PromptCheck(pid, data.draw(st.booleans()), at)
        return PromptFinished(CID, pid, at, data.draw(st.booleans()))
    if kind == "timer" and state.timer_id is not None:
        return TimerFired(state.timer_id, at)
    if kind in ("timer", "timer_any"):
        return TimerFired(data.draw(st.sampled_from([*sorted(chk.timers_ever), "t"])), at)
    if kind in ("lookup", "lookup_any"):
        nid = state.node_id
        if kind == "lookup_any":
            nid = data.draw(st.sampled_from([n for n, _ in state.flow.nodes]))
        answer = data.draw(
            st.sampled_from([{}, {"name": "Budi"}, {"language": "en"}, {"language": "zz"}])
        )
        return LookupDone(nid, data.draw(st.booleans()), answer, at)
    if kind == "resync":
        return CallResynced(CID, at)
    if kind == "bye":
        return CallerHungUp(CID, 16, at)
    if kind == "ended":
        reason = data.draw(st.sampled_from([None, "asterisk_restart"]))
        return CallEnded(CID, 16, "", at, reason=reason)
    return DigitPressed(CID, data.draw(st.sampled_from("0123456789*#")), 80, at)


@settings(max_examples=200, deadline=None)
@given(flow=flows(), data=st.data())
def test_random_events_keep_the_invariants(flow: Flow, data: st.DataObject) -> None:
    at = T0
    chk = Checker(flow)
    state, cmds = start(CID, flow, at, ATTRS)
    chk.check(None, state, cmds)
    late = 0
    for _ in range(data.draw(st.integers(0, 40), label="events")):
        if state.phase in (Phase.ENDING, Phase.ENDED):
            late += 1
            if late > 3:  # a few events after the end are enough to see they do nothing
                break
        at += timedelta(seconds=data.draw(st.integers(0, 4 * 3600)))
        event = draw_event(data, state, chk, at)
        chk.deliver(event)
        before = state
        state, cmds = step(before, event)
        chk.check(before, state, cmds)
    # However it went, the call's end closes everything.
    before = state
    state, cmds = step(state, CallEnded(CID, 16, "Normal Clearing", at))
    chk.check(before, state, cmds)
    assert state.phase is Phase.ENDED
    assert not chk.timers


@settings(max_examples=100, deadline=None)
@given(flow=flows(), keys=st.text(alphabet="0123456789*#", max_size=30))
def test_only_keys_and_prompt_ends_never_stall(flow: Flow, keys: str) -> None:
    """A caller who only presses keys while the first prompt in the queue keeps finishing."""
    chk = Checker(flow)
    state, cmds = start(CID, flow, T0, ATTRS)
    chk.check(None, state, cmds)
    for k in keys:
        batch: list[IvrEvent] = [PromptFinished(CID, p, T0) for p in state.playing[:1]]
        batch.append(DigitPressed(CID, k, 80, T0))
        for event in batch:
            chk.deliver(event)
            before = state
            state, cmds = step(before, event)
            chk.check(before, state, cmds)
