"""Login attempt limits (pure: the caller passes the clock).

Two sliding windows: failures for one username from one address (a person mistyping, or a
guesser aiming at one account), and failures from one address over every username (a guesser
walking a list). A key over its limit is refused until its oldest counted failure leaves the
window, and the answer says how long that is, for the ``Retry-After`` header. A success clears
the username's window but not the address's: a guesser who owns one account must not reset
their count by logging into it between guesses.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

K = TypeVar("K")


@dataclass(frozen=True)
class Limits:
    per_user: int = 5
    per_address: int = 30
    window_seconds: float = 900.0


@dataclass
class LoginLimiter:
    limits: Limits = field(default_factory=Limits)
    # Bounded memory: at most this many keys are remembered; the stalest are forgotten first.
    max_keys: int = 50_000
    _user: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _addr: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, username: str, address: str, now: float) -> float | None:
        """Seconds to wait before this attempt may be tried, or None when it may go ahead."""
        waits = [
            self._wait(self._user.get((username.lower(), address)), self.limits.per_user, now),
            self._wait(self._addr.get(address), self.limits.per_address, now),
        ]
        worst = max(w for w in waits)
        return None if worst <= 0 else float(math.ceil(worst))

    def failed(self, username: str, address: str, now: float) -> None:
        self._push(self._user, (username.lower(), address), now)
        self._push(self._addr, address, now)

    def succeeded(self, username: str, address: str) -> None:
        self._user.pop((username.lower(), address), None)

    def _wait(self, times: deque[float] | None, limit: int, now: float) -> float:
        if times is None:
            return 0.0
        self._trim(times, now)
        if len(times) < limit:
            return 0.0
        # The attempt may go when enough failures have aged out to leave room for one more.
        return times[len(times) - limit] + self.limits.window_seconds - now

    def _trim(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.limits.window_seconds:
            times.popleft()

    def _push(self, book: dict[K, deque[float]], key: K, now: float) -> None:
        times = book.pop(key, None) or deque()
        self._trim(times, now)
        times.append(now)
        book[key] = times  # re-inserted: dict order is staleness order
        while len(book) > self.max_keys:
            del book[next(iter(book))]
