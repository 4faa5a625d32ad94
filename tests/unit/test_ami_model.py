"""Pure parts of the AMI adapter: typed messages, the idempotency policy, backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sambung.asterisk.ami.actions import (
    IDEMPOTENT_ACTIONS,
    NON_IDEMPOTENT_ACTIONS,
    SESSION_ACTIONS,
    forgetable_actions,
    is_idempotent,
)
from sambung.asterisk.ami.adapter import backoff_delay
from sambung.asterisk.ami.model import AmiMessage, CoreChannel, FullyBooted, PjsipContact
from tests.fakes.fake_ami import FakeContact


def test_headers_are_case_insensitive_and_repeated_headers_keep_every_value() -> None:
    msg = AmiMessage.from_headers(
        {"Response": "Success", "ChanVariable": ["A=1", "B=2"], "ActionID": "x-1"}
    )
    assert msg.get("response") == "Success"
    assert msg.response == "Success"
    assert msg.action_id == "x-1"
    assert msg.get("CHANVARIABLE") == "A=1"
    assert msg.get_all("chanvariable") == ("A=1", "B=2")
    assert msg.get("missing", "d") == "d"
    assert msg.get_all("missing") == ()


@pytest.mark.parametrize(
    ("response", "is_error"),
    [("Success", False), ("Follows", False), ("Error", True), ("Fail", True), ("Failure", True)],
)
def test_error_responses(response: str, is_error: bool) -> None:
    assert AmiMessage.from_headers({"Response": response}).is_error is is_error


def test_message_strips_the_trailing_newline_asterisk_puts_in_some_errors() -> None:
    msg = AmiMessage.from_headers({"Response": "Error", "Message": "No Contacts found\n"})
    assert msg.message == "No Contacts found"


def test_fully_booted_as_sent_by_manager_c() -> None:
    msg = AmiMessage.from_headers(
        {
            "Event": "FullyBooted",
            "Privilege": "system,all",
            "Uptime": "12",
            "LastReload": "7",
            "Status": "Fully Booted",
        }
    )
    assert FullyBooted.from_message(msg) == FullyBooted(12, 7, "Fully Booted")


def test_fully_booted_with_missing_numbers_does_not_raise() -> None:
    msg = AmiMessage.from_headers({"Event": "FullyBooted", "Uptime": "?"})
    assert FullyBooted.from_message(msg) == FullyBooted(0, 0, "")


def test_static_contact_in_a_contact_list_has_its_aor_from_the_object_name_and_no_endpoint() -> (
    None
):
    item = FakeContact("customers", "customers", "sip:a", static=True).contact_list_item()
    msg = AmiMessage.from_headers({"Event": "ContactList", **item})
    assert PjsipContact.from_message(msg) == PjsipContact(
        endpoint="", aor="customers", uri="sip:a", status="NonQualified", roundtrip_usec=None
    )


def test_registered_contact_has_endpoint_and_round_trip() -> None:
    fake = FakeContact("agent-1001", "agent-1001", "sip:1001@h:5071", False, "Reachable", 1834)
    msg = AmiMessage.from_headers({"Event": "ContactList", **fake.contact_list_item()})
    assert PjsipContact.from_message(msg) == PjsipContact(
        endpoint="agent-1001",
        aor="agent-1001",
        uri="sip:1001@h:5071",
        status="Reachable",
        roundtrip_usec=1834,
    )


def test_contact_status_detail_as_sent_by_pjsip_show_endpoint_on_22() -> None:
    # Recorded from Asterisk 22.10.1 (sandbox), PJSIPShowEndpoint Endpoint=customers.
    msg = AmiMessage.from_headers(
        {
            "Event": "ContactStatusDetail",
            "AOR": "customers",
            "URI": "sip:127.0.0.1:5080",
            "UserAgent": "",
            "RegExpire": "0",
            "Status": "NonQualified",
            "RoundtripUsec": "N/A",
            "EndpointName": "customers",
            "ID": "customers@@26a3684dba4df9317535b46b1a27a1f6",
        }
    )
    assert PjsipContact.from_status_detail(msg) == PjsipContact(
        "customers", "customers", "sip:127.0.0.1:5080", "NonQualified", None
    )


def test_core_channel_duration_is_parsed_from_hh_mm_ss() -> None:
    msg = AmiMessage.from_headers(
        {
            "Event": "CoreShowChannel",
            "Channel": "PJSIP/trunk-00000001",
            "Uniqueid": "1763800000.1",
            "Linkedid": "1763800000.1",
            "ChannelStateDesc": "Up",
            "CallerIDNum": "0811",
            "Context": "from-trunk",
            "Exten": "1500",
            "Application": "Stasis",
            "ApplicationData": "sambung,inbound,1500",
            "Duration": "25:01:02",
            "BridgeId": "",
        }
    )
    ch = CoreChannel.from_message(msg)
    assert ch.duration_seconds == 25 * 3600 + 62
    assert ch.state == "Up"
    assert ch.application == "Stasis"


def test_the_two_action_sets_do_not_overlap() -> None:
    lower = {a.lower() for a in IDEMPOTENT_ACTIONS}
    assert lower.isdisjoint(a.lower() for a in NON_IDEMPOTENT_ACTIONS)
    assert lower.isdisjoint(a.lower() for a in SESSION_ACTIONS)


@pytest.mark.parametrize("name", ["Originate", "Hangup", "Redirect", "originate", "HANGUP"])
def test_call_changing_actions_are_not_idempotent(name: str) -> None:
    assert not is_idempotent(name)


@pytest.mark.parametrize(
    "name",
    ["Ping", "PJSIPShowContacts", "CoreShowChannels", "Status", "Getvar", "pjsipshowcontacts"],
)
def test_reads_are_idempotent(name: str) -> None:
    assert is_idempotent(name)


def test_an_action_nobody_classified_is_treated_as_not_idempotent() -> None:
    assert not is_idempotent("SomeNewActionIn23")


def test_every_call_changing_action_is_forgetable_for_panoramisk_in_its_lower_case() -> None:
    # panoramisk 1.4 compares ``action['action'].lower() in forgetable_actions``.
    forget = forgetable_actions()
    for name in NON_IDEMPOTENT_ACTIONS | {"Login", "Ping"}:
        assert name.lower() in forget


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    initial=st.floats(min_value=0.001, max_value=5.0),
    cap=st.floats(min_value=0.001, max_value=120.0),
    seed=st.integers(),
)
def test_backoff_stays_between_half_and_the_capped_exponential(
    attempt: int, initial: float, cap: float, seed: int
) -> None:
    delay = backoff_delay(attempt, initial, cap, random.Random(seed))
    ceiling = min(cap, initial * 2.0 ** min(attempt, 60))
    assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9
    assert delay <= cap + 1e-9


def test_backoff_grows_then_is_capped() -> None:
    rng = random.Random(1)
    highs = [min(30.0, 0.5 * 2**n) for n in range(10)]
    delays = [backoff_delay(n, 0.5, 30.0, rng) for n in range(10)]
    assert all(h / 2 <= d <= h for d, h in zip(delays, highs, strict=True))
    assert highs[-1] == 30.0
