"""Login attempt limits (``auth/ratelimit.py``): tables for each rule, and Hypothesis checking
the rules against a reference count over random attempt sequences.

``Book`` keeps the windows in memory the way ``sambung/auth/store.py`` keeps them in PostgreSQL (one
window per username and address, one per address) and lets the pure functions decide, so
these tests hold the rules themselves; tests/component/test_login_limits.py holds the store.

The reference counts failures straight from the history (those inside the window and, for a
username, after its last success) and says what ``retry_after`` must answer, so the property
covers both directions: nobody gets past a limit, and nobody under it is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.auth import ratelimit
from sambung.auth.ratelimit import Admission, InFlight, Limits, Times

WINDOW = 60.0


@dataclass
class Book:
    limits: Limits
    user: dict[tuple[str, str], Times] = field(default_factory=dict)
    addr: dict[str, Times] = field(default_factory=dict)

    def retry_after(self, username: str, address: str, now: float) -> float | None:
        user = self.user.get((username.lower(), address), ())
        return ratelimit.retry_after(user, self.addr.get(address, ()), self.limits, now)

    def admit(self, username: str, address: str, now: float) -> Admission:
        key = (username.lower(), address)
        a = ratelimit.admit(self.user.get(key, ()), self.addr.get(address, ()), self.limits, now)
        if a.retry_after is None:
            self.user[key], self.addr[address] = a.user, a.address
        return a

    def failed(self, username: str, address: str, now: float) -> None:
        """An attempt that was admitted and failed (it stays counted)."""
        assert self.admit(username, address, now).retry_after is None

    def succeeded(self, username: str, address: str, now: float) -> None:
        """An attempt that was admitted and succeeded."""
        assert self.admit(username, address, now).retry_after is None
        self.user.pop((username.lower(), address), None)
        self.addr[address] = ratelimit.succeeded(self.addr[address], now)


def limiter(per_user: int = 3, per_address: int = 10) -> Book:
    return Book(Limits(per_user, per_address, WINDOW))


def fail_at(lim: Book, times: list[float], user: str = "siti", ip: str = "10.0.0.1") -> None:
    for t in times:
        lim.failed(user, ip, t)


# ---- one username from one address ---------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "now", "expected"),
    [
        ([], 0.0, None),
        ([0.0], 1.0, None),
        ([0.0, 10.0], 11.0, None),  # one under the limit of 3
        ([0.0, 10.0, 20.0], 21.0, 39.0),  # at the limit: until 0.0 leaves (0 + 60 - 21)
        ([0.0, 10.0, 20.0], 59.0, 1.0),
        ([0.0, 10.0, 20.0], 59.5, 1.0),  # rounded up: never early
        ([0.0, 10.0, 20.0], 60.0, None),  # 0.0 has left: room for one more
        ([0.0, 10.0, 20.0], 69.0, None),
        ([0.0, 10.0, 20.0, 60.0], 61.0, 9.0),  # now 10.0 is the oldest counted failure
        ([0.0, 10.0, 20.0, 60.0], 70.0, None),
        ([5.0, 5.0, 5.0], 5.0, 60.0),  # equal times: all three counted
        ([0.25, 0.5, 0.75], 1.0, 60.0),  # 0.25 + 60 - 1 = 59.25, rounded up
    ],
)
def test_per_user_limit_and_its_sliding_window(
    failures: list[float], now: float, expected: float | None
) -> None:
    lim = limiter(per_user=3)
    fail_at(lim, failures)
    assert lim.retry_after("siti", "10.0.0.1", now) == expected


@pytest.mark.parametrize(
    ("failures", "now", "wait"),
    [
        # retry_after is exactly the time until the oldest counted failure leaves the window
        ([0.0, 30.0], 45.0, 15.0),
        ([12.0, 30.0], 45.0, 27.0),
        # Three over a limit of two (kept from when the limit was higher): the middle one
        # must leave for the third.
        ([0.0, 30.0, 50.0], 55.0, 35.0),
    ],
)
def test_retry_after_is_the_time_until_the_oldest_counted_failure_leaves(
    failures: list[float], now: float, wait: float
) -> None:
    lim = limiter(per_user=2)
    lim.user[("siti", "10.0.0.1")] = tuple(failures)
    assert lim.retry_after("siti", "10.0.0.1", now) == wait
    assert lim.retry_after("siti", "10.0.0.1", now + wait - 0.5) is not None
    assert lim.retry_after("siti", "10.0.0.1", now + wait) is None


@pytest.mark.parametrize(
    ("failed_as", "asking_as", "limited"),
    [
        ("siti", "siti", True),
        ("Siti", "siti", True),
        ("SITI", "sItI", True),
        ("siti", "made", False),  # another username from the same address
    ],
)
def test_usernames_are_counted_case_insensitively(
    failed_as: str, asking_as: str, limited: bool
) -> None:
    lim = limiter(per_user=2)
    fail_at(lim, [0.0, 1.0], user=failed_as)
    assert (lim.retry_after(asking_as, "10.0.0.1", 2.0) is not None) is limited


def test_the_same_username_from_another_address_is_its_own_key() -> None:
    lim = limiter(per_user=2)
    fail_at(lim, [0.0, 1.0], ip="10.0.0.1")
    assert lim.retry_after("siti", "10.0.0.1", 2.0) == 58.0
    assert lim.retry_after("siti", "10.0.0.2", 2.0) is None


# ---- one address over every username ---------------------------------------------------------


@pytest.mark.parametrize(
    ("usernames", "asking_as", "ip", "expected"),
    [
        (["a", "b", "c"], "d", "10.0.0.1", None),  # three of four
        (["a", "b", "c", "d"], "e", "10.0.0.1", 60.0),  # a fresh username is refused too
        (["a", "b", "c", "d"], "a", "10.0.0.1", 60.0),
        (["a", "b", "c", "d"], "e", "10.0.0.2", None),  # another address is not
        # one username, under its own limit of five, yet the address has had its four
        (["a", "A", "a", "A"], "b", "10.0.0.1", 60.0),
    ],
)
def test_per_address_limit_spans_usernames(
    usernames: list[str], asking_as: str, ip: str, expected: float | None
) -> None:
    lim = limiter(per_user=5, per_address=4)
    for name in usernames:
        lim.failed(name, "10.0.0.1", 0.0)
    assert lim.retry_after(asking_as, ip, 0.0) == expected


def test_the_longer_of_the_two_waits_is_given() -> None:
    lim = limiter(per_user=2, per_address=3)
    lim.failed("a", "10.0.0.1", 0.0)  # counts for the address only, as far as "b" goes
    lim.failed("b", "10.0.0.1", 20.0)
    lim.failed("b", "10.0.0.1", 30.0)
    # "b" may go at 80 (20 leaves); the address at 60 (0 leaves): the answer is the later
    assert lim.retry_after("b", "10.0.0.1", 40.0) == 40.0
    assert lim.retry_after("c", "10.0.0.1", 40.0) == 20.0


# ---- success ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("succeeded_as", "user_cleared"),
    [("siti", True), ("SITI", True), ("made", False)],
)
def test_success_clears_the_username_but_not_the_address(
    succeeded_as: str, user_cleared: bool
) -> None:
    lim = limiter(per_user=3, per_address=4)
    fail_at(lim, [0.0, 1.0])
    lim.succeeded(succeeded_as, "10.0.0.1", 2.0)
    lim.failed("siti", "10.0.0.1", 3.0)
    assert (lim.retry_after("siti", "10.0.0.1", 4.0) is None) is user_cleared
    # The address still counts every failure, and not the success: one more from anyone and
    # it is at its limit, so a guesser cannot reset their count by logging into an account
    # they own.
    assert lim.retry_after("nobody", "10.0.0.1", 4.0) is None
    lim.failed("other", "10.0.0.1", 5.0)
    assert lim.retry_after("nobody", "10.0.0.1", 6.0) == 54.0


def test_success_from_another_address_leaves_this_one_limited() -> None:
    lim = limiter(per_user=2)
    fail_at(lim, [0.0, 1.0])
    lim.succeeded("siti", "10.0.0.9", 1.5)
    assert lim.retry_after("siti", "10.0.0.1", 2.0) == 58.0


@pytest.mark.parametrize(
    ("window", "at", "left"),
    [
        ((1.0, 2.0, 3.0), 2.0, (1.0, 3.0)),
        ((2.0, 2.0), 2.0, (2.0,)),  # another attempt at the same instant stays counted
        ((1.0,), 5.0, (1.0,)),  # already gone from the window: nothing to give back
        ((), 5.0, ()),
    ],
)
def test_a_success_gives_back_its_own_slot_only(window: Times, at: float, left: Times) -> None:
    assert ratelimit.succeeded(window, at) == left


# ---- counted before the check ----------------------------------------------------------------


def test_attempts_still_being_checked_count_against_the_limit() -> None:
    """The reason attempts are counted when admitted: those that arrive while others are being
    checked must see them, or all of them get through."""
    lim = limiter(per_user=3, per_address=10)
    admitted = [lim.admit("siti", "10.0.0.1", 0.0) for _ in range(10)]
    assert [a.retry_after for a in admitted] == [None, None, None] + [60.0] * 7
    assert lim.user[("siti", "10.0.0.1")] == (0.0, 0.0, 0.0)
    # Another user from the address still has room: 3 of its 10 are taken.
    admitted = [lim.admit(f"u{i}", "10.0.0.1", 1.0) for i in range(8)]
    assert [a.retry_after for a in admitted] == [None] * 7 + [59.0]


def test_a_refused_attempt_changes_nothing() -> None:
    lim = limiter(per_user=1)
    lim.failed("siti", "10.0.0.1", 0.0)
    before = (dict(lim.user), dict(lim.addr))
    refused = lim.admit("siti", "10.0.0.1", 30.0)
    assert refused.retry_after == 30.0
    assert (lim.user, lim.addr) == before


# ---- checks in flight ------------------------------------------------------------------------


def test_checks_in_flight_are_capped_per_username_and_per_address() -> None:
    flying = InFlight(Limits(user_in_flight=2, address_in_flight=3))
    assert flying.enter("siti", "10.0.0.1")
    assert flying.enter("SITI", "10.0.0.2")
    assert not flying.enter("Siti", "10.0.0.3")  # two for siti, wherever from
    assert flying.enter("made", "10.0.0.1")
    assert flying.enter("andi", "10.0.0.1")
    assert not flying.enter("budi", "10.0.0.1")  # three from 10.0.0.1
    assert len(flying) == 4
    flying.leave("siti", "10.0.0.1")
    assert flying.enter("budi", "10.0.0.1")
    assert flying.enter("siti", "10.0.0.3")


def test_a_refused_check_takes_no_place_and_finished_ones_are_forgotten() -> None:
    flying = InFlight(Limits(user_in_flight=1, address_in_flight=1))
    assert flying.enter("siti", "10.0.0.1")
    assert not flying.enter("made", "10.0.0.1")  # refused by the address: made takes nothing
    assert flying.enter("made", "10.0.0.2")
    flying.leave("siti", "10.0.0.1")
    flying.leave("made", "10.0.0.2")
    assert len(flying) == 0
    assert not flying._users
    assert not flying._addresses


# ---- Hypothesis: the limiter agrees with a count over the whole history -----------------------

USERS = ("siti", "Siti", "made", "andi")
ADDRESSES = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
PER_USER, PER_ADDRESS = 3, 5
PROPS = settings(max_examples=300, deadline=None)


@dataclass(frozen=True)
class Attempt:
    username: str
    address: str
    step: float  # seconds since the previous attempt
    success: bool


# Halves are exact in binary, so sums of steps never land a hair either side of a window edge.
attempts = st.lists(
    st.builds(
        Attempt,
        st.sampled_from(USERS),
        st.sampled_from(ADDRESSES),
        st.one_of(st.just(0.0), st.integers(0, 80).map(lambda i: i * 0.5)),
        st.booleans(),
    ),
    max_size=80,
)


@dataclass(frozen=True)
class Failure:
    index: int
    at: float
    user: str
    address: str


def counted(
    history: list[Failure], last_success: dict[tuple[str, str], int], now: float
) -> tuple[dict[tuple[str, str], list[float]], dict[str, list[float]]]:
    """Times of the failures that still count at ``now``: per username and address (after
    its last success), and per address."""
    per_user: dict[tuple[str, str], list[float]] = {}
    per_addr: dict[str, list[float]] = {}
    for f in history:
        if f.at <= now - WINDOW:
            continue
        per_addr.setdefault(f.address, []).append(f.at)
        if f.index > last_success.get((f.user, f.address), -1):
            per_user.setdefault((f.user, f.address), []).append(f.at)
    return per_user, per_addr


def expected_wait(times: list[float], limit: int, now: float) -> float:
    return 0.0 if len(times) < limit else sorted(times)[len(times) - limit] + WINDOW - now


@PROPS
@given(attempts)
def test_limits_hold_and_refusals_match_the_history(sequence: list[Attempt]) -> None:
    lim = Book(Limits(PER_USER, PER_ADDRESS, WINDOW))
    history: list[Failure] = []
    last_success: dict[tuple[str, str], int] = {}
    now = 0.0
    for i, a in enumerate(sequence):
        now += a.step
        key = (a.username.lower(), a.address)
        per_user, per_addr = counted(history, last_success, now)
        wait = max(
            expected_wait(per_user.get(key, []), PER_USER, now),
            expected_wait(per_addr.get(a.address, []), PER_ADDRESS, now),
        )
        answer = lim.retry_after(a.username, a.address, now)
        assert answer == (None if wait <= 0 else float(math.ceil(wait)))
        if answer is not None:
            continue  # refused: the caller neither checks the password nor records anything
        if a.success:
            lim.succeeded(a.username, a.address, now)
            last_success[key] = i
        else:
            lim.failed(a.username, a.address, now)
            history.append(Failure(i, now, key[0], key[1]))
        # Whatever happened, no window holds more failures than the limits allow.
        per_user, per_addr = counted(history, last_success, now)
        assert all(len(t) <= PER_USER for t in per_user.values())
        assert all(len(t) <= PER_ADDRESS for t in per_addr.values())


@PROPS
@given(attempts)
def test_no_window_anywhere_holds_more_than_the_limits(sequence: list[Attempt]) -> None:
    """The same guarantee checked afterwards over every window, not only those ending now."""
    lim = Book(Limits(PER_USER, PER_ADDRESS, WINDOW))
    history: list[Failure] = []
    successes: dict[tuple[str, str], list[int]] = {}
    now = 0.0
    for i, a in enumerate(sequence):
        now += a.step
        if lim.retry_after(a.username, a.address, now) is not None:
            continue
        key = (a.username.lower(), a.address)
        if a.success:
            lim.succeeded(a.username, a.address, now)
            successes.setdefault(key, []).append(i)
        else:
            lim.failed(a.username, a.address, now)
            history.append(Failure(i, now, *key))
    for last in history:
        # Every failure that shares a window with ``last`` and came no later than it.
        inside = [f for f in history if f.index <= last.index and last.at - f.at < WINDOW]
        assert sum(f.address == last.address for f in inside) <= PER_ADDRESS
        key = (last.user, last.address)
        since = max((s for s in successes.get(key, []) if s < last.index), default=-1)
        assert sum((f.user, f.address) == key and f.index > since for f in inside) <= PER_USER
