"""The benchmark's own arithmetic: parsing SIPp's trace and pairing INVITEs with first audio."""

from __future__ import annotations

from datetime import datetime

from bench.first_audio import _silent, invite_times, latencies, pct

TRACE = """----------------------------------------------- 2026-11-22 23:43:21.611629
UDP message sent (566 bytes):

INVITE sip:7000@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1

----------------------------------------------- 2026-11-22 23:43:21.650000
UDP message received [300] bytes :

SIP/2.0 200 OK

----------------------------------------------- 2026-11-22 23:43:21.651000
UDP message sent (300 bytes):

ACK sip:7000@127.0.0.1:5060 SIP/2.0

----------------------------------------------- 2026-11-22 23:43:23.000000
UDP message sent (566 bytes):

INVITE sip:7000@127.0.0.1:5060 SIP/2.0
"""


def ts(s: str) -> float:
    return datetime.fromisoformat(f"2026-11-22 {s}").timestamp()


def test_only_initial_invites_are_taken_with_their_send_time() -> None:
    assert invite_times(TRACE) == [ts("23:43:21.611629"), ts("23:43:23.000000")]


def test_each_invite_pairs_with_the_first_audio_before_the_next_invite() -> None:
    invites = [10.0, 20.0, 30.0]
    audio = [10.05, 10.5, 20.2, 35.0]
    assert latencies(invites, audio) == [0.05000000000000071, 0.1999999999999993, 5.0]
    assert latencies([10.0, 20.0], [20.1]) == [0.10000000000000142]  # call 1 had no audio


def test_silence_detection_for_g711() -> None:
    assert _silent(0, b"\xff" * 160)
    assert _silent(8, b"\xd5" * 160)
    assert not _silent(0, bytes(range(160)))
    assert _silent(101, bytes(range(16)))  # telephone-event is never audio


def test_percentiles() -> None:
    assert pct([3.0, 1.0, 2.0], 0.5) == 2.0
    assert pct(list(map(float, range(101))), 0.99) == 99.0
