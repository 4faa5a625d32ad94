"""The SIPp desk phones themselves, against the real Asterisk: they register, ring, answer,
refuse, hold and hang up as the tests that use them assume, and Asterisk reports each in ARI.

Calls are originated over ARI into an application of this test's own (not the engine's), with
this test's WebSocket on it: an originate into an application with no WebSocket fails at once.
The application sees the originated channel from its creation (ringing, a failed dial's
ChannelDestroyed), then StasisStart when the phone answers.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.harness import ARI_PASSWORD, ARI_URL, ARI_USER
from tests.integration.phones import (
    AgentPhone,
    Answer,
    AnswerThenHold,
    Busy,
    NoAnswer,
    parse_invites,
)

APP = "sambung-phones-test"
# Ports of their own: the ACD tests' phones use 5091-5093 and a feature-code caller 5095.
PORT = 5191

Event = dict[str, Any]


class Ari:
    """This test's ARI application: REST calls and the events of its WebSocket, in order."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws
        self.events: list[Event] = []
        self._next = 0

    async def request(self, method: str, path: str, **params: Any) -> tuple[int, Any]:
        body = params.pop("json", None)
        async with self.http.request(
            method, f"{ARI_URL}/ari{path}", params=params, json=body
        ) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def originate(self, channel_id: str, endpoint: str, **params: Any) -> None:
        status, body = await self.request(
            "POST", "/channels", endpoint=endpoint, app=APP, channelId=channel_id, **params
        )
        assert status == 200, (status, body)

    async def event(
        self, kind: str, channel_id: str, timeout: float, where: Callable[[Event], bool] = bool
    ) -> Event:
        """The next event of ``kind`` on the channel (events before it are skipped, but stay
        in ``events``)."""
        deadline = time.monotonic() + timeout
        while True:
            while self._next < len(self.events):
                e = self.events[self._next]
                self._next += 1
                if (
                    e.get("type") == kind
                    and e.get("channel", {}).get("id") == channel_id
                    and where(e)
                ):
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [e.get("type") for e in self.events]
                raise AssertionError(f"no {kind} on {channel_id} within {timeout}s: {kinds}")
            msg = await self.ws.receive(timeout=left)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            self.events.append(json.loads(msg.data))

    async def hang_up(self, channel_id: str) -> None:
        status, body = await self.request("DELETE", f"/channels/{channel_id}")
        assert status in (204, 404), (status, body)  # 404: it is gone already


@pytest.fixture
async def ari() -> AsyncIterator[Ari]:
    cred = base64.b64encode(f"{ARI_USER}:{ARI_PASSWORD}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {cred}"}) as http:
        ws_url = ARI_URL.replace("http", "ws", 1) + "/ari/events"
        async with http.ws_connect(ws_url, params={"app": APP}) as ws:
            yield Ari(http, ws)


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[AgentPhone]:
    async with AgentPhone("agent1001", "a1001", PORT, workdir=tmp_path) as p:
        await p.register()
        yield p


def new_id() -> str:
    return f"phones-test-{uuid.uuid4()}"


async def test_given_a_phone_when_it_registers_and_unregisters_then_ari_follows(
    tmp_path: Path,
) -> None:
    async with AgentPhone("agent1001", "a1001", PORT, workdir=tmp_path) as p:
        await p.unregister()  # whatever an earlier run left
        assert await p.endpoint_state() == "offline"
        await p.register()
        assert await p.endpoint_state() == "online"
        await p.unregister()
        assert await p.endpoint_state() == "offline"


async def test_given_an_answering_phone_when_originated_then_it_sees_who_calls(
    phone: AgentPhone, ari: Ari
) -> None:
    await phone.serve(Answer(ring=0.3), calls=1, timeout=30)
    ch = new_id()
    sent = time.time()
    await ari.originate(
        ch,
        "PJSIP/agent1001",
        callerId='"Budi Santoso" <0811110001>',
        timeout=10,
        # Added to the INVITE by chan_pjsip: how the engine can tag an offer for the phone.
        json={"variables": {"PJSIP_HEADER(add,X-Sambung-Offer)": "offer-42"}},
    )
    invite = await phone.wait_invite(5)
    assert invite.user == "agent1001"
    assert (invite.number, invite.display) == ("0811110001", "Budi Santoso")
    assert invite.headers.get("X-Sambung-Offer") == "offer-42"
    assert sent - 0.5 < invite.at < time.time()
    # Answered after the ring: the channel enters the application.
    start = await ari.event("StasisStart", ch, 5)
    assert start["channel"]["state"] == "Up"
    await ari.hang_up(ch)
    gone = await ari.event("ChannelDestroyed", ch, 5)
    assert gone["cause"] == 16  # normal clearing
    assert await phone.finish(5) == 0  # the phone took the BYE as its scenario says
    assert len(phone.invites) == 1


async def test_given_a_phone_that_hangs_up_itself_then_normal_clearing(
    phone: AgentPhone, ari: Ari
) -> None:
    await phone.serve(Answer(hang_up_after=1.0), calls=1, timeout=30)
    ch = new_id()
    await ari.originate(ch, "PJSIP/agent1001", timeout=10)
    start = await ari.event("StasisStart", ch, 5)
    hangup = await ari.event("ChannelHangupRequest", ch, 5)
    gone = await ari.event("ChannelDestroyed", ch, 5)
    # Asterisk 22.10 reports no cause for a BYE from the far end of an originated channel:
    # ChannelHangupRequest has no "cause" and ChannelDestroyed says 0 "Unknown" (16 only when
    # Asterisk's side hangs up). Who hung up shows in the order of events, not in the cause.
    assert "cause" not in hangup
    assert (gone["cause"], gone["cause_txt"]) == (0, "Unknown")
    held = _seconds(hangup["timestamp"]) - _seconds(start["timestamp"])
    assert 0.8 < held < 2.5
    assert await phone.finish(5) == 0


