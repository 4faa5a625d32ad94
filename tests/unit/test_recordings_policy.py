"""The recordings feature's pure decisions: rules, roles, retention, Range, names, WAV length."""

from __future__ import annotations

import io
import wave
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sambung.recordings.errors import RangeNotSatisfiable
from sambung.recordings.model import (
    Action,
    ByteRange,
    PausedSpan,
    Policy,
    RetentionCandidate,
    Role,
    Rules,
    ScopeRules,
)
from sambung.recordings.policy import (
    NotWav,
    close_spans,
    expired,
    may,
    parse_range,
    recording_name,
    rules_for,
    shortest_retention,
    store_key,
    wav_duration,
)

NOW = datetime(2026, 8, 6, 12, 0, tzinfo=UTC)
RULES = Rules(
    ScopeRules(Policy.ALL, 90, ("sound:beep",)),
    queues={"sales": ScopeRules(Policy.ON_DEMAND, 30), "hr": ScopeRules(Policy.NONE, 0)},
    campaigns={"kolek-30": ScopeRules(Policy.ALL, 365)},
)


@pytest.mark.parametrize(
    ("queue", "campaign", "policy", "days"),
    [
        ("support", None, Policy.ALL, 90),  # no override: the defaults
        ("sales", None, Policy.ON_DEMAND, 30),
        ("hr", None, Policy.NONE, 0),
        ("dialer-kolek-30", "kolek-30", Policy.ALL, 365),  # a campaign's own rules
        ("sales", "kolek-30", Policy.ALL, 365),  # the campaign wins over its queue
        ("sales", "other", Policy.ON_DEMAND, 30),  # an unknown campaign: the queue's
    ],
)
def test_given_overrides_when_rules_for_then_campaign_then_queue_then_default(
    queue: str, campaign: str | None, policy: Policy, days: int
) -> None:
    r = rules_for(RULES, queue, campaign)
    assert (r.policy, r.retention_days) == (policy, days)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.AGENT, {Action.CONTROL}),
        (Role.SUPERVISOR, set(Action) - {Action.AUDIT}),
        (Role.ADMIN, set(Action)),
    ],
)
def test_roles(role: Role, allowed: set[Action]) -> None:
    assert {a for a in Action if may(role, a)} == allowed


def _cand(
    name: str, queue: str, age_days: float, campaign: str | None = None
) -> RetentionCandidate:
    return RetentionCandidate(name, queue, campaign, NOW - timedelta(days=age_days), f"k/{name}")


def test_given_recordings_of_every_scope_when_retention_then_exactly_the_expired() -> None:
    cands = [
        _cand("a", "support", 89.9),  # default 90 days: kept
        _cand("b", "support", 90.0),  # exactly 90 days: gone
        _cand("c", "sales", 31),  # sales keeps 30
        _cand("d", "sales", 29),
        _cand("e", "hr", 5000),  # 0 days: kept for ever
        _cand("f", "dialer-kolek-30", 300, "kolek-30"),  # the campaign keeps 365
        _cand("g", "dialer-kolek-30", 366, "kolek-30"),
    ]
    assert [c.name for c in expired(cands, RULES, NOW)] == ["b", "c", "g"]
    assert shortest_retention(RULES) == 30
    assert shortest_retention(Rules(ScopeRules(Policy.ALL, 0))) is None


@pytest.mark.parametrize(
    ("header", "size", "want"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, ByteRange(0, 9)),
        ("bytes=10-", 100, ByteRange(10, 99)),
        ("bytes=-10", 100, ByteRange(90, 99)),
        ("bytes=-500", 100, ByteRange(0, 99)),
        ("bytes=90-500", 100, ByteRange(90, 99)),  # clipped to the end
        ("bytes=0-999999999999999999", 100, ByteRange(0, 99)),  # 18 digits: clipped
        ("bytes= 5 - 6 ", 100, ByteRange(5, 6)),
        ("BYTES=0-1", 100, ByteRange(0, 1)),  # the unit is case-insensitive
        ("items=0-1", 100, None),  # another unit: ignored (RFC 9110 section 14.2)
    ],
)
def test_parse_range(header: str | None, size: int, want: ByteRange | None) -> None:
    assert parse_range(header, size) == want


