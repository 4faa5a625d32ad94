"""Dialer attempts in the ARI translation, and the outcome table.

The translator must follow an originated call from before its HTTP response (ChannelDestroyed
for a busy number can come first) through AMD in the dialplan and back.
"""

from __future__ import annotations

import asyncio

import pytest

from sambung.asterisk.telephony import CallEventTranslator
from sambung.dialer.outcomes import CAUSE_OUTCOME, SIP_OUTCOME, classify
from sambung.engine.events import AmdDecided, CallEnded, CallerHungUp, OutboundAnswered
from tests.unit.test_ari_telephony import Sink, destroyed, feed, hangup_request, start, stasis_end

GRACE = 0.05


def translator(sink: Sink) -> CallEventTranslator:
    return CallEventTranslator("sambung", sink, destroyed_grace=GRACE)


@pytest.mark.parametrize(
    ("cause", "sip", "outcome"),
    [
        (17, 486, "busy"),
        (17, None, "busy"),
        (19, None, "no_answer"),  # the originate's own ring timeout
        (19, 480, "no_answer"),
        (16, 487, "no_answer"),  # our CANCEL
        (21, 603, "rejected"),
        (1, 404, "invalid_number"),
        (28, None, "invalid_number"),
        (34, 503, "congestion"),
        (38, None, "congestion"),
        (127, 599, "congestion"),  # an unlisted 5xx
        (27, 502, "failed"),
        (3, None, "failed"),  # no route: a trunk problem, not the debtor
        (None, None, "failed"),
        (99, 499, "failed"),
    ],
)
def test_outcome_from_cause_and_sip_status(
    cause: int | None, sip: int | None, outcome: str
) -> None:
    assert classify(cause, sip) == outcome


def test_every_table_entry_is_an_outcome_the_retry_rules_know() -> None:
    from sambung.engine.config import ATTEMPT_OUTCOMES

    assert set(SIP_OUTCOME.values()) | set(CAUSE_OUTCOME.values()) <= set(ATTEMPT_OUTCOMES)


async def test_an_unanswered_attempt_ends_with_its_cause_even_before_the_originate_returns() -> (
    None
):
    sink = Sink()
    t = translator(sink)
    t.track_outbound("d1")
    feed(t, hangup_request("d1", cause=17) | {"tech_cause": 486}, destroyed("d1", cause=17))
    assert len(sink) == 1
    ended = sink[0]
    assert isinstance(ended, CallEnded)
    assert (ended.call_id, ended.cause, ended.sip_code) == ("d1", 17, 486)
    feed(t, destroyed("d1", cause=17))
    assert len(sink) == 1  # exactly once


async def test_answer_amd_and_return_are_one_call() -> None:
    sink = Sink()
    t = translator(sink)
    t.track_outbound("d2")
    feed(t, start("d2", ("dialer", "kolek")))
    assert isinstance(sink[-1], OutboundAnswered)
    t.leaving_for_dialplan("d2")
    feed(t, stasis_end("d2"))
    await asyncio.sleep(GRACE * 3)
    assert not any(isinstance(e, CallEnded) for e in sink), "leaving for AMD is not the end"
    feed(t, start("d2", ("amd", "HUMAN", "HUMAN")))
    verdict = sink[-1]
    assert isinstance(verdict, AmdDecided)
    assert (verdict.status, verdict.cause) == ("HUMAN", "HUMAN")
    feed(t, hangup_request("d2"), stasis_end("d2"))
    assert isinstance(sink[-2], CallerHungUp)
    assert isinstance(sink[-1], CallEnded)


async def test_a_hang_up_during_amd_still_ends_the_call() -> None:
    sink = Sink()
    t = translator(sink)
    t.track_outbound("d3")
    feed(t, start("d3", ("dialer", "kolek")))
    t.leaving_for_dialplan("d3")
    feed(t, stasis_end("d3"), hangup_request("d3"), destroyed("d3", cause=16))
    kinds = [type(e).__name__ for e in sink]
    assert kinds == ["OutboundAnswered", "CallerHungUp", "CallEnded"]


async def test_an_unknown_stasis_start_with_dialer_args_is_not_taken() -> None:
    sink = Sink()
    t = translator(sink)
    feed(t, start("stranger", ("dialer", "kolek")))
    assert sink == []
