"""The agent's call card (``sambung/console/cards.py``) and the console's value formatting
(``rupiah``, ``clock``, ``local_to_iso`` in ``sambung/console/app.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.acd import events
from sambung.acd.agents import AgentState
from sambung.acd.events import (
    AgentConnected,
    AgentEvent,
    AgentOffered,
    AgentStateChanged,
    CallContext,
    CallHeld,
    CallUnheld,
    HoldReminder,
    OfferEnded,
)
from sambung.console.app import clock, local_to_iso, percent, rupiah
from sambung.console.cards import Card, CardBook

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def call(call_id: str = "c1", **attributes: Any) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "queue": "support",
        "caller_number": "0812000111",
        "attributes": attributes,
    }


def context(call_id: str = "c1", **attributes: str) -> CallContext:
    return CallContext(
        "e1", call_id, "support", "caller", "0812000111", "", "", "id", T0, attributes
    )


def offered(agent: str = "siti", call_id: str = "c1", **attrs: str) -> AgentOffered:
    return AgentOffered(agent, context(call_id, **attrs))


def connected(agent: str = "siti", call_id: str = "c1") -> AgentConnected:
    return AgentConnected(agent, context(call_id))


def offer_ended(result: str, agent: str = "siti", call_id: str = "c1") -> OfferEnded:
    return OfferEnded(agent, call_id, result)


def call_ended(
    wrap: float | None = 30.0, agent: str = "siti", call_id: str = "c1"
) -> events.CallEnded:
    return events.CallEnded(agent, call_id, 42.0, wrap)


# ---- the card through a call ---------------------------------------------------------------


def test_a_card_goes_offered_connected_ended_and_saved() -> None:
    book = CardBook()
    assert book.get("siti") is None
    book.hear(offered(), T0)
    card = book.get("siti")
    assert card is not None
    assert (card.phase, card.call_id, card.at, card.ended_at) == ("offered", "c1", T0, None)
    assert card.call == context().to_wire()  # the call as the agent's screen receives it

    book.hear(connected(), T0 + timedelta(seconds=5))
    card = book.get("siti")
    assert card is not None
    assert (card.phase, card.at) == ("connected", T0 + timedelta(seconds=5))

    book.hear(call_ended(30), T0 + timedelta(seconds=60))
    card = book.get("siti")
    assert card is not None
    assert card.phase == "ended"
    assert card.ended_at == T0 + timedelta(seconds=60)
    assert card.wrap_up_seconds == 30.0
    assert card.saved_code is None

    book.saved("siti", "c1", "PTP")
    card = book.get("siti")
    assert card is not None
    # Stays on screen with the saved code until the next call is offered.
    assert (card.phase, card.saved_code, card.call_id) == ("ended", "PTP", "c1")

    book.hear(offered(call_id="c2"), T0 + timedelta(seconds=90))
    card = book.get("siti")
    assert card is not None
    assert (card.phase, card.call_id, card.saved_code) == ("offered", "c2", None)


@pytest.mark.parametrize(
    ("wrap", "expected"),
    [(30, 30.0), (12.5, 12.5), (0, 0.0), (None, None)],
)
def test_call_ended_keeps_the_wrap_up_time_when_it_is_given(
    wrap: float | None, expected: float | None
) -> None:
    book = CardBook()
    book.hear(connected(), T0)
    book.hear(call_ended(wrap), T0)
    card = book.get("siti")
    assert card is not None
    assert card.phase == "ended"
    assert card.wrap_up_seconds == expected


@pytest.mark.parametrize(
    ("before", "result", "kept"),
    [
        ([offered()], "no_answer", False),
        ([offered()], "rona", False),
        ([offered()], "caller_left", False),
        ([offered()], "answered", True),  # the connected message follows
        ([offered(), connected()], "no_answer", True),
        ([offered(), connected()], "answered", True),
        ([offered(), connected(), call_ended()], "no_answer", True),
    ],
)
def test_offer_ended_removes_only_an_unanswered_offer(
    before: list[AgentEvent], result: str, kept: bool
) -> None:
    book = CardBook()
    for msg in before:
        book.hear(msg, T0)
    phase = book.cards["siti"].phase
    book.hear(offer_ended(result), T0)
    card = book.get("siti")
    assert (card is not None) is kept
    if card is not None:
        assert card.phase == phase


@pytest.mark.parametrize(
    "msg",
    [
        offer_ended("no_answer", call_id="other"),
        call_ended(30, call_id="other"),
        offer_ended("no_answer", agent="made"),
        call_ended(30, agent="made"),
        AgentStateChanged("siti", AgentState.ON_CALL, "", AgentState.RINGING, T0, "c1"),
        CallHeld("siti", "c1"),
        CallUnheld("siti", "c1"),
        HoldReminder("siti", "c1", 60.0),
    ],
)
def test_messages_about_another_call_or_agent_change_nothing(msg: AgentEvent) -> None:
    book = CardBook()
    book.hear(offered(), T0)
    before = book.get("siti")
    book.hear(msg, T0 + timedelta(seconds=1))
    assert book.get("siti") == before
    assert book.get("made") is None


def test_a_new_offer_replaces_the_card_even_one_in_wrap_up() -> None:
    book = CardBook()
    book.hear(connected(call_id="c1"), T0)
    book.hear(call_ended(60, call_id="c1"), T0)
    book.hear(offered(call_id="c2"), T0 + timedelta(seconds=10))
    card = book.get("siti")
    assert card is not None
    assert (card.call_id, card.phase, card.ended_at, card.wrap_up_seconds) == (
        "c2",
        "offered",
        None,
        None,
    )
    # The old call's end, arriving late, does not touch the new card.
    book.hear(call_ended(60, call_id="c1"), T0 + timedelta(seconds=11))
    assert book.cards["siti"].phase == "offered"


@pytest.mark.parametrize(
    ("agent", "call_id", "saved"),
    [("siti", "c1", "PTP"), ("siti", "c2", None), ("made", "c1", None)],
)
def test_saved_marks_only_the_matching_card(agent: str, call_id: str, saved: str | None) -> None:
    book = CardBook()
    book.hear(connected(), T0)
    book.saved(agent, call_id, "PTP")
    assert book.cards["siti"].saved_code == saved
    assert "made" not in book.cards


def test_each_agent_has_their_own_card() -> None:
    book = CardBook()
    book.hear(offered("siti", "c1"), T0)
    book.hear(offered("made", "c2"), T0)
    book.hear(offer_ended("no_answer", "siti", "c1"), T0)
    assert book.get("siti") is None
    made = book.get("made")
    assert made is not None
    assert made.call_id == "c2"


def test_hear_stamps_the_current_time_when_none_is_given() -> None:
    book = CardBook()
    before = datetime.now(UTC)
    book.hear(offered())
    card = book.get("siti")
    assert card is not None
    assert before <= card.at <= datetime.now(UTC)


# Any mix of messages for two agents and three calls: a card always shows the agent's latest
# offered or connected call, in a phase that call's own messages put it in.
agents_ = st.sampled_from(["siti", "made"])
calls_ = st.sampled_from(["c1", "c2", "c3"])
messages = st.one_of(
    st.builds(offered, agents_, calls_),
    st.builds(connected, agents_, calls_),
    st.builds(offer_ended, st.sampled_from(["no_answer", "rona", "answered"]), agents_, calls_),
    st.builds(call_ended, st.sampled_from([None, 0, 30]), agents_, calls_),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(messages, max_size=30))
def test_a_card_is_always_the_agents_latest_call(sequence: list[AgentEvent]) -> None:
    book = CardBook()
    latest: dict[str, tuple[str, str]] = {}  # agent -> (call id, offered | connected)
    ended: set[str] = set()  # agents whose latest call has ended
    for msg in sequence:
        book.hear(msg, T0)
        agent = msg.agent_id
        if isinstance(msg, AgentOffered | AgentConnected):
            latest[agent] = (msg.call.call_id, msg.kind)
            ended.discard(agent)
        elif isinstance(msg, events.CallEnded) and latest.get(agent, ("",))[0] == msg.call_id:
            ended.add(agent)
        for who in ("siti", "made"):
            card = book.get(who)
            if card is None:
                continue
            assert who in latest
            call_id, how = latest[who]
            assert card.call_id == call_id
            if who in ended:
                assert card.phase == "ended"
            else:
                assert card.phase == how


# ---- what a card shows ------------------------------------------------------------------------


def card_of(**attributes: Any) -> Card:
    return Card(call("c1", **attributes), "connected", T0)


IVR_CALL = {
    "caller_number": "0812000111",
    "did": "1500",
    "language": "id",
    "caller_name": "Budi",
    "account": "ACC-77",
    "menu_choice": "2",
    "crm_name": "Budi Santoso",
    "crm_amount_due": "1250000",
    "crm_account": "ACC-77",
}
DIALER_CALL = {
    "campaign": "bucket30",
    "account_id": "ACC-9",
    "debtor_name": "Sari",
    "amount_due": "2500000",
    "days_past_due": "31",
    "bucket": "B2",
    "zone": "WIB",
    "attempts": 2,
    "extra.branch": "Bandung",
    "extra.product": "KTA",
    "crm_score": "7",
    "note": "x",
}


@pytest.mark.parametrize(
    ("attrs", "is_dialer", "ivr", "lookup", "debtor", "extra", "account"),
    [
        (
            IVR_CALL,
            False,
            {"account": "ACC-77", "menu_choice": "2"},
            {"name": "Budi Santoso", "amount_due": "1250000", "account": "ACC-77"},
            {},
            {},
            "ACC-77",
        ),
        (
            DIALER_CALL,
            True,
            {},  # a dialler call shows the debtor, not IVR entries
            {"score": "7"},
            {
                "campaign": "bucket30",
                "account_id": "ACC-9",
                "debtor_name": "Sari",
                "amount_due": "2500000",
                "days_past_due": "31",
                "bucket": "B2",
                "attempts": "2",
                "zone": "WIB",
            },
            {"branch": "Bandung", "product": "KTA"},
            "ACC-9",
        ),
        ({}, False, {}, {}, {}, {}, None),
        # a campaign attribute alone does not make a dialler call
        ({"campaign": "x"}, False, {"campaign": "x"}, {}, {"campaign": "x"}, {}, None),
        ({"crm_account": "ACC-1"}, False, {}, {"account": "ACC-1"}, {}, {}, "ACC-1"),
        # account_id wins over account, which wins over crm_account
        (
            {"account_id": "A1", "account": "A2", "crm_account": "A3"},
            False,
            {"account_id": "A1", "account": "A2"},
            {"account": "A3"},
            {"account_id": "A1"},
            {},
            "A1",
        ),
        (
            {"account": "A2", "crm_account": "A3"},
            False,
            {"account": "A2"},
            {"account": "A3"},
            {},
            {},
            "A2",
        ),
        (
            {"account_id": "", "account": "A2"},
            False,
            {"account_id": "", "account": "A2"},
            {},
            {"account_id": ""},
            {},
            "A2",
        ),
        # values are shown as text whatever their type
        ({"digits": 42, "flag": True}, False, {"digits": "42", "flag": "True"}, {}, {}, {}, None),
    ],
)
def test_card_sections(
    attrs: dict[str, Any],
    is_dialer: bool,
    ivr: dict[str, str],
    lookup: dict[str, str],
    debtor: dict[str, str],
    extra: dict[str, str],
    account: str | None,
) -> None:
    card = card_of(**attrs)
    assert card.is_dialer is is_dialer
    assert card.ivr_inputs() == ivr
    assert card.lookup() == lookup
    assert card.debtor() == debtor
    assert list(card.debtor()) == list(debtor)  # in the order the card lists them
    assert card.extra() == extra
    assert card.account == account


@pytest.mark.parametrize(
    "call_dict",
    [
        {"call_id": "c1"},
        {"call_id": "c1", "attributes": None},
        {"call_id": "c1", "attributes": {}},
    ],
)
def test_a_call_without_attributes_shows_empty_sections(call_dict: dict[str, Any]) -> None:
    card = Card(call_dict, "offered", T0)
    assert (card.attributes, card.ivr_inputs(), card.lookup(), card.account) == ({}, {}, {}, None)


def test_call_id_is_text_even_when_missing() -> None:
    assert Card({}, "offered", T0).call_id == ""
    assert Card({"call_id": 7}, "offered", T0).call_id == "7"


# ---- formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1250000"), "Rp 1.250.000"),
        ("1250000.50", "Rp 1.250.000,50"),
        ("1250000.00", "Rp 1.250.000"),  # cents only when there are some
        (1250000, "Rp 1.250.000"),
        (0, "Rp 0"),
        ("999", "Rp 999"),
        ("1000", "Rp 1.000"),
        ("0.05", "Rp 0,05"),
        ("12.5", "Rp 12,50"),
        ("-1250000.50", "Rp -1.250.000,50"),
        ("-0.50", "Rp -0,50"),  # the sign is kept when the whole part is zero
        ("1.999", "Rp 2"),  # rounded to the sen, not cut off at it
        ("1.005", "Rp 1"),  # half to even, as Decimal rounds by default
        ("1.994", "Rp 1,99"),
        ("1E+3", "Rp 1.000"),
        # not a number: shown as given rather than breaking the page
        ("abc", "abc"),
        ("", ""),
        (None, "None"),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
    ],
)
def test_rupiah(value: Any, text: str) -> None:
    assert rupiah(value) == text


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=-(10**15), max_value=10**15, places=2, allow_nan=False))
def test_rupiah_reads_back_as_the_same_amount(amount: Decimal) -> None:
    text = rupiah(amount)
    assert text.startswith("Rp ")
    digits = text[3:]
    whole, _, cents = digits.partition(",")
    assert all(len(g) == 3 for g in whole.lstrip("-").split(".")[1:])
    assert cents == "" or len(cents) == 2
    assert Decimal(digits.replace(".", "").replace(",", ".")) == amount


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00"),
        (None, "00:00"),
        (5, "00:05"),
        (59.9, "00:59"),
        (60, "01:00"),
        (754, "12:34"),
        (3599, "59:59"),
        (3600, "1:00:00"),
        (3661, "1:01:01"),
        (36000, "10:00:00"),
        ("90", "01:30"),
    ],
)
def test_clock(seconds: Any, text: str) -> None:
    assert clock(seconds) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0.0%"), (None, "0.0%"), (0.8, "80.0%"), (0.1234, "12.3%"), (1, "100.0%")],
)
def test_percent(value: Any, text: str) -> None:
    assert percent(value) == text


@pytest.mark.parametrize(
    ("value", "tz", "iso"),
    [
        # getTimezoneOffset is UTC minus local: Jakarta (UTC+7) sends -420
        ("2026-03-02T14:30", "-420", "2026-03-02T14:30+07:00"),
        ("2026-03-02T14:30", "-480", "2026-03-02T14:30+08:00"),  # Makassar
        ("2026-03-02T14:30", "-540", "2026-03-02T14:30+09:00"),  # Jayapura
        ("2026-03-02T14:30", "-330", "2026-03-02T14:30+05:30"),
        ("2026-03-02T14:30", "0", "2026-03-02T14:30+00:00"),
        ("2026-03-02T14:30", "300", "2026-03-02T14:30-05:00"),
        ("2026-03-02T14:30", "570", "2026-03-02T14:30-09:30"),
        # no usable offset: left as it is, and the engine's check asks for one
        ("2026-03-02T14:30", "", "2026-03-02T14:30"),
        ("2026-03-02T14:30", "abc", "2026-03-02T14:30"),
        ("2026-03-02T14:30", "-", "2026-03-02T14:30"),
        ("2026-03-02T14:30", "--420", "2026-03-02T14:30"),
        ("2026-03-02T14:30", "4.5", "2026-03-02T14:30"),
        ("2026-03-02T14:30", "\u00b2", "2026-03-02T14:30"),  # a digit to isdigit, not to int
    ],
)
def test_local_to_iso(value: str, tz: str, iso: str) -> None:
    assert local_to_iso(value, tz) == iso


@settings(max_examples=200, deadline=None)
@given(st.integers(-14 * 60, 12 * 60))
def test_local_to_iso_gives_the_browsers_offset(js_offset: int) -> None:
    iso = local_to_iso("2026-03-02T14:30", str(js_offset))
    at = datetime.fromisoformat(iso)
    assert at.utcoffset() == timedelta(minutes=-js_offset)
