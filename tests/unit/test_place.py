"""sambung/acd/place.py: a waiting caller's place as written on its channel, and read back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sambung.acd.place import PlaceTag, PlaceUnreadable, format_place, parse_place, rebase

T0 = datetime(2026, 12, 29, 3, 0, 0, 123000, tzinfo=UTC)
TAG = PlaceTag(
    entry_id="1767000000.42-q3",
    queue="collections",
    kind="caller",
    priority=0,
    first_wall=T0,
    entry_wall=T0 + timedelta(seconds=61),
    language="en",
)


def test_the_written_place_is_compact_versioned_and_reads_back() -> None:
    text = format_place(TAG)
    assert text == (
        "1;e=1767000000.42-q3;q=collections;k=caller;p=0;f=1798513200123;j=1798513261123;"
        "l=en;r=0;g=0"
    )
    assert parse_place(text) == TAG
    assert len(text) < 120


def test_empty_is_no_place() -> None:
    assert parse_place("") is None


walls = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
texts = st.text(min_size=1, max_size=20)


@given(
    st.builds(
        PlaceTag,
        entry_id=texts,
        queue=texts,
        kind=texts,
        priority=st.integers(-9, 9),
        first_wall=walls,
        entry_wall=walls,
        language=st.sampled_from(["en", "id"]),
        relax_step=st.sampled_from([0, 1]),
        pinned_agent=st.none() | texts,
        generation=st.integers(0, 1000),
    ),
    st.none() | st.tuples(texts, texts, walls),
)
def test_any_place_reads_back_as_written_whatever_its_values_hold(
    tag: PlaceTag, talk: tuple[str, str, datetime] | None
) -> None:
    if talk is not None:
        tag = replace(tag, talk_agent=talk[0], talk_leg=talk[1], talk_wall=talk[2])
    assert parse_place(format_place(tag)) == tag
    assert parse_place(format_place(tag)).talking is (talk is not None)  # type: ignore[union-attr]


def test_a_talk_is_written_with_its_agent_leg_and_start() -> None:
    talk = replace(
        TAG, talk_agent="siti", talk_leg="leg-0123", talk_wall=T0 + timedelta(seconds=90)
    )
    text = format_place(talk)
    assert text.endswith(";ta=siti;tl=leg-0123;tt=1798513290123")
    assert parse_place(text) == talk


@pytest.mark.parametrize(
    "text",
    [
        "2;e=x;q=y",  # a newer engine's place
        "1;e=c1-q1;q=support",  # fields missing
        "1;e=c1-q1;q=support;k=caller;p=zero;f=1;j=1;l=en;r=0;g=0",
        "1;e=c1-q1;q=support;k=caller;p=0;f=1;j=1;l=en;r=7;g=0",  # no such relaxation step
        "1;e=;q=support;k=caller;p=0;f=1;j=1;l=en;r=0;g=0",
        "1;e=c1-q1;e=c1-q2;q=support;k=caller;p=0;f=1;j=1;l=en;r=0;g=0",
        "1;garbage",
        # a talk with its agent but no leg or start
        "1;e=c1-q1;q=support;k=caller;p=0;f=1;j=1;l=en;r=0;g=0;ta=siti",
        "hello",
    ],
)
def test_what_is_not_a_place_of_this_version_is_unreadable(text: str) -> None:
    with pytest.raises(PlaceUnreadable):
        parse_place(text)


def test_a_place_moves_onto_this_loops_clock_keeping_its_distance_from_now() -> None:
    now = T0 + timedelta(minutes=5)
    assert rebase(T0, now, 1000.0) == pytest.approx(700.0)
    # Two callers keep their order and their gap.
    assert rebase(T0, now, 1000.0) < rebase(T0 + timedelta(seconds=2), now, 1000.0)
    # A wall clock behind the earlier host's: no wait, never a place in the future.
    assert rebase(now + timedelta(seconds=3), now, 1000.0) == 1000.0
