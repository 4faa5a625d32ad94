"""Resuming a caller in an IVR flow (``sambung/ivr/resume.py`` and ``menu.resume``): the state
kept with the session, where a call taken over goes on, and what the machine does there."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sambung.engine.events import DigitPressed, PromptFinished
from sambung.ivr import menu
from sambung.ivr.menu import Phase, Play, RecordStep, SetLanguage, Transfer
from sambung.ivr.model import InputNode
from sambung.ivr.resume import (
    EARLIER_STEPS,
    PROMPTS_PER_STEP,
    LiveState,
    StateUnreadable,
    earlier_prompts,
    plan_resumption,
)

from .test_ivr_menu import (
    ACCOUNT,
    AGENT,
    CALLER,
    CID,
    MAIN,
    MENU_FLOW,
    RETRY,
    SALES,
    SORRY,
    T0,
    THANKS,
    make_flow,
    of,
    plays,
)

# ---- the stored state -------------------------------------------------------------------------


def test_the_stored_state_reads_back_as_written() -> None:
    live = LiveState("account", 7, "id", {"caller_number": "+628111", "x": "é"}, ("pin",), 2)
    assert LiveState.from_json(live.to_json()) == live


GOOD = {"node": "a", "seq": 1, "language": "en", "attributes": {}, "withheld": [], "generation": 0}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"node": "a"}',
        json.dumps({**GOOD, "seq": "x"}),
        json.dumps({**GOOD, "seq": -1}),
        json.dumps({**GOOD, "node": ""}),
        json.dumps({**GOOD, "attributes": []}),
    ],
)
def test_a_stored_state_that_is_not_ours_is_refused(text: str) -> None:
    with pytest.raises(StateUnreadable):
        LiveState.from_json(text)


# ---- where a call taken over goes on ----------------------------------------------------------


def test_given_a_stored_state_then_the_call_resumes_at_its_node_with_it() -> None:
    live = LiveState("account", 6, "id", {"lang_chosen": "1"}, generation=1)
    at = plan_resumption(CID, live, steps_seq=6)
    assert (at.node_id, at.language, dict(at.attributes)) == ("account", "id", {"lang_chosen": "1"})
    assert (at.seq, at.generation) == (6, 2)
    # The prompts the last engine (generation 1) may have left playing, from that node on.
    assert at.earlier == tuple(f"{CID}-g1-6-{k}" for k in range(PROMPTS_PER_STEP))


@given(live_seq=st.integers(0, 1000), steps_seq=st.integers(0, 1000))
def test_step_records_go_on_after_every_number_used(live_seq: int, steps_seq: int) -> None:
    at = plan_resumption(CID, LiveState("main", live_seq, "en"), steps_seq)
    assert at.seq >= max(live_seq, steps_seq)
    _, cmds = menu.resume(CID, MENU_FLOW, T0, at.node_id, at.language, {}, at.seq)
    assert all(r.seq > at.seq for r in of(RecordStep, cmds))
    # A retry at the same node after the state was stored has its prompts looked for too.
    assert f"{CID}-{max(live_seq, steps_seq)}-0" in at.earlier


# ---- the machine, resumed ---------------------------------------------------------------------

FLOW = make_flow(MAIN, SALES, SORRY, AGENT, ACCOUNT, THANKS, zero_out_target="agent")


def resume(node: str, attrs: dict[str, str] | None = None, **kw: object) -> menu.IvrState:
    state, _ = menu.resume(CID, FLOW, T0, node, "en", {**CALLER, **(attrs or {})}, 10, **kw)  # type: ignore[arg-type]
    return state


def test_given_a_call_resumed_at_a_menu_then_its_prompt_plays_again_and_keys_work() -> None:
    state, cmds = menu.resume(CID, FLOW, T0, "main", "en", dict(CALLER), 10, generation=2)
    assert of(SetLanguage, cmds) == [SetLanguage("en")]
    assert plays(cmds) == [("sound:main",)]
    assert [(r.seq, r.node_id, r.kind) for r in of(RecordStep, cmds)] == [
        (11, "main", "resumed"),
        (12, "main", "enter"),
    ]
    # The prompt ids carry the generation: an earlier engine's prompt may still play.
    (play,) = of(Play, cmds)
    assert play.prompt_id == f"{CID}-g2-12-0"
    state, _ = menu.step(state, PromptFinished(CID, play.prompt_id, T0))
    assert state.phase is Phase.WAITING_DIGITS
    state, cmds = menu.step(state, DigitPressed(CID, "2", 100, T0))
    assert state.node_id == "account"


def test_given_a_call_resumed_then_what_the_flow_knew_is_kept() -> None:
    state = resume("agent", {"account": "12345678", "tier": "gold"})
    assert state.attributes["account"] == "12345678"
    assert state.attributes["tier"] == "gold"
    assert state.phase is Phase.PLAYING


def test_given_a_transfer_node_when_resumed_then_the_transfer_carries_the_attributes() -> None:
    state, cmds = menu.resume(CID, FLOW, T0, "agent", "en", {**CALLER, "tier": "gold"}, 4)
    (play,) = of(Play, cmds)
    state, cmds = menu.step(state, PromptFinished(CID, play.prompt_id, T0))
    (transfer,) = of(Transfer, cmds)
    assert transfer.queue == "cs"
    assert dict(transfer.attributes)["tier"] == "gold"


def test_given_a_language_the_flow_does_not_offer_then_the_default_is_used() -> None:
    state, cmds = menu.resume(CID, FLOW, T0, "main", "xx", {}, 0)
    assert state.language == FLOW.default_language
    assert of(SetLanguage, cmds) == [SetLanguage(FLOW.default_language)]


def test_given_a_node_the_flow_no_longer_has_then_the_call_starts_the_flow_again() -> None:
    state, cmds = menu.resume(CID, FLOW, T0, "gone", "en", {}, 3)
    assert state.node_id == FLOW.start
    assert "not in the flow any more" in state.last_transition
    assert plays(cmds) == [("sound:main",)]


PIN = InputNode(
    "pin",
    ("sound:enter-pin",),
    store_as="pin",
    next="agent",
    min_length=4,
    max_length=6,
    terminator="#",
    first_digit_timeout_seconds=6.0,
    inter_digit_timeout_seconds=3.0,
    retry=RETRY,
    sensitive=True,
)
PIN_FLOW = make_flow(MAIN, PIN, SALES, SORRY, AGENT, ACCOUNT, THANKS)


def test_given_a_sensitive_input_was_collected_then_it_is_asked_for_again() -> None:
    # A PIN's value is never stored: the resumed call asks for it rather than go on without.
    state, cmds = menu.resume(
        CID, PIN_FLOW, T0, "agent", "en", {**CALLER, "pin": "stale"}, 9, ("pin",)
    )
    assert state.node_id == "pin"
    assert "pin" not in state.attributes
    assert plays(cmds) == [("sound:enter-pin",)]
    assert "asks again" in state.last_transition


def test_the_earlier_engines_prompts_are_named_as_its_machine_named_them() -> None:
    # An engine of generation 0 at step 5 played "<call>-5-0"; one resumed once, "<call>-g1-5-0".
    for generation, prefix in ((0, ""), (1, "g1-")):
        state, cmds = menu.resume(CID, FLOW, T0, "main", "en", {}, 4, generation=generation)
        (play,) = of(Play, cmds)
        assert play.prompt_id in earlier_prompts(CID, generation, state.path_seq, state.path_seq)
        assert play.prompt_id == f"{CID}-{prefix}{state.path_seq}-0"


def test_the_earlier_prompts_looked_for_are_bounded() -> None:
    ids = earlier_prompts(CID, 0, 3, 1000)
    assert len(ids) == EARLIER_STEPS * PROMPTS_PER_STEP
    assert ids[-1] == f"{CID}-1000-{PROMPTS_PER_STEP - 1}"
    assert earlier_prompts(CID, 0, 3, 3) == tuple(f"{CID}-3-{k}" for k in range(PROMPTS_PER_STEP))
