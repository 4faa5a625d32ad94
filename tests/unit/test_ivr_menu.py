"""Tables for the IVR machine (``sambung/ivr/menu.py``): every node kind and its edges.

A ``Call`` drives the machine like the call task does; scripts are short strings of actions:
``done`` finishes every playing prompt, ``tmo`` fires the active timer, anything else is a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

import pytest

from sambung.engine.events import (
    CallEnded,
    CallerHungUp,
    CallResynced,
    DigitPressed,
    PromptFinished,
)
from sambung.ivr import menu
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
    SetLanguage,
    StartTimer,
    StopPrompts,
    TimerFired,
    Transfer,
    start,
    step,
)
from sambung.ivr.model import (
    AttrEquals,
    AttrIn,
    AttrPresent,
    Branch,
    Calendar,
    ConditionNode,
    EnvHeader,
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
    SayNode,
    SetNode,
    TransferNode,
)
from sambung.ivr.speech import say_media

CID = "1700000000.7"
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 09:00 in Jakarta
CALLER = {"caller_number": "+628111", "did": "1500100"}

RETRY = Retry(3, ("sound:no-input",), ("sound:invalid",), "sorry")
MAIN = MenuNode(
    "main",
    ("sound:main",),
    (("1", "sales"), ("2", "account")),
    timeout_seconds=5.0,
    retry=RETRY,
    repeat_key="9",
)
SALES = HangupNode("sales", ("sound:sales-closed",), "sales_done")
SORRY = HangupNode("sorry", ("sound:sorry",), "menu_failed")
AGENT = TransferNode("agent", "cs", ("sound:connecting",))
ACCOUNT = InputNode(
    "account",
    ("sound:enter-account",),
    store_as="account",
    next="thanks",
    min_length=4,
    max_length=8,
    terminator="#",
    first_digit_timeout_seconds=6.0,
    inter_digit_timeout_seconds=3.0,
    pattern=r"[1-9][0-9]*",
    retry=RETRY,
)
THANKS = HangupNode("thanks", ("sound:thanks",), "ivr_completed")


def make_flow(*nodes: Node, **kw: object) -> Flow:
    return Flow(
        "test",
        ("1500100",),
        nodes[0].id,
        tuple((n.id, n) for n in nodes),
        **kw,  # type: ignore[arg-type]
    )


MENU_FLOW = make_flow(MAIN, SALES, SORRY, AGENT, ACCOUNT, THANKS, zero_out_target="agent")


class Call:
    """Drives the machine like the call task: keeps the state and every command emitted."""

    def __init__(
        self, flow: Flow, attrs: Mapping[str, str] | None = None, at: datetime = T0
    ) -> None:
        self.at = at
        self.state, self.last = start(CID, flow, at, {**CALLER, **(attrs or {})})
        self.log: list[Command] = list(self.last)

    def send(self, event: IvrEvent) -> list[Command]:
        self.state, self.last = step(self.state, event)
        self.log.extend(self.last)
        return self.last

    def press(self, keys: str) -> list[Command]:
        out: list[Command] = []
        for k in keys:
            out += self.send(DigitPressed(CID, k, 120, self.at))
        return out

    def done(self) -> list[Command]:
        """Every playing prompt finishes, one event each (as Asterisk reports them)."""
        out: list[Command] = []
        while self.state.playing:
            out += self.send(PromptFinished(CID, self.state.playing[0], self.at))
        return out

    def timeout(self) -> list[Command]:
        assert self.state.timer_id is not None, "no timer running"
        return self.send(TimerFired(self.state.timer_id, self.at))

    def run(self, script: Iterable[str]) -> None:
        for action in script:
            if action == "done":
                self.done()
            elif action == "tmo":
                self.timeout()
            else:
                self.press(action)

    def records(self, since: int = 0) -> list[tuple[str, str, str | None]]:
        return [
            (c.node_id, c.kind, c.choice) for c in self.log[since:] if isinstance(c, RecordStep)
        ]

    def choices(self) -> list[tuple[str, str, str | None]]:
        """Step records other than node entries."""
        return [r for r in self.records() if r[1] != "enter"]


C = TypeVar("C", bound=Command)


def plays(cmds: Iterable[Command]) -> list[tuple[str, ...]]:
    return [c.media for c in cmds if isinstance(c, Play)]


def of(cls: type[C], cmds: Iterable[Command]) -> list[C]:
    return [c for c in cmds if isinstance(c, cls)]


# ---- start ----------------------------------------------------------------------------------


def test_given_a_flow_when_started_then_enters_the_start_node_and_plays_its_prompts() -> None:
    call = Call(MENU_FLOW)
    s = call.state
    assert (s.node_id, s.phase, s.language, s.menu_depth) == ("main", Phase.PLAYING, "id", 1)
    assert dict(s.attributes) == {**CALLER, "language": "id"}
    assert call.last == [
        SetLanguage("id"),
        RecordStep(1, "main", "enter", None, T0),
        Play(f"{CID}-1-0", ("sound:main",), "id"),
    ]
    assert s.playing == (f"{CID}-1-0",)
    assert s.timer_id is None  # the no-input timer waits for the prompts


def test_given_a_language_attribute_the_flow_offers_when_started_then_it_is_the_language() -> None:
    assert Call(MENU_FLOW, {"language": "en"}).state.language == "en"
    assert Call(MENU_FLOW, {"language": "fr"}).state.language == "id"


def test_attributes_are_read_only() -> None:
    attrs = Call(MENU_FLOW).state.attributes
    with pytest.raises(TypeError):
        attrs["x"] = "y"  # type: ignore[index]


# ---- menus ----------------------------------------------------------------------------------

MENU_TABLE: list[tuple[str, list[str], str, list[tuple[str, str, str | None]]]] = [
    ("option", ["done", "1"], "sales", [("main", "option", "1")]),
    ("option during the prompt (barge-in)", ["2"], "account", [("main", "option", "2")]),
    (
        "invalid then valid",
        ["done", "7", "done", "1"],
        "sales",
        [("main", "invalid", "7"), ("main", "option", "1")],
    ),
    (
        "no input then valid",
        ["done", "tmo", "done", "2"],
        "account",
        [("main", "no_input", None), ("main", "option", "2")],
    ),
    (
        "invalid attempts exhausted",
        ["done", "7", "done", "8", "done", "#"],
        "sorry",
        [
            ("main", "invalid", "7"),
            ("main", "invalid", "8"),
            ("main", "invalid", "#"),
            ("main", "max_attempts", "invalid"),
        ],
    ),
    (
        "no-input attempts exhausted",
        ["done", "tmo", "done", "tmo", "done", "tmo"],
        "sorry",
        [("main", "no_input", None)] * 3 + [("main", "max_attempts", "no_input")],
    ),
    (
        "mixed failures count together",
        ["done", "tmo", "done", "5", "done", "tmo"],
        "sorry",
        [
            ("main", "no_input", None),
            ("main", "invalid", "5"),
            ("main", "no_input", None),
            ("main", "max_attempts", "no_input"),
        ],
    ),
    (
        "repeat key uses no attempt",
        ["done", "9", "done", "7", "done", "9", "9", "done", "7", "done", "1"],
        "sales",
        [
            ("main", "repeat", "9"),
            ("main", "invalid", "7"),
            ("main", "repeat", "9"),
            ("main", "repeat", "9"),
            ("main", "invalid", "7"),
            ("main", "option", "1"),
        ],
    ),
    ("zero-out", ["done", "0"], "agent", [("main", "zero_out", "0")]),
    ("zero-out during the prompt", ["0"], "agent", [("main", "zero_out", "0")]),
    (
        "zero-out after a failure",
        ["done", "tmo", "0"],
        "agent",
        [("main", "no_input", None), ("main", "zero_out", "0")],
    ),
]


@pytest.mark.parametrize(
    ("script", "node", "choices"),
    [pytest.param(s, n, c, id=name) for name, s, n, c in MENU_TABLE],
)
def test_menu(script: list[str], node: str, choices: list[tuple[str, str, str | None]]) -> None:
    call = Call(MENU_FLOW)
    call.run(script)
    assert call.state.node_id == node
    assert call.choices() == choices
    assert [r[0] for r in call.records() if r[1] == "enter"][-1] == node


def test_given_menu_prompts_finished_then_the_no_input_timer_starts() -> None:
    call = Call(MENU_FLOW)
    assert call.done() == [StartTimer(f"{CID}-t1", 5.0)]
    assert (call.state.phase, call.state.timer_id) == (Phase.WAITING_DIGITS, f"{CID}-t1")


def test_given_an_invalid_key_then_the_invalid_prompt_and_the_menu_are_queued() -> None:
    call = Call(MENU_FLOW)
    call.done()
    out = call.press("7")
    assert out == [
        CancelTimer(f"{CID}-t1"),
        RecordStep(2, "main", "invalid", "7", T0),
        Play(f"{CID}-2-0", ("sound:invalid",), "id"),
        Play(f"{CID}-2-1", ("sound:main",), "id"),
    ]
    assert call.state.attempt == 2
    assert call.state.playing == (f"{CID}-2-0", f"{CID}-2-1")
    assert call.state.phase is Phase.PLAYING


def test_given_no_input_then_the_no_input_prompt_and_the_menu_play() -> None:
    call = Call(MENU_FLOW)
    call.done()
    assert plays(call.timeout()) == [("sound:no-input",), ("sound:main",)]


def test_given_retry_prompts_queued_when_a_key_is_pressed_then_both_are_stopped() -> None:
    call = Call(MENU_FLOW)
    call.run(["done", "7"])
    queued = call.state.playing
    assert len(queued) == 2
    out = call.press("1")
    assert out[0] == StopPrompts(queued)
    assert call.state.node_id == "sales"


def test_given_repeat_key_then_the_menu_plays_again_without_an_attempt() -> None:
    call = Call(MENU_FLOW)
    call.done()
    out = call.press("9")
    assert plays(out) == [("sound:main",)]
    assert (call.state.attempt, call.state.phase) == (1, Phase.PLAYING)


def test_given_a_key_then_the_transition_is_explained() -> None:
    call = Call(MENU_FLOW)
    call.run(["done", "2"])
    assert "main: key 2 -> account" in call.state.last_transition


def test_given_zero_out_disabled_on_the_node_then_zero_is_invalid() -> None:
    flow = make_flow(replace(MAIN, zero_out=False), SALES, SORRY, AGENT, zero_out_target="agent")
    call = Call(flow)
    call.run(["done", "0"])
    assert (call.state.node_id, call.choices()) == ("main", [("main", "invalid", "0")])


def test_given_no_zero_out_target_then_zero_is_invalid() -> None:
    call = Call(make_flow(MAIN, SALES, SORRY, AGENT))
    call.run(["done", "0"])
    assert call.choices() == [("main", "invalid", "0")]


def test_given_another_zero_out_key_then_it_works_and_zero_does_not() -> None:
    flow = make_flow(MAIN, SALES, SORRY, AGENT, zero_out_key="*", zero_out_target="agent")
    call = Call(flow)
    call.run(["done", "0", "*"])
    assert call.choices() == [("main", "invalid", "0"), ("main", "zero_out", "*")]


def test_given_zero_out_on_every_menu_then_a_submenu_zeroes_out_too() -> None:
    sub = MenuNode("sub", ("sound:sub",), (("1", "sales"),), retry=RETRY)
    main = replace(MAIN, options=(("1", "sub"),))
    call = Call(make_flow(main, sub, SALES, SORRY, AGENT, zero_out_target="agent"))
    call.run(["1", "0"])
    assert call.state.node_id == "agent"
    assert call.state.menu_depth == 2


def test_given_an_option_on_the_zero_key_then_the_option_wins() -> None:
    main = replace(MAIN, options=(("0", "sales"),))
    call = Call(make_flow(main, SALES, SORRY, AGENT, zero_out_target="agent"))
    call.press("0")
    assert call.state.node_id == "sales"


def test_given_attempts_exhausted_and_no_on_failure_then_hang_up() -> None:
    main = replace(MAIN, retry=Retry(max_attempts=1))
    call = Call(make_flow(main, SALES))
    call.run(["done", "tmo"])
    assert of(Hangup, call.last) == [Hangup("max_attempts")]
    assert (call.state.phase, call.state.end_reason) == (Phase.ENDING, "max_attempts")


def test_given_a_menu_without_prompts_then_it_waits_at_once() -> None:
    call = Call(make_flow(replace(MAIN, prompts=()), SALES, SORRY))
    assert call.state.phase is Phase.WAITING_DIGITS
    assert of(StartTimer, call.last) == [StartTimer(f"{CID}-t1", 5.0)]


def test_given_menus_visited_then_depth_counts_them() -> None:
    sub = MenuNode("sub", ("sound:sub",), (("1", "main"),), retry=RETRY)
    main = replace(MAIN, options=(("1", "sub"),))
    call = Call(make_flow(main, sub, SORRY))
    call.press("111")
    assert (call.state.node_id, call.state.menu_depth) == ("sub", 4)


# ---- play, barge-in and type-ahead -----------------------------------------------------------

WELCOME = PlayNode("welcome", ("sound:welcome", "sound:privacy"), "main")
PLAY_FLOW = make_flow(WELCOME, MAIN, SALES, SORRY, AGENT, ACCOUNT, THANKS)


def test_given_a_play_node_then_its_prompts_are_one_play_and_the_next_node_follows() -> None:
    call = Call(PLAY_FLOW)
    assert plays(call.last) == [("sound:welcome", "sound:privacy")]
    out = call.done()
    assert call.state.node_id == "main"
    assert plays(out) == [("sound:main",)]


def test_given_barge_in_during_play_then_prompts_stop_and_the_digit_is_the_menu_key() -> None:
    call = Call(PLAY_FLOW)
    playing = call.state.playing
    out = call.press("1")
    assert out[:2] == [
        RecordStep(2, "welcome", "barge_in", None, T0),
        StopPrompts(playing),
    ]
    assert call.state.node_id == "sales"
    assert plays(out) == [("sound:sales-closed",)]  # the main menu never played
    assert call.choices() == [("welcome", "barge_in", None), ("main", "option", "1")]
    assert call.state.type_ahead == ""


def test_given_barge_in_then_the_stopped_prompt_finishing_is_stale() -> None:
    call = Call(PLAY_FLOW)
    stopped = call.state.playing[0]
    call.press("1")
    before = call.state
    assert call.send(PromptFinished(CID, stopped, T0)) == []
    assert replace(call.state, last_transition="") == replace(before, last_transition="")
    assert "stale" in call.state.last_transition


def test_given_barge_in_off_then_digits_are_dropped() -> None:
    flow = make_flow(replace(WELCOME, barge_in=False), MAIN, SALES, SORRY)
    call = Call(flow)
    assert call.press("1") == []
    assert (call.state.node_id, call.state.type_ahead) == ("welcome", "")
    call.done()
    assert call.state.node_id == "main"


def test_given_barge_in_then_an_input_takes_the_digit_as_its_first() -> None:
    flow = make_flow(replace(WELCOME, next="account"), ACCOUNT, THANKS, SORRY)
    call = Call(flow)
    out = call.press("5")
    assert call.state.node_id == "account"
    assert (call.state.digits, call.state.phase) == ("5", Phase.WAITING_DIGITS)
    assert plays(out) == []  # the input's prompt is skipped
    assert of(StartTimer, out) == [StartTimer(f"{CID}-t1", 3.0)]  # inter-digit
    call.press("678#")
    assert call.state.attributes["account"] == "5678"


def test_given_type_ahead_pending_then_a_barge_in_play_is_skipped() -> None:
    lookup = LookupNode("crm", "http://crm/{caller_number}", "welcome", "welcome")
    call = Call(make_flow(lookup, WELCOME, MAIN, SALES, SORRY))
    call.press("1")  # typed during the lookup
    assert call.state.type_ahead == "1"
    call.send(LookupDone("crm", True, {}, T0))
    assert call.state.node_id == "sales"
    assert ("welcome", "skipped", "type_ahead") in call.choices()


def test_given_two_keys_typed_ahead_then_each_menu_takes_one() -> None:
    sub = MenuNode("sub", ("sound:sub",), (("3", "sales"),), retry=RETRY)
    main = replace(MAIN, options=(("2", "sub"),))
    lookup = LookupNode("crm", "http://crm/{caller_number}", "main", "main")
    call = Call(make_flow(lookup, main, sub, SALES, SORRY))
    call.press("23")
    call.send(LookupDone("crm", True, {}, T0))
    assert call.choices() == [
        ("crm", "lookup_ok", None),
        ("main", "option", "2"),
        ("sub", "option", "3"),
    ]
    assert call.state.node_id == "sales"


def test_given_an_invalid_type_ahead_key_then_the_rest_is_dropped_and_the_menu_retries() -> None:
    lookup = LookupNode("crm", "http://crm/{caller_number}", "main", "main")
    call = Call(make_flow(lookup, MAIN, SALES, SORRY))
    call.press("71")
    out = call.send(LookupDone("crm", True, {}, T0))
    assert plays(out) == [("sound:invalid",), ("sound:main",)]
    assert (call.state.type_ahead, call.state.attempt) == ("", 2)


def test_given_a_failed_prompt_then_the_flow_goes_on() -> None:
    call = Call(PLAY_FLOW)
    call.send(PromptFinished(CID, call.state.playing[0], T0, failed=True))
    assert call.state.node_id == "main"


def test_given_a_later_prompt_finishing_then_the_earlier_ones_are_done_too() -> None:
    call = Call(MENU_FLOW)
    call.run(["done", "7"])
    first, second = call.state.playing
    out = call.send(PromptFinished(CID, second, T0))
    assert call.state.playing == ()
    assert of(StartTimer, out) == [StartTimer(f"{CID}-t2", 5.0)]
    assert call.send(PromptFinished(CID, first, T0)) == []


def test_given_a_stale_timer_then_it_is_ignored() -> None:
    call = Call(MENU_FLOW)
    call.done()
    old = call.state.timer_id
    assert old is not None
    call.press("7")
    before = call.state
    assert call.send(TimerFired(old, T0)) == []
    assert (call.state.attempt, call.state.playing) == (before.attempt, before.playing)


def test_prompt_and_timer_ids_are_deterministic() -> None:
    a, b = Call(MENU_FLOW), Call(MENU_FLOW)
    for c in (a, b):
        c.run(["done", "7", "done", "tmo", "done", "2"])
    assert a.log == b.log


# ---- input ----------------------------------------------------------------------------------

INPUT_FLOW = make_flow(ACCOUNT, THANKS, SORRY)


def test_given_a_sensitive_input_then_no_digits_are_recorded_but_the_call_has_them() -> None:
    call = Call(make_flow(replace(ACCOUNT, sensitive=True), THANKS, SORRY))
    call.done()
    call.press("12#")  # too short: invalid
    call.done()
    call.press("4321#")
    assert call.choices() == [("account", "invalid", None), ("account", "input", None)]
    assert call.state.attributes["account"] == "4321"
    assert "4321" not in call.state.last_transition


INPUT_TABLE: list[tuple[str, list[str], str, str | None, list[tuple[str, str, str | None]]]] = [
    (
        "terminated by #",
        ["done", "1234#"],
        "thanks",
        "1234",
        [("account", "input", "1234")],
    ),
    ("typed during the prompt", ["1234#"], "thanks", "1234", [("account", "input", "1234")]),
    (
        "max length ends it",
        ["done", "12345678"],
        "thanks",
        "12345678",
        [("account", "input", "12345678")],
    ),
    (
        "too short",
        ["done", "12#"],
        "account",
        None,
        [("account", "invalid", "12")],
    ),
    (
        "nothing before #",
        ["done", "#"],
        "account",
        None,
        [("account", "invalid", "")],
    ),
    (
        "pattern mismatch (leading zero)",
        ["done", "01234#"],
        "account",
        None,
        [("account", "invalid", "01234")],
    ),
    (
        "* clears and restarts",
        ["done", "98*", "4567#"],
        "thanks",
        "4567",
        [("account", "input_cleared", None), ("account", "input", "4567")],
    ),
    (
        "first-digit timeout is no input",
        ["done", "tmo"],
        "account",
        None,
        [("account", "no_input", None)],
    ),
    (
        "inter-digit timeout ends the input",
        ["done", "12345", "tmo"],
        "thanks",
        "12345",
        [("account", "input", "12345")],
    ),
    (
        "inter-digit timeout with too few digits",
        ["done", "123", "tmo"],
        "account",
        None,
        [("account", "invalid", "123")],
    ),
    (
        "invalid then valid",
        ["done", "12#", "done", "5555#"],
        "thanks",
        "5555",
        [("account", "invalid", "12"), ("account", "input", "5555")],
    ),
    (
        "attempts exhausted",
        ["done", "1#", "done", "tmo", "done", "0#"],
        "sorry",
        None,
        [
            ("account", "invalid", "1"),
            ("account", "no_input", None),
            ("account", "invalid", "0"),
            ("account", "max_attempts", "invalid"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("script", "node", "stored", "choices"),
    [pytest.param(s, n, v, c, id=name) for name, s, n, v, c in INPUT_TABLE],
)
def test_input(
    script: list[str], node: str, stored: str | None, choices: list[tuple[str, str, str | None]]
) -> None:
    call = Call(INPUT_FLOW)
    call.run(script)
    assert call.state.node_id == node
    assert call.state.attributes.get("account") == stored
    assert call.choices() == choices


def test_given_input_then_first_digit_then_inter_digit_timeouts() -> None:
    call = Call(INPUT_FLOW)
    assert call.done() == [StartTimer(f"{CID}-t1", 6.0)]
    assert call.press("1") == [CancelTimer(f"{CID}-t1"), StartTimer(f"{CID}-t2", 3.0)]
    assert call.press("2") == [CancelTimer(f"{CID}-t2"), StartTimer(f"{CID}-t3", 3.0)]
    out = call.press("*")  # a fresh start: the caller gets the first-digit time again
    assert of(StartTimer, out) == [StartTimer(f"{CID}-t4", 6.0)]
    assert call.state.digits == ""


def test_given_invalid_input_then_the_retry_prompts_play_and_the_digits_are_cleared() -> None:
    call = Call(INPUT_FLOW)
    call.run(["done", "12#"])
    assert plays(call.last) == [("sound:invalid",), ("sound:enter-account",)]
    assert (call.state.digits, call.state.attempt, call.state.phase) == ("", 2, Phase.PLAYING)


def test_given_input_without_terminator_then_hash_is_a_digit() -> None:
    node = replace(ACCOUNT, terminator=None, pattern=None, max_length=4)
    call = Call(make_flow(node, THANKS, SORRY))
    call.run(["done", "12#4"])
    assert call.state.attributes["account"] == "12#4"


def test_given_stored_input_then_a_condition_can_use_it() -> None:
    check = ConditionNode("check", (Branch(AttrEquals("account", "1234"), "thanks"),), "sorry")
    call = Call(make_flow(replace(ACCOUNT, next="check"), check, THANKS, SORRY))
    call.press("1234#")
    assert call.state.node_id == "thanks"


# ---- conditions -----------------------------------------------------------------------------

JAKARTA = Calendar(
    "office",
    "Asia/Jakarta",
    (OpenSpan(frozenset(range(5)), time(8), time(17)),),  # Monday to Friday 08:00-17:00
    frozenset({date(2026, 8, 17)}),  # Independence Day, a Monday
)
OPEN = HangupNode("open", ("sound:open",))
CLOSED = HangupNode("closed", ("sound:closed",), "after_hours")
HOURS = ConditionNode("hours", (Branch(InBusinessHours("office"), "open"),), "closed")
HOURS_FLOW = make_flow(HOURS, OPEN, CLOSED, calendars=(JAKARTA,))
WIB = timedelta(hours=7)


def wib(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    """A Jakarta wall-clock time, as the UTC instant the events carry."""
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC) - WIB


HOURS_TABLE = [
    ("monday morning", wib(2026, 3, 2, 9), "open"),
    ("friday afternoon", wib(2026, 3, 6, 16, 30), "open"),
    ("saturday", wib(2026, 3, 7, 10), "closed"),
    ("sunday", wib(2026, 3, 8, 10), "closed"),
    ("holiday on a monday", wib(2026, 8, 17, 10), "closed"),
    ("the day after the holiday", wib(2026, 8, 18, 10), "open"),
    ("just before opening", wib(2026, 3, 2, 7, 59, 59), "closed"),
    ("at opening", wib(2026, 3, 2, 8), "open"),
    ("just before closing", wib(2026, 3, 2, 16, 59, 59), "open"),
    ("at closing", wib(2026, 3, 2, 17), "closed"),
    # 23:30 UTC on Monday is already Tuesday 06:30 in Jakarta: still closed.
    ("utc evening is local early morning", datetime(2026, 3, 2, 23, 30, tzinfo=UTC), "closed"),
    # 01:30 UTC on Monday is 08:30 in Jakarta: open, though 01:30 in UTC would not be.
    ("utc night is local morning", datetime(2026, 3, 2, 1, 30, tzinfo=UTC), "open"),
]


@pytest.mark.parametrize(
    ("at", "node"), [pytest.param(a, n, id=name) for name, a, n in HOURS_TABLE]
)
def test_business_hours(at: datetime, node: str) -> None:
    call = Call(HOURS_FLOW, at=at)
    assert call.state.node_id == node
    label = "in_business_hours:office" if node == "open" else "otherwise"
    assert call.choices() == [("hours", "branch", label)]


def test_given_a_span_ending_at_midnight_then_open_until_the_end_of_the_day() -> None:
    late = replace(JAKARTA, open_spans=(OpenSpan(frozenset(range(7)), time(20), time(0)),))
    flow = make_flow(HOURS, OPEN, CLOSED, calendars=(late,))
    assert Call(flow, at=wib(2026, 3, 7, 23, 59, 59)).state.node_id == "open"
    assert Call(flow, at=wib(2026, 3, 7, 19, 59)).state.node_id == "closed"


HOLIDAY = ConditionNode("hol", (Branch(IsHoliday("office"), "closed"),), "open")


@pytest.mark.parametrize(
    ("at", "node"),
    [
        pytest.param(wib(2026, 8, 17, 0, 30), "closed", id="local holiday, utc the day before"),
        pytest.param(wib(2026, 8, 18, 0, 30), "open", id="local next day, utc still the holiday"),
        pytest.param(wib(2026, 8, 17, 20), "closed", id="holiday evening"),
    ],
)
def test_is_holiday_uses_the_calendar_date(at: datetime, node: str) -> None:
    call = Call(make_flow(HOLIDAY, OPEN, CLOSED, calendars=(JAKARTA,)), at=at)
    assert call.state.node_id == node


def test_given_an_unknown_calendar_then_the_condition_is_false() -> None:
    call = Call(make_flow(HOURS, OPEN, CLOSED))
    assert call.state.node_id == "closed"
    assert "calendar 'office' unknown" in call.state.last_transition


ATTR_NODE = ConditionNode(
    "route",
    (
        Branch(AttrEquals("tier", "gold"), "gold"),
        Branch(AttrIn("region", frozenset({"jkt", "bdg"})), "java"),
        Branch(AttrPresent("crm_name"), "known"),
    ),
    "other",
)
ATTR_FLOW = make_flow(
    ATTR_NODE,
    HangupNode("gold"),
    HangupNode("java"),
    HangupNode("known"),
    HangupNode("other"),
)

ATTR_TABLE: list[tuple[str, dict[str, str], str, str]] = [
    ("equals", {"tier": "gold"}, "gold", "tier=gold"),
    ("first match wins", {"tier": "gold", "region": "jkt"}, "gold", "tier=gold"),
    ("equals is exact", {"tier": "Gold", "region": "bdg"}, "java", "region in bdg,jkt"),
    ("in", {"region": "jkt"}, "java", "region in bdg,jkt"),
    ("present", {"crm_name": "Budi"}, "known", "crm_name present"),
    ("present but empty is absent", {"crm_name": ""}, "other", "otherwise"),
    ("nothing", {}, "other", "otherwise"),
]


@pytest.mark.parametrize(
    ("attrs", "node", "label"),
    [pytest.param(a, n, lab, id=name) for name, a, n, lab in ATTR_TABLE],
)
def test_attribute_conditions(attrs: dict[str, str], node: str, label: str) -> None:
    call = Call(ATTR_FLOW, attrs)
    assert call.state.node_id == node
    assert call.choices() == [("route", "branch", label)]


def test_given_conditions_then_nothing_plays_until_the_node_that_waits() -> None:
    call = Call(make_flow(HOURS, OPEN, CLOSED, calendars=(JAKARTA,)), at=wib(2026, 3, 2, 9))
    assert [r[0] for r in call.records()] == ["hours", "hours", "open"]
    assert plays(call.last) == [("sound:open",)]


def test_given_a_loop_without_waiting_then_the_call_ends_as_flow_loop() -> None:
    a = ConditionNode("a", (), "b")
    b = SetNode("b", (("x", "1"),), "a")
    call = Call(make_flow(a, b))
    assert call.state.phase is Phase.ENDING
    assert call.state.end_reason == "flow_loop"
    assert of(Hangup, call.last) == [Hangup("flow_loop")]
    assert len([r for r in call.records() if r[1] == "enter"]) == menu.MAX_CHAIN


def test_given_an_unknown_target_then_the_call_ends_as_flow_error() -> None:
    call = Call(make_flow(SetNode("s", (), "nowhere")))
    assert (call.state.phase, call.state.end_reason) == (Phase.ENDING, "flow_error")


# ---- set ------------------------------------------------------------------------------------


def test_given_set_language_then_the_language_changes_and_prompts_follow() -> None:
    setter = SetNode("lang", (("language", "en"), ("skills", "billing")), "main")
    call = Call(make_flow(setter, MAIN, SALES, SORRY))
    assert call.last[:3] == [
        SetLanguage("id"),
        RecordStep(1, "lang", "enter", None, T0),
        SetLanguage("en"),
    ]
    assert call.state.language == "en"
    assert call.state.attributes["language"] == "en"
    assert call.state.attributes["skills"] == "billing"
    assert [c.language for c in of(Play, call.last)] == ["en"]


def test_given_set_language_the_flow_does_not_offer_then_it_is_ignored() -> None:
    call = Call(make_flow(SetNode("lang", (("language", "fr"),), "main"), MAIN, SALES, SORRY))
    assert (call.state.language, call.state.attributes["language"]) == ("id", "id")
    assert "not offered" in call.state.last_transition


def test_given_a_language_menu_then_the_choice_sets_the_language() -> None:
    choose = MenuNode("choose", ("sound:choose",), (("1", "id"), ("2", "en")), retry=RETRY)
    set_id = SetNode("id", (("language", "id"),), "main")
    set_en = SetNode("en", (("language", "en"),), "main")
    call = Call(make_flow(choose, set_id, set_en, MAIN, SALES, SORRY))
    out = call.press("2")
    assert SetLanguage("en") in out
    assert of(Play, out) == [Play(f"{CID}-4-0", ("sound:main",), "en")]


# ---- lookup ---------------------------------------------------------------------------------

CRM = LookupNode(
    "crm",
    "http://crm.local/accounts/{account}?caller={caller_number}",
    next="known",
    on_failure="unknown",
    timeout_seconds=2.5,
    retries=1,
    store_prefix="crm_",
)
LOOKUP_FLOW = make_flow(CRM, HangupNode("known"), HangupNode("unknown"))


def test_given_a_lookup_then_the_url_is_rendered_with_quoted_values() -> None:
    call = Call(LOOKUP_FLOW, {"account": "12/34 5", "caller_number": "+628111"})
    assert of(Lookup, call.last) == [
        Lookup("crm", "http://crm.local/accounts/12%2F34%205?caller=%2B628111", 2.5, 2)
    ]
    assert call.state.phase is Phase.LOOKING_UP


def test_given_lookup_ok_then_data_is_merged_with_the_prefix() -> None:
    call = Call(LOOKUP_FLOW, {"account": "1234"})
    call.send(LookupDone("crm", True, {"name": "Budi", "amount_due": "1250000"}, T0))
    assert call.state.node_id == "known"
    assert call.state.attributes["crm_name"] == "Budi"
    assert call.state.attributes["crm_amount_due"] == "1250000"
    assert call.state.attributes["account"] == "1234"
    assert ("crm", "lookup_ok", None) in call.choices()


def test_given_lookup_failed_then_on_failure() -> None:
    call = Call(LOOKUP_FLOW, {"account": "1234"})
    call.send(LookupDone("crm", False, {}, T0))
    assert call.state.node_id == "unknown"
    assert "crm_name" not in call.state.attributes
    assert call.choices() == [("crm", "lookup_failed", None)]


def test_given_an_attribute_missing_from_the_url_then_no_lookup_and_on_failure() -> None:
    call = Call(LOOKUP_FLOW)
    assert of(Lookup, call.log) == []
    assert call.state.node_id == "unknown"
    assert call.choices() == [("crm", "lookup_failed", "missing:account")]


@pytest.mark.parametrize(
    ("number", "choice"),
    [
        pytest.param("..", "dot_segment:caller_number", id="dot dot"),
        pytest.param("%2e%2e", "dot_segment:caller_number", id="encoded dot dot"),
        pytest.param("", "empty_segment:caller_number", id="empty"),
    ],
)
def test_given_caller_data_that_walks_the_crm_path_then_no_lookup_and_on_failure(
    number: str, choice: str
) -> None:
    node = replace(CRM, url="http://crm.local/accounts/by-phone/{caller_number}/detail")
    call = Call(
        make_flow(node, HangupNode("known"), HangupNode("unknown")), {"caller_number": number}
    )
    assert of(Lookup, call.log) == []
    assert call.state.node_id == "unknown"
    assert call.choices() == [("crm", "lookup_failed", choice)]
    # The transition log line says why, without the caller's value.
    assert choice in call.state.last_transition


def test_given_a_lookup_with_headers_then_the_command_carries_them() -> None:
    auth = EnvHeader("Authorization", "CRM_AUTH", "Bearer s3cret")
    call = Call(
        make_flow(replace(CRM, headers=(auth,)), HangupNode("known"), HangupNode("unknown")),
        {"account": "1", "caller_number": "2"},
    )
    (cmd,) = of(Lookup, call.last)
    assert cmd.headers == (auth,)
    assert "s3cret" not in repr(cmd)


def test_given_a_lookup_answer_for_another_node_then_it_is_ignored() -> None:
    call = Call(LOOKUP_FLOW, {"account": "1234"})
    assert call.send(LookupDone("other", True, {}, T0)) == []
    assert call.state.phase is Phase.LOOKING_UP


def test_given_lookup_data_with_language_and_no_prefix_then_the_language_follows() -> None:
    node = replace(CRM, store_prefix="")
    call = Call(
        make_flow(node, HangupNode("known", ("sound:bye",)), HangupNode("unknown")),
        {"account": "1"},
    )
    out = call.send(LookupDone("crm", True, {"language": "en"}, T0))
    assert SetLanguage("en") in out
    assert of(Play, out) == [Play(f"{CID}-3-0", ("sound:bye",), "en")]


# ---- say ------------------------------------------------------------------------------------

SAY = SayNode(
    "amount",
    "crm_amount",
    "money",
    "bye",
    prompts_before=("sound:sambung/you-owe",),
    prompts_after=("sound:sambung/pay-soon",),
)
SAY_FLOW = make_flow(SAY, HangupNode("bye", ("sound:bye",)), MAIN, SALES, SORRY)


def test_given_say_money_then_one_play_with_the_amount_in_indonesian() -> None:
    call = Call(SAY_FLOW, {"crm_amount": "1250000"})
    assert plays(call.last) == [
        (
            "sound:sambung/you-owe",
            "sound:sambung/num/satu",
            "sound:sambung/num/juta",
            "sound:sambung/num/dua",
            "sound:sambung/num/ratus",
            "sound:sambung/num/lima",
            "sound:sambung/num/puluh",
            "sound:sambung/num/ribu",
            "sound:sambung/rupiah",
            "sound:sambung/pay-soon",
        )
    ]
    call.done()
    assert call.state.node_id == "bye"


def test_given_say_in_english_then_the_speller_gets_the_language() -> None:
    call = Call(SAY_FLOW, {"crm_amount": "1250000", "language": "en"})
    said = say_media("money", "1250000", "en")
    assert plays(call.last) == [("sound:sambung/you-owe", *said, "sound:sambung/pay-soon")]


def test_given_say_with_a_stub_speller_then_its_media_are_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(menu, "say_media", lambda kind, value, lang: (f"{kind}:{value}:{lang}",))
    call = Call(
        make_flow(replace(SAY, prompts_before=(), prompts_after=()), HangupNode("bye")),
        {"crm_amount": "5"},
    )
    assert plays(call.last) == [("money:5:id",)]


@pytest.mark.parametrize(
    ("attrs", "choice"),
    [
        pytest.param({}, "missing", id="missing"),
        pytest.param({"crm_amount": "1.250.000"}, "invalid", id="thousands separators"),
        pytest.param({"crm_amount": "abc"}, "invalid", id="not a number"),
    ],
)
def test_given_a_value_that_cannot_be_said_then_it_is_recorded_and_skipped(
    attrs: dict[str, str], choice: str
) -> None:
    call = Call(SAY_FLOW, attrs)
    assert call.choices() == [("amount", "say", choice)]
    assert call.state.node_id == "bye"
    assert plays(call.last) == [("sound:bye",)]


def test_given_say_then_a_digit_barges_in_to_the_next_node() -> None:
    call = Call(make_flow(replace(SAY, next="main"), MAIN, SALES, SORRY), {"crm_amount": "5"})
    call.press("1")
    assert call.state.node_id == "sales"


# ---- transfer and hang-up -------------------------------------------------------------------


def test_given_transfer_then_prompts_then_transfer_with_the_attributes() -> None:
    call = Call(make_flow(SetNode("s", (("skills", "billing"),), "agent"), AGENT))
    assert plays(call.last) == [("sound:connecting",)]
    playing = call.state
    assert playing.end_reason is None  # not yet: the caller may still leave first
    out = call.done()
    attrs = {**CALLER, "language": "id", "skills": "billing"}
    assert of(Transfer, out) == [Transfer("cs", attrs)]
    assert (call.state.phase, call.state.end_reason) == (Phase.ENDING, "transfer:cs")
    assert call.choices() == [("agent", "transfer", "cs")]
    call.send(CallEnded(CID, 16, "Normal Clearing", T0))
    assert (call.state.phase, call.state.end_reason) == (Phase.ENDED, "transfer:cs")


def test_given_a_digit_during_the_transfer_message_then_it_is_dropped() -> None:
    call = Call(make_flow(AGENT))
    assert call.press("1") == []
    assert call.state.phase is Phase.PLAYING


def test_given_a_hangup_node_then_prompts_then_hangup_with_its_reason() -> None:
    call = Call(make_flow(SORRY))
    assert plays(call.last) == [("sound:sorry",)]
    out = call.done()
    assert out == [Hangup("menu_failed")]
    assert (call.state.phase, call.state.end_reason) == (Phase.ENDING, "menu_failed")
    assert call.send(PromptFinished(CID, "late", T0)) == []
    call.send(CallEnded(CID, 16, "Normal Clearing", T0))
    assert (call.state.phase, call.state.end_reason) == (Phase.ENDED, "menu_failed")


def test_given_a_hangup_node_without_prompts_then_hangup_at_once() -> None:
    call = Call(make_flow(HangupNode("bye")))
    assert of(Hangup, call.last) == [Hangup("ivr_completed")]


def test_given_the_caller_leaves_during_the_goodbye_then_the_flow_reason_stays() -> None:
    call = Call(make_flow(SORRY))
    call.send(CallerHungUp(CID, 16, T0))
    assert (call.state.phase, call.state.end_reason) == (Phase.ENDED, "menu_failed")
    assert call.choices() == []


# ---- the caller leaves, the engine loses the call, late events -------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(CallerHungUp(CID, 16, T0), id="caller hung up"),
        pytest.param(CallEnded(CID, 16, "Normal Clearing", T0), id="call ended"),
    ],
)
def test_given_the_caller_hangs_up_mid_menu_then_abandoned(event: IvrEvent) -> None:
    call = Call(MENU_FLOW)
    call.done()
    timer = call.state.timer_id
    assert timer is not None
    out = call.send(event)
    assert out == [CancelTimer(timer), RecordStep(2, "main", "abandoned", None, T0)]
    s = call.state
    assert (s.phase, s.end_reason, s.timer_id) == (Phase.ENDED, "caller_abandoned_ivr", None)


def test_given_the_engine_ends_the_call_then_its_reason_is_kept() -> None:
    call = Call(MENU_FLOW)
    call.send(CallEnded(CID, 0, "", T0, reason="asterisk_restart"))
    assert (call.state.phase, call.state.end_reason) == (Phase.ENDED, "asterisk_restart")
    assert call.choices() == [("main", "lost", "asterisk_restart")]


def test_given_the_flow_sent_its_hangup_then_an_engine_reason_does_not_replace_it() -> None:
    call = Call(make_flow(HangupNode("bye")))
    call.send(CallEnded(CID, 0, "", T0, reason="asterisk_restart"))
    assert call.state.end_reason == "ivr_completed"


def test_given_ended_then_late_events_change_nothing() -> None:
    call = Call(MENU_FLOW)
    pid = call.state.playing[0]
    call.send(CallerHungUp(CID, 16, T0))
    ended = call.state
    late: list[IvrEvent] = [
        PromptFinished(CID, pid, T0),
        DigitPressed(CID, "1", 100, T0),
        TimerFired(f"{CID}-t1", T0),
        CallEnded(CID, 16, "Normal Clearing", T0, reason="asterisk_restart"),
        CallResynced(CID, T0),
        LookupDone("main", True, {}, T0),
        PromptCheck(pid, False, T0),
    ]
    for e in late:
        assert step(ended, e) == (ended, [])


def test_given_an_event_for_another_call_then_it_is_ignored() -> None:
    call = Call(MENU_FLOW)
    assert call.send(DigitPressed("other", "1", 100, T0)) == []
    assert call.state.node_id == "main"


# ---- resync ---------------------------------------------------------------------------------


def test_given_resync_then_every_playing_prompt_is_checked() -> None:
    call = Call(MENU_FLOW)
    call.run(["done", "7"])
    first, second = call.state.playing
    assert call.send(CallResynced(CID, T0)) == [CheckPrompt(first), CheckPrompt(second)]
    assert call.send(PromptCheck(first, True, T0)) == []
    assert call.state.playing == (first, second)
    out = call.send(PromptCheck(second, False, T0))  # finished while we were away
    assert of(StartTimer, out) == [StartTimer(f"{CID}-t2", 5.0)]
    assert call.state.phase is Phase.WAITING_DIGITS


def test_given_resync_while_waiting_then_nothing_to_check() -> None:
    call = Call(MENU_FLOW)
    call.done()
    assert call.send(CallResynced(CID, T0)) == []
    assert call.state.phase is Phase.WAITING_DIGITS


def test_with_end_reason() -> None:
    s: IvrState = Call(MENU_FLOW).state
    assert menu.with_end_reason(s, "timeout").end_reason == "timeout"
