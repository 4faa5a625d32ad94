"""The dialer line's pure machine (``sambung/dialer/line_machine.py``): one row per transition that
matters, each checked as the whole trace of commands, the outcome and the calls row's reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest

from sambung.dialer import outcomes
from sambung.dialer.facts import AttemptAmdFact, AttemptConnectedFact, AttemptEndedFact
from sambung.dialer.line_machine import (
    AMD_BACKSTOP_SECONDS,
    HANDED_OVER,
    PROMPT_BACKSTOP_SECONDS,
    RING_BACKSTOP_SECONDS,
    AgentConnected,
    AmdGone,
    AmdStarted,
    AmdUnavailable,
    AmdVerdict,
    Answered,
    CalleeLeft,
    Command,
    CountAttempt,
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
    StopPrompt,
    TimedOut,
    resume,
    start,
    step,
)
from sambung.engine.facts import CallEndedFact

W0 = datetime(2026, 8, 14, 2, 0, tzinfo=UTC)
AID = "a1"
MACHINE_PROMPT = f"{AID}-d-machine"
REMINDER_PROMPT = f"{AID}-d-reminder"

SPEC = LineSpec(
    attempt_id=AID,
    campaign="kolek",
    queue="dialer-kolek",
    mode="predictive",
    phone="081234567890",
    debtor_name="Budi",
    language="id",
    amount_due=Decimal("1500000"),
    context=(("account_id", "ACC1"), ("bucket", "30")),
    endpoint="PJSIP/081234567890@trunk",
    caller_id="02150000000",
    ring_seconds=20,
    amd=True,
)
NO_AMD = {"amd": False}
REMINDER = {"mode": "reminder", "amd": False}


def now(t: float) -> Now:
    return Now(t, W0 + timedelta(seconds=t))


# ---- events, at a time in seconds on the loop clock --------------------------------------------


def originated(t: float = 0.1) -> Originated:
    return Originated(now(t))


def answered(t: float = 3.0) -> Answered:
    return Answered(W0 + timedelta(seconds=t), now(t))


def ended(
    t: float, cause: int = 16, sip: int | None = None, reason: str | None = None
) -> LineEnded:
    return LineEnded(cause, "x", sip, reason, False, now(t))


def cancelled_end(t: float) -> LineEnded:
    return LineEnded(16, "normal", 487, None, True, now(t))


def verdict(t: float, status: str) -> AmdVerdict:
    return AmdVerdict(status, "C", now(t))


def prompt_done(t: float, pid: str) -> PromptDone:
    return PromptDone(pid, now(t))


def connected(t: float, agent: str = "siti") -> AgentConnected:
    return AgentConnected(agent, now(t))


LIVE: list[LineEvent] = [originated(), answered(3.0), AmdStarted(now(3.1)), verdict(4.0, "HUMAN")]
REMINDING: list[LineEvent] = [originated(), answered(3.0), PlayStarted(REMINDER_PROMPT, now(3.1))]


def brief(cmd: Command) -> str:
    """A command in a word, for traces a row can spell out."""
    match cmd:
        case Originate():
            return "originate"
        case StartAmd():
            return "amd"
        case Play(prompt_id=pid):
            return "play:" + pid.rsplit("-", 1)[1]
        case StopPrompt():
            return "stop"
        case Hangup(reason=reason):
            return f"hangup:{reason}"
        case HandToQueue():
            return "queue"
        case Record(fact=fact):
            return type(fact).__name__.removesuffix("Fact")
        case ObserveConnectDelay(result=result):
            return f"delay:{result}"
        case CountAttempt(outcome=outcome):
            return f"count:{outcome}"
        case NotifyLive():
            return "live"
        case NotifyConnected():
            return "connected"
        case Log(event=event):
            return f"log:{event}"
        case Finished():
            return "finished"
        case Fault():
            return "fault"
    raise AssertionError(cmd)


def run(
    events: list[LineEvent], **over: Any
) -> tuple[LineState, list[Command], list[list[Command]]]:
    state, first = start(replace(SPEC, **over))
    steps = [first]
    for ev in events:
        state, cmds = step(state, ev)
        steps.append(cmds)
    return state, [c for s in steps for c in s], steps


def trace(cmds: list[Command]) -> list[str]:
    return [brief(c) for c in cmds if not isinstance(c, Log)]


def end(outcome: str, calls_row: bool = True) -> list[str]:
    return ["AttemptEnded", *(["CallEnded"] if calls_row else []), f"count:{outcome}", "finished"]


def fact(cmds: list[Command], kind: type[Any]) -> Any:
    found = [c.fact for c in cmds if isinstance(c, Record) and isinstance(c.fact, kind)]
    assert len(found) == 1, found
    return found[0]


ANSWER_FACTS = ["AttemptAnswered", "CallAnswered"]
ROWS: list[tuple[str, dict[str, Any], list[LineEvent], list[str], str, str]] = [
    # id, spec, events, trace, outcome, the calls row's end reason
    (
        "originate_refused",
        {},
        [OriginateFailed("trunk down", now(0.1))],
        ["originate", *end("failed")],
        "failed",
        "originate_failed",
    ),
    (
        "originate_unanswered_then_nothing_heard_of_the_channel",
        {},
        [OriginateUncertain("timed out", now(5.0)), TimedOut(now(5.0 + 20 + 3))],
        ["originate", "hangup:no_answer", *end("failed")],
        "failed",
        "originate_uncertain",
    ),
    (
        "originate_unanswered_but_the_channel_rang_and_was_busy",
        {},
        [OriginateUncertain("timed out", now(5.0)), ended(6.0, 17, 486)],
        ["originate", *end("busy")],
        "busy",
        "not_answered:busy",
    ),
    (
        "busy",
        {},
        [originated(), ended(4.0, 17, 486)],
        ["originate", *end("busy")],
        "busy",
        "not_answered:busy",
    ),
    (
        "engine_concluded_gone_while_ringing",
        {},
        [originated(), ended(4.0, 0, None, reason="asterisk_restart")],
        ["originate", *end("lost")],
        "lost",
        "not_answered:lost",
    ),
    (
        "asterisk_restarted_while_amd_listened",
        {},
        [
            originated(),
            answered(3.0),
            AmdStarted(now(3.1)),
            ended(4.0, 0, None, "asterisk_restart"),
        ],
        ["originate", *ANSWER_FACTS, "amd", *end("lost")],
        "lost",
        "asterisk_restart",
    ),
    (
        "the_service_hung_up_a_ringing_line",
        {},
        [originated(), cancelled_end(2.0)],
        ["originate", *end("cancelled")],
        "cancelled",
        "not_answered:cancelled",
    ),
    (
        "no_end_event_by_the_ring_backstop",
        {},
        [originated(), TimedOut(now(25.1))],
        ["originate", "hangup:no_answer", *end("no_answer")],
        "no_answer",
        "ring_timeout",
    ),
    (
        "amd_off_a_person_to_an_agent",
        NO_AMD,
        [originated(), answered(3.0), connected(4.0), QueueDone("completed", now(60.0))],
        [
            "originate",
            *ANSWER_FACTS,
            "AttemptAmd",
            "live",
            "queue",
            "delay:connected",
            "AttemptConnected",
            "connected",
            *end("connected", calls_row=False),
        ],
        "connected",
        "completed",
    ),
    (
        "gone_before_amd_could_listen",
        {},
        [originated(), answered(3.0), AmdGone(now(3.1))],
        ["originate", *ANSWER_FACTS, "amd", "hangup:normal", *end("abandoned")],
        "abandoned",
        "hung_up_at_answer",
    ),
    (
        "amd_unavailable_counts_as_a_person",
        {},
        [originated(), answered(3.0), AmdUnavailable("500", now(3.1))],
        ["originate", *ANSWER_FACTS, "amd", "AttemptAmd", "live", "queue"],
        "failed",  # in the queue: what it counts as if the task stopped now
        "",
    ),
    (
        "no_verdict_by_the_amd_backstop_counts_as_a_person",
        {},
        [originated(), answered(3.0), AmdStarted(now(3.1)), TimedOut(now(13.1))],
        ["originate", *ANSWER_FACTS, "amd", "AttemptAmd", "live", "queue"],
        "failed",
        "",
    ),
    (
        "no_agent_within_the_connect_limit_the_safe_harbour",
        {},
        [*LIVE, QueueDone("overflow_hangup", now(6.0))],
        [
            "originate",
            *ANSWER_FACTS,
            "amd",
            "AttemptAmd",
            "live",
            "queue",
            "delay:safe_harbour",
            *end("abandoned", calls_row=False),
        ],
        "abandoned",
        "overflow_hangup",
    ),
    (
        "a_person_hangs_up_in_the_queue",
        {},
        [*LIVE, QueueDone("caller_abandoned_queue", now(5.0))],
        [
            "originate",
            *ANSWER_FACTS,
            "amd",
            "AttemptAmd",
            "live",
            "queue",
            *end("abandoned", calls_row=False),
        ],
        "abandoned",
        "caller_abandoned_queue",
    ),
    (
        "asterisk_restarted_while_the_debtor_waited_for_an_agent",
        {},
        [*LIVE, QueueDone("asterisk_restart", now(5.0))],
        [
            "originate",
            *ANSWER_FACTS,
            "amd",
            "AttemptAmd",
            "live",
            "queue",
            *end("lost", calls_row=False),
        ],
        "lost",
        "asterisk_restart",
    ),
    (
        "machine_without_a_message",
        {},
        [originated(), answered(3.0), AmdStarted(now(3.1)), verdict(6.0, "MACHINE")],
        ["originate", *ANSWER_FACTS, "amd", "AttemptAmd", "hangup:normal", *end("machine")],
        "machine",
        "machine",
    ),
    (
        "machine_message_said_then_hang_up",
        {"machine_message": ("sound:vm",)},
        [
            originated(),
            answered(3.0),
            AmdStarted(now(3.1)),
            verdict(6.0, "MACHINE"),
            PlayStarted(MACHINE_PROMPT, now(6.1)),
            prompt_done(9.0, "other-prompt"),  # not ours: nothing
            prompt_done(12.0, MACHINE_PROMPT),
        ],
        [
            "originate",
            *ANSWER_FACTS,
            "amd",
            "AttemptAmd",
            "play:machine",
            "hangup:normal",
            *end("machine"),
        ],
        "machine",
        "machine",
    ),
    (
        "machine_message_refused",
        {"machine_message": ("sound:vm",)},
        [
            originated(),
            answered(3.0),
            AmdStarted(now(3.1)),
            verdict(6.0, "MACHINE"),
            PlayFailed(MACHINE_PROMPT, now(6.1)),
        ],
        [
            "originate",
            *ANSWER_FACTS,
            "amd",
            "AttemptAmd",
            "play:machine",
            "hangup:normal",
            *end("machine"),
        ],
        "machine",
        "machine",
    ),
    (
        "machine_hangs_up_during_the_message",
        {"machine_message": ("sound:vm",)},
        [
            originated(),
            answered(3.0),
            AmdStarted(now(3.1)),
            verdict(6.0, "MACHINE"),
            PlayStarted(MACHINE_PROMPT, now(6.1)),
            ended(8.0),
        ],
        ["originate", *ANSWER_FACTS, "amd", "AttemptAmd", "play:machine", *end("machine")],
        "machine",
        "machine",
    ),
    (
        "hangs_up_while_amd_listens",
        {},
        [originated(), answered(3.0), AmdStarted(now(3.1)), CalleeLeft(now(4.0)), ended(4.1)],
        ["originate", *ANSWER_FACTS, "amd", *end("abandoned")],
        "abandoned",
        "hung_up_during_amd",
    ),
    (
        "amd_says_hangup_never_counted_live",
        {},
        [originated(), answered(3.0), AmdStarted(now(3.1)), verdict(4.0, "HANGUP")],
        ["originate", *ANSWER_FACTS, "amd", "hangup:normal", *end("failed")],
        "failed",
        "",
    ),
    (
        "a_verdict_after_the_callee_left_never_counted_live",
        {},
        [
            originated(),
            answered(3.0),
            AmdStarted(now(3.1)),
            CalleeLeft(now(3.5)),
            verdict(4.0, "HUMAN"),
        ],
        ["originate", *ANSWER_FACTS, "amd", "hangup:normal", *end("failed")],
        "failed",
        "",
    ),
    (
        "reminder_heard_no_key",
        REMINDER,
        [*REMINDING, prompt_done(20.0, REMINDER_PROMPT), TimedOut(now(26.0))],
        [
            "originate",
            *ANSWER_FACTS,
            "AttemptAmd",
            "live",
            "play:reminder",
            "hangup:normal",
            *end("reminder"),
        ],
        "reminder",
        "reminder_played",
    ),
    (
        "reminder_refused_by_asterisk",
        REMINDER,
        [originated(), answered(3.0), PlayFailed(REMINDER_PROMPT, now(3.1))],
        [
            "originate",
            *ANSWER_FACTS,
            "AttemptAmd",
            "live",
            "play:reminder",
            "hangup:normal",
            *end("reminder"),
        ],
        "reminder",
        "reminder_played",
    ),
    (
        "reminder_hung_up_on",
        REMINDER,
        [*REMINDING, ended(9.0)],
        ["originate", *ANSWER_FACTS, "AttemptAmd", "live", "play:reminder", *end("reminder")],
        "reminder",
        "reminder_played",
    ),
    (
        "reminder_key_while_playing_no_agent_free",
        REMINDER,
        [
            *REMINDING,
            KeyPressed("2", now(5.0)),  # not the key: nothing
            KeyPressed("1", now(6.0)),
            QueueDone("overflow_hangup", now(9.0)),
        ],
        [
            "originate",
            *ANSWER_FACTS,
            "AttemptAmd",
            "live",
            "play:reminder",
            "stop",
            "queue",
            "delay:safe_harbour",
            *end("reminder", calls_row=False),
        ],
        "reminder",
        "overflow_hangup",
    ),
    (
        "reminder_key_after_the_prompt_an_agent",
        REMINDER,
        [
            *REMINDING,
            prompt_done(20.0, REMINDER_PROMPT),
            KeyPressed("1", now(22.0)),
            connected(23.0),
            QueueDone("completed", now(90.0)),
        ],
        [
            "originate",
            *ANSWER_FACTS,
            "AttemptAmd",
            "live",
            "play:reminder",
            "queue",
            "delay:connected",
            "AttemptConnected",
            "connected",
            *end("connected", calls_row=False),
        ],
        "connected",
        "completed",
    ),
    (
        "reminder_key_that_cannot_be_said_is_a_fault",
        {**REMINDER, "reminder_key": ""},
        [originated(), answered(3.0)],
        [
            "originate",
            *ANSWER_FACTS,
            "AttemptAmd",
            "live",
            "hangup:normal",
            *end("failed"),
            "fault",
        ],
        "failed",
        "",
    ),
    (
        # A task that fails while its line rings hangs it up: the line has no other owner,
        # and its record is held back as lost, never redialled at once beside it.
        "stopped_while_ringing",
        {},
        [originated(), Stopped(now(2.0))],
        ["originate", "hangup:no_answer", *end("lost")],
        "lost",
        "task_stopped",
    ),
    (
        "stopped_before_the_originate_returned",
        {},
        [Stopped(now(0.05))],
        ["originate", "hangup:no_answer", *end("lost")],
        "lost",
        "task_stopped",
    ),
    (
        # The service hung the line up itself (stop, paid, shutdown) before the task ended.
        "stopped_after_the_service_cancelled",
        {},
        [originated(), Stopped(now(2.0), cancelled=True)],
        ["originate", *end("cancelled")],
        "cancelled",
        "",
    ),
    (
        # A live answer cut short by the task's end is neither connected nor abandoned: see
        # the properties' carve-out.
        "stopped_in_the_queue",
        {},
        [*LIVE, Stopped(now(5.0))],
        [
            "originate",
            *ANSWER_FACTS,
            "amd",
            "AttemptAmd",
            "live",
            "queue",
            "hangup:normal",
            *end("failed"),
        ],
        "failed",
        "",
    ),
]


@pytest.mark.parametrize(
    ("spec", "events", "expected", "outcome", "reason"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_line(
    spec: dict[str, Any],
    events: list[LineEvent],
    expected: list[str],
    outcome: str,
    reason: str,
) -> None:
    state, cmds, _ = run(events, **spec)
    assert trace(cmds) == expected
    assert state.outcome == outcome
    assert state.end_reason == reason
    finished = [c for c in cmds if isinstance(c, Finished)]
    if finished:
        assert state.phase is Phase.ENDED
        assert finished[0].result.outcome == outcome


def test_given_an_originate_when_it_returns_then_the_ring_backstop_is_set() -> None:
    state, cmds, _ = run([originated(1.0)])
    assert cmds[0] == Originate(
        SPEC.endpoint,
        SPEC.caller_id,
        20,
        ("kolek",),
        (("SAMBUNG_CAMPAIGN", "kolek"), ("SAMBUNG_ATTEMPT", AID)),
    )
    assert (state.phase, state.deadline) == (Phase.RINGING, 1.0 + 20 + RING_BACKSTOP_SECONDS)


def test_given_amd_started_then_its_verdict_is_awaited_until_the_backstop() -> None:
    state, _, _ = run([originated(), answered(3.0), AmdStarted(now(3.5))])
    assert (state.phase, state.deadline) == (Phase.AMD, 3.5 + AMD_BACKSTOP_SECONDS)


def test_given_a_busy_number_then_the_cause_and_sip_status_are_kept() -> None:
    state, cmds, _ = run([originated(), ended(4.0, 17, 486)])
    assert (state.cause, state.sip_code) == (17, 486)
    row = fact(cmds, CallEndedFact)
    assert (row.hangup_cause, row.hangup_cause_text, row.sip_code) == (17, "x", 486)


def test_given_the_engine_concluded_the_end_then_no_cause_is_claimed() -> None:
    state, cmds, _ = run([originated(), ended(4.0, 0, 503, reason="asterisk_restart")])
    assert state.cause is None
    row = fact(cmds, CallEndedFact)
    assert (row.hangup_cause, row.hangup_cause_text, row.sip_code) == (None, None, 503)


def test_given_a_person_connected_then_the_delay_is_from_live_to_the_agent() -> None:
    state, cmds, _ = run([*LIVE, connected(5.5, "made"), QueueDone("completed", now(70.0))])
    assert ObserveConnectDelay("connected", 1.5) in cmds
    conn = fact(cmds, AttemptConnectedFact)
    assert (conn.agent_id, conn.at, conn.connect_seconds) == ("made", now(5.5).wall, 1.5)
    done = fact(cmds, AttemptEndedFact)
    assert (done.outcome, done.connect_seconds, done.live_at) == ("connected", 1.5, now(4.0).wall)
    assert (state.agent_id, state.connected_at, state.live_at) == ("made", 5.5, 4.0)


def test_given_no_agent_then_the_abandon_is_timed_from_live_to_the_end() -> None:
    state, cmds, _ = run([*LIVE, QueueDone("overflow_hangup", now(6.25))])
    assert ObserveConnectDelay("safe_harbour", 2.25) in cmds
    assert fact(cmds, AttemptEndedFact).connect_seconds == 2.25
    assert state.notes == ("safe_harbour",)


def test_given_a_live_answer_then_the_amd_fact_carries_the_verdict_and_live_time() -> None:
    _, cmds, _ = run(LIVE)
    assert fact(cmds, AttemptAmdFact) == AttemptAmdFact(AID, "HUMAN", "C", now(4.0).wall)
    _, cmds, _ = run([originated(), answered(3.0)], **NO_AMD)
    assert fact(cmds, AttemptAmdFact) == AttemptAmdFact(AID, "OFF", "", now(3.0).wall)


def test_given_a_machine_then_its_amd_fact_has_no_live_time() -> None:
    _, cmds, _ = run([originated(), answered(3.0), AmdStarted(now(3.1)), verdict(5.0, "MACHINE")])
    assert fact(cmds, AttemptAmdFact) == AttemptAmdFact(AID, "MACHINE", "C", None)


def test_given_a_live_answer_then_the_queue_gets_the_debtor() -> None:
    _, cmds, _ = run(LIVE, pinned_agent="siti")
    hand = next(c for c in cmds if isinstance(c, HandToQueue))
    assert hand == HandToQueue(
        "dialer-kolek", "081234567890", "Budi", "id", SPEC.context, pinned_agent="siti"
    )


def test_given_the_reminder_then_it_says_the_amount_and_the_key() -> None:
    _, cmds, _ = run([originated(), answered(3.0)], **REMINDER, language="en")
    play = next(c for c in cmds if isinstance(c, Play))
    assert play.prompt_id == REMINDER_PROMPT
    assert play.media[0] == "sound:sambung/dialer-reminder-amount"
    assert "sound:sambung/dialer-reminder-press" in play.media
    assert play.media[-1] == "digits:1"


def test_given_the_reminder_prompt_done_then_the_key_is_awaited_reminder_wait() -> None:
    state, _, _ = run([*REMINDING, prompt_done(20.0, REMINDER_PROMPT)], **REMINDER)
    assert (state.phase, state.deadline) == (Phase.REMINDER_WAIT, 26.0)
    state, _, _ = run(REMINDING, **REMINDER)
    assert (state.phase, state.deadline) == (Phase.REMINDER, 3.1 + PROMPT_BACKSTOP_SECONDS)


def test_given_the_line_ended_then_late_events_change_nothing() -> None:
    state, _, _ = run([originated(), ended(4.0, 17)])
    late: list[LineEvent] = [
        answered(5.0),
        verdict(5.0, "HUMAN"),
        TimedOut(now(9.0)),
        Stopped(now(9.0)),
    ]
    for ev in late:
        assert step(state, ev) == (state, [])


def test_given_a_live_answer_when_the_agent_connects_then_the_logs_say_so() -> None:
    _, _, steps = run([*LIVE, connected(5.5)])
    assert Log("dialer.connected", (("agent", "siti"), ("delay", 1.5))) in steps[-1]


def test_the_state_is_plain_values_only() -> None:
    state, _, _ = run([*LIVE, connected(5.5)], machine_message=("sound:vm",))
    plain = (str, int, float, bool, type(None), Decimal, datetime, Enum)

    def leaves(v: object) -> list[object]:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return [x for f in dataclasses.fields(v) for x in leaves(getattr(v, f.name))]
        if isinstance(v, tuple):
            return [x for item in v for x in leaves(item)]
        return [v]

    assert all(isinstance(x, plain) for x in leaves(state))
    assert dataclasses.astuple(state)  # copies: nothing live inside


@pytest.mark.parametrize(
    ("outcome", "live", "connected", "abandon"),
    [
        ("abandoned", True, False, True),
        ("lost", True, False, True),  # answered, then lost to a restart: nobody on the line
        ("lost", False, False, False),  # lost while ringing: nobody answered
        ("lost", True, True, False),  # talking to an agent when lost
        ("connected", True, True, False),
        ("failed", False, False, False),
    ],
)
def test_what_counts_as_an_abandon_under_the_cap(
    outcome: str, live: bool, connected: bool, abandon: bool
) -> None:
    assert outcomes.abandoned_in_window(outcome, live, connected) is abandon


# ---- a live answer taken over from an earlier engine ------------------------------------------


def resumed(
    events: list[LineEvent],
    *,
    live_ago: float = 30.0,
    agent: str | None = None,
    talk_ago: float = 10.0,
    at: float = 100.0,
) -> tuple[LineState, list[Command]]:
    """A line resumed at loop time ``at``: live ``live_ago`` seconds before (wall clock), and
    talking to ``agent`` since ``talk_ago`` seconds before, if given."""
    t = now(at)
    state, cmds = resume(
        SPEC,
        now=t,
        live_wall=t.wall - timedelta(seconds=live_ago),
        agent_id=agent,
        connected_wall=None if agent is None else t.wall - timedelta(seconds=talk_ago),
    )
    out = list(cmds)
    for ev in events:
        state, more = step(state, ev)
        out += more
    return state, out


def test_given_a_waiting_live_answer_taken_over_then_the_queue_resumes_it() -> None:
    state, cmds = resumed([])
    assert state.phase is Phase.QUEUED
    (hand,) = [c for c in cmds if isinstance(c, HandToQueue)]
    assert hand.resumed
    assert hand.queue == SPEC.queue
    # Its answer and live facts were the earlier engine's: none is written again.
    assert trace(cmds) == ["queue"]
    assert state.live_at == 70.0
    assert state.answered_at == 70.0


def test_given_a_resumed_answer_connected_then_its_delay_counts_from_the_original_live() -> None:
    state, cmds = resumed([connected(105.0), QueueDone("completed", now(200.0))])
    assert state.outcome == "connected"
    assert fact(cmds, AttemptConnectedFact).connect_seconds == 35.0
    assert fact(cmds, AttemptEndedFact).connect_seconds == 35.0
    # The queue closed the calls row.
    assert not [c for c in cmds if isinstance(c, Record) and isinstance(c.fact, CallEndedFact)]


def test_given_a_talk_taken_over_then_it_ends_connected_without_a_second_connect() -> None:
    state, cmds = resumed([QueueDone("completed", now(300.0))], agent="siti", talk_ago=10.0)
    assert state.outcome == "connected"
    assert state.agent_id == "siti"
    assert not [c for c in cmds if isinstance(c, NotifyConnected)]
    assert fact(cmds, AttemptEndedFact).connect_seconds == 20.0  # live 30 s ago, talk 10 s ago


def test_given_a_resumed_answer_whose_debtor_leaves_then_it_is_an_abandon() -> None:
    state, cmds = resumed([QueueDone("caller_hung_up", now(110.0))])
    assert state.outcome == "abandoned"
    assert fact(cmds, AttemptEndedFact).connect_seconds == 40.0


@pytest.mark.parametrize("talking", [False, True])
def test_given_a_graceful_stop_then_the_live_answer_is_handed_over_and_nothing_written(
    talking: bool,
) -> None:
    events = [*LIVE, *([connected(5.0)] if talking else []), QueueDone("handed_over", now(9.0))]
    state, _, steps = run(events)
    last = steps[-1]  # what the hand-over itself does
    assert state.phase is Phase.ENDED
    assert state.outcome == HANDED_OVER
    # No end fact, no calls row, no count, no hang-up: the next engine carries the line on.
    assert trace(last) == ["finished"]
    (done,) = [c for c in last if isinstance(c, Finished)]
    assert done.result.outcome == HANDED_OVER