async def test_given_a_busy_phone_when_originated_then_cause_17(
    phone: AgentPhone, ari: Ari
) -> None:
    await phone.serve(Busy(), calls=1, timeout=30)
    ch = new_id()
    await ari.originate(ch, "PJSIP/agent1001", timeout=10)
    gone = await ari.event("ChannelDestroyed", ch, 5)
    assert (gone["cause"], gone["cause_txt"]) == (17, "User busy")
    assert not [e for e in ari.events if e.get("type") == "StasisStart"]
    assert await phone.finish(5) == 0  # 486 acknowledged
    assert len(phone.invites) == 1


async def test_given_an_unanswered_phone_when_the_originate_times_out_then_cause_19(
    phone: AgentPhone, ari: Ari
) -> None:
    await phone.serve(NoAnswer(), calls=1, timeout=30)
    ch = new_id()
    sent = time.monotonic()
    await ari.originate(ch, "PJSIP/agent1001", timeout=2)
    ringing = await ari.event("ChannelStateChange", ch, 5)
    assert ringing["channel"]["state"] == "Ringing"
    gone = await ari.event("ChannelDestroyed", ch, 6)
    assert (gone["cause"], gone["cause_txt"]) == (19, "User alerting, no answer")
    assert 1.8 < time.monotonic() - sent < 4.0
    # CANCEL answered with 200, the INVITE with 487, and Asterisk's ACK taken.
    assert await phone.finish(5) == 0


async def test_given_a_phone_that_holds_then_ari_reports_hold_and_unhold(
    phone: AgentPhone, ari: Ari
) -> None:
    await phone.serve(AnswerThenHold(hold_after=0.5, hold_for=1.5), calls=1, timeout=30)
    ch = new_id()
    await ari.originate(ch, "PJSIP/agent1001", timeout=10)
    await ari.event("StasisStart", ch, 5)
    hold = await ari.event("ChannelHold", ch, 5)
    unhold = await ari.event("ChannelUnhold", ch, 5)
    held = _seconds(unhold["timestamp"]) - _seconds(hold["timestamp"])
    assert 1.2 < held < 2.5
    await ari.hang_up(ch)
    await ari.event("ChannelDestroyed", ch, 5)
    assert await phone.finish(5) == 0


async def test_given_a_phone_on_hold_when_the_far_end_hangs_up_then_the_phone_takes_the_bye(
    phone: AgentPhone, ari: Ari
) -> None:
    await phone.serve(AnswerThenHold(hold_after=0.2, hold_for=5.0), calls=1, timeout=30)
    ch = new_id()
    await ari.originate(ch, "PJSIP/agent1001", timeout=10)
    await ari.event("ChannelHold", ch, 5)
    await ari.hang_up(ch)
    gone = await ari.event("ChannelDestroyed", ch, 5)
    assert gone["cause"] == 16
    assert await phone.finish(3) == 0  # BYE answered mid-hold, not an aborted call


async def test_given_a_phone_when_it_re_registers_while_serving_then_calls_still_reach_it(
    phone: AgentPhone, ari: Ari
) -> None:
    # The REGISTER comes from another SIPp than the one answering: with rewrite_contact=no
    # the Contact's port stands, so a refresh mid-shift does not redirect the calls.
    await phone.serve(Busy(), calls=1, timeout=30)
    await phone.register()
    ch = new_id()
    await ari.originate(ch, "PJSIP/agent1001", timeout=10)
    await ari.event("ChannelDestroyed", ch, 5)
    assert len(phone.invites) == 1


def test_parse_invites_counts_a_retransmission_once_and_skips_re_invites() -> None:
    invite = (
        "INVITE sip:agent1001@127.0.0.1:5191 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKPj1\r\n"
        'From: "Siti \\"S\\" A" <sip:0811@127.0.0.1>;tag=abc\r\n'
        "To: <sip:agent1001@127.0.0.1>{to_tag}\r\n"
        "Call-ID: {call_id}\r\n"
        "CSeq: 100 INVITE\r\n"
        "P-Asserted-Identity: <sip:0811@127.0.0.1>\r\n"
        "X-Queue: support\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    sep = "-" * 47

    def block(stamp: str, text: str, direction: str = "received [500] bytes :") -> str:
        return f"{sep} 2026-11-23 03:00:{stamp}\nUDP message {direction}\n\n{text}\n\n"

    log = (
        block("01.000100", invite.format(to_tag="", call_id="c1"))
        + block("01.500000", invite.format(to_tag="", call_id="c1"))  # retransmission
        + block("02.000000", invite.format(to_tag="", call_id="c2"), "sent (500 bytes):")
        + block("03.250000", invite.format(to_tag=";tag=xyz", call_id="c1"))  # re-INVITE
        + block("04.000000", invite.format(to_tag="", call_id="c3"))
    )
    got = parse_invites(log)
    assert [i.call_id for i in got] == ["c1", "c3"]
    assert got[0].display == 'Siti "S" A'
    assert got[0].number == "0811"
    assert got[0].user == "agent1001"
    assert got[0].headers == {"P-Asserted-Identity": "<sip:0811@127.0.0.1>", "X-Queue": "support"}
    assert got[1].at - got[0].at == pytest.approx(2.9999, abs=1e-6)


def _seconds(ari_timestamp: str) -> float:
    # ARI: "2026-11-23T03:21:07.123+0000"
    return datetime.strptime(ari_timestamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
