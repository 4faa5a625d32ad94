"""Login attempt limits (pure: the caller passes the clock and the counted attempts).

Two sliding windows: attempts for one username from one address (a person mistyping, or a
guesser aiming at one account), and attempts from one address over every username (a guesser
walking a list). A key over its limit is refused until its oldest counted attempt leaves the
window, and the answer says how long that is, for the ``Retry-After`` header.

An attempt is counted *before* its password is checked (``admit``): counting only after the
check let every attempt that arrived during it through, since all of them saw the count as it
was. A failed attempt stays counted. A success clears the username's window and gives its own
slot in the address's window back (``succeeded``), but not the failures there: a guesser who
owns one account must not reset their count by logging into it between guesses.

The windows live where every engine sees them (PostgreSQL, ``auth/store.py``), and are read
and written under one lock per address, so two engines cannot both take the last slot.
``InFlight`` caps the checks running at once in one engine, per username and per address.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

Times = tuple[float, ...]


@dataclass(frozen=True)
class Limits:
    per_user: int = 5
    per_address: int = 30
    window_seconds: float = 900.0
    # Password checks running at once in one engine: a burst for one account, or from one
    # address, must not take every hashing thread. Small: a person types one password at a time.
    user_in_flight: int = 2
    address_in_flight: int = 4


@dataclass(frozen=True)
class Admission:
    """What ``admit`` decided: go ahead (``retry_after`` None) with the windows to store, which
    count this attempt, or wait ``retry_after`` seconds (the windows are left as they were)."""

    retry_after: float | None
    user: Times
    address: Times


def counted(times: Times, window: float, now: float) -> Times:
    """The attempts still inside the window at ``now``, oldest first."""
    return tuple(t for t in sorted(times) if t > now - window)


def _wait(times: Times, limit: int, window: float, now: float) -> float:
    if len(times) < limit:
        return 0.0
    # The attempt may go when enough have aged out to leave room for one more.
    return times[len(times) - limit] + window - now


def retry_after(user: Times, address: Times, limits: Limits, now: float) -> float | None:
    """Seconds to wait before another attempt may be tried, or None when it may go ahead."""
    w = limits.window_seconds
    worst = max(
        _wait(counted(user, w, now), limits.per_user, w, now),
        _wait(counted(address, w, now), limits.per_address, w, now),
    )
    return None if worst <= 0 else float(math.ceil(worst))


def admit(user: Times, address: Times, limits: Limits, now: float) -> Admission:
    """Count an attempt at ``now`` against both windows, or refuse it when either is full."""
    w = limits.window_seconds
    user, address = counted(user, w, now), counted(address, w, now)
    wait = retry_after(user, address, limits, now)
    if wait is not None:
        return Admission(wait, user, address)
    return Admission(None, (*user, now), (*address, now))


def succeeded(address: Times, at: float) -> Times:
    """The address's window once the attempt counted at ``at`` turned out to be a success
    (the username's window is simply emptied)."""
    rest = list(address)
    if at in rest:
        rest.remove(at)  # one slot: another attempt made at the same instant stays counted
    return tuple(rest)


@dataclass
class InFlight:
    """Password checks under way in this engine, per username and per address."""

    limits: Limits = field(default_factory=Limits)
    _users: Counter[str] = field(default_factory=Counter)
    _addresses: Counter[str] = field(default_factory=Counter)

    def enter(self, username: str, address: str) -> bool:
        """Take a place for one check, or False (and nothing taken) when either cap is full."""
        user = username.lower()
        if (
            self._users[user] >= self.limits.user_in_flight
            or self._addresses[address] >= self.limits.address_in_flight
        ):
            return False
        self._users[user] += 1
        self._addresses[address] += 1
        return True

    def leave(self, username: str, address: str) -> None:
        user = username.lower()
        # Counter keeps zero entries: drop them, or every name ever tried stays in memory.
        for book, key in ((self._users, user), (self._addresses, address)):
            book[key] -= 1
            if book[key] <= 0:
                del book[key]

    def __len__(self) -> int:
        return sum(self._users.values())