@pytest.mark.parametrize(
    ("header", "size"),
    [
        pytest.param("bytes=100-", 100, id="starts past the end"),
        pytest.param("bytes=-0", 100, id="empty suffix"),
        pytest.param("bytes=0-", 0, id="empty file"),
        pytest.param("bytes=" + "9" * 5000, 100, id="5000 digits"),
        pytest.param("bytes=0-" + "9" * 5000, 100, id="5000-digit end"),
        pytest.param("bytes=-" + "9" * 5000, 100, id="5000-digit suffix"),
        pytest.param("bytes=1000000000000000000-", 100, id="19 digits"),
        pytest.param("bytes=0-1,5-6", 100, id="two ranges"),
        pytest.param("bytes=" + ",".join(["0-1"] * 500), 100, id="many ranges"),
        pytest.param("bytes=9-3", 100, id="end before start"),
        pytest.param("bytes=abc", 100, id="garbage"),
        pytest.param("bytes=-", 100, id="no numbers"),
        pytest.param("bytes=", 100, id="nothing"),
        pytest.param("bytes=1-2-3", 100, id="three numbers"),
        pytest.param("bytes=\u0661-\u0662", 100, id="non-ASCII digits"),
        pytest.param("bytes=+1-2", 100, id="a sign"),
        pytest.param("garbage", 100, id="no unit"),
        pytest.param("by tes=0-1", 100, id="not a unit"),
        pytest.param("=0-1", 100, id="empty unit"),
    ],
)
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as err:
        parse_range(header, size)
    assert err.value.size == size
    assert len(err.value.detail) < 200  # the header is not echoed back whole


@given(st.integers(1, 10_000), st.integers(0, 20_000), st.integers(0, 20_000))
def test_a_satisfiable_range_always_lies_inside_the_file(size: int, a: int, b: int) -> None:
    for header in (f"bytes={a}-{b}", f"bytes={a}-", f"bytes=-{b}"):
        try:
            r = parse_range(header, size)
        except RangeNotSatisfiable:
            assert a >= size or header == "bytes=-0" or (header == f"bytes={a}-{b}" and b < a)
            continue
        assert r is not None
        assert 0 <= r.start <= r.end < size
        assert r.length == r.end - r.start + 1


_RANGE_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="bytes=-,0123456789 \t", max_size=60),
    st.builds(
        lambda unit, parts: unit + "=" + ",".join(parts),
        st.sampled_from(["bytes", "Bytes", "items", "", "b ytes"]),
        st.lists(
            st.builds(
                lambda a, b: f"{a}-{b}",
                st.one_of(st.just(""), st.integers(0, 10**30).map(str)),
                st.one_of(st.just(""), st.integers(0, 10**30).map(str)),
            ),
            max_size=4,
        ),
    ),
    # Numbers far past what int() converts (4300 digits), as digits, not ints: str(int) fails.
    st.builds(
        lambda digits, tail: f"bytes={digits}{tail}",
        st.integers(1, 6000).map(lambda k: "9" * k),
        st.sampled_from(["-", "-0", "", "-1,0-1"]),
    ),
)


@given(_RANGE_TEXT, st.integers(0, 10**12))
def test_fuzzed_ranges_parse_inside_the_file_or_raise_only_range_not_satisfiable(
    header: str, size: int
) -> None:
    try:
        r = parse_range(header, size)
    except RangeNotSatisfiable as err:
        refused_size: int | None = err.size
    else:
        refused_size = None
    if refused_size is not None:
        assert refused_size == size
    elif r is not None:
        assert 0 <= r.start <= r.end < size
        assert r.length == r.end - r.start + 1


def test_names_and_keys() -> None:
    assert recording_name("1754480000.42", 1) == "sambung/1754480000.42"
    assert recording_name("1754480000.42", 2) == "sambung/1754480000.42-2"
    at = datetime(2026, 8, 6, 23, 59, tzinfo=UTC)
    assert store_key("sambung/1754480000.42-2", at, "wav") == "2026/08/06/1754480000.42-2.wav"
    assert store_key("sambung/../x y", at, "wav") == "2026/08/06/x_y.wav"


def _wav(seconds: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(seconds * rate))
    return buf.getvalue()


def test_wav_duration_reads_the_header() -> None:
    assert wav_duration(_wav(2.5)) == pytest.approx(2.5)
    assert wav_duration(_wav(1.0, 16000)) == pytest.approx(1.0)
    truncated = _wav(2.0)[:-8000]  # a header that promises more than is there
    assert wav_duration(truncated) == pytest.approx(1.5)
    with pytest.raises(NotWav):
        wav_duration(b"OggS" + b"\x00" * 40)


def test_an_open_paused_span_is_closed_at_the_end() -> None:
    spans = [PausedSpan(1.0, 2.0), PausedSpan(5.0, None)]
    assert close_spans(spans, 9.5) == (PausedSpan(1.0, 2.0), PausedSpan(5.0, 9.5))
