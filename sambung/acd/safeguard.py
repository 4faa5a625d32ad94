"""The caller's place on its channel, Asterisk's safeguard for a caller nobody drives, and the
beat that tells Asterisk an engine drives talks.

While the engine owns a waiting caller, the caller's channel carries its place in the queues
(``acd/place.py``), so that another engine can take the call over after a crash or a restart,
and an absolute timeout (``TIMEOUT(absolute)``): if no engine refreshes it within the bound
(``[acd] adopt_within_seconds``), Asterisk releases the caller by itself with the engine-down
message and cause 34, as it does for a new call while no engine is connected
(``asterisk/conf/extensions.conf``, extension ``T``). So a caller is never left in the music
for ever when no engine comes back.

One task refreshes every guarded call's timeout every third of the bound, so a new engine has
at least two thirds of it to take a call over after a crash (the whole bound after a graceful
hand-over, which refreshes one last time). A call's own writes (its place, the timeout on or
off) and the refresh never cross: each call has a lock, so a talk that just cleared its timeout
is never given one back by a refresh in flight. Each write goes only where something changed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from sambung.asterisk import talk_guard
from sambung.engine.errors import CallGone, TelephonyError
from sambung.engine.metrics import Metrics
from sambung.engine.ports import QueueTelephony

log = structlog.get_logger(__name__)

_BATCH = 10  # refreshes in flight at once during a sweep
STOP_WITHIN_SECONDS = 2.0  # the engine beat's last word at a stop


@dataclass(slots=True)
class _Marked:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    place: str = ""  # as last written on the channel
    guarded: bool = False  # the timeout runs


class Safeguard:
    def __init__(self, tel: QueueTelephony, bound_seconds: float, metrics: Metrics) -> None:
        self.tel = tel
        self.bound = bound_seconds
        self.every = bound_seconds / 3
        self._m = metrics
        self._calls: dict[str, _Marked] = {}

    @property
    def guarded(self) -> int:
        """Calls whose timeout is kept running."""
        return sum(1 for m in self._calls.values() if m.guarded)

    async def mark(self, call_id: str, place: str, guard: bool) -> None:
        """Write ``place`` ("" for none) on the call's channel and turn its timeout on or off,
        where that changes. The timeout goes first: a talk is never cut by it, and a caller
        never waits with a place but without one."""
        m = self._calls.setdefault(call_id, _Marked())
        async with m.lock:
            try:
                if guard != m.guarded:
                    await self.tel.set_safeguard(call_id, self.bound if guard else 0)
                    m.guarded = guard
                if place != m.place:
                    await self.tel.mark_place(call_id, place)
                    m.place = place
            except CallGone:
                return  # the caller is gone; its end is on its way
            except TelephonyError as err:
                # Not written: after a crash this caller would be hung up, as before. The next
                # change tries again (what was not written is still "changed").
                log.warning("acd.place_not_marked", error=str(err))

    async def hand_over(self, call_id: str) -> None:
        """The call is left to the next engine: its timeout gets the whole bound once more,
        then this engine forgets it."""
        m = self._calls.pop(call_id, None)
        if m is None or not m.guarded:
            return
        async with m.lock:
            try:
                await self.tel.set_safeguard(call_id, self.bound)
            except CallGone:
                return
            except TelephonyError as err:
                log.warning("acd.safeguard_not_refreshed", error=str(err))

    def forget(self, call_id: str) -> None:
        """The call's task ended: nothing to refresh any more."""
        self._calls.pop(call_id, None)

    async def sweep(self) -> int:
        """Refresh every guarded call's timeout once; returns how many were refreshed."""
        started = time.perf_counter()
        ids = [cid for cid, m in self._calls.items() if m.guarded]
        done = 0
        for i in range(0, len(ids), _BATCH):
            results = await asyncio.gather(*(self._refresh(cid) for cid in ids[i : i + _BATCH]))
            done += sum(results)
        self._m.safeguard_sweep.observe(time.perf_counter() - started)
        if done < len(ids):
            log.info("acd.safeguard_sweep", calls=len(ids), refreshed=done)
        return done

    async def _refresh(self, call_id: str) -> bool:
        m = self._calls.get(call_id)
        if m is None:
            return False
        async with m.lock:
            if self._calls.get(call_id) is not m or not m.guarded:
                return False  # ended, handed over or talking meanwhile
            try:
                await self.tel.set_safeguard(call_id, self.bound)
            except CallGone:
                return False
            except TelephonyError as err:
                log.warning("acd.safeguard_not_refreshed", call_id=call_id, error=str(err))
                return False
        return True

    async def run(self) -> None:
        """Until cancelled: a sweep every third of the bound."""
        while True:
            await asyncio.sleep(self.every)
            await self.sweep()


class EngineBeat:
    """Tells Asterisk that an engine drives talks: the global ``SAMBUNG_ENGINE_UNTIL``, kept a
    few seconds ahead of now while this engine is active, 0 once it stops. Asterisk's hangup
    handler on each side of a talk ends the other side only when it has passed
    (``asterisk/talk_guard.py``)."""

    def __init__(
        self,
        tel: QueueTelephony,
        every: float = talk_guard.BEAT_SECONDS,
        ahead: int = talk_guard.ENGINE_UNTIL_AHEAD,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.tel = tel
        self.every = every
        self.ahead = ahead
        self.wall = wall
        self.stopped = False
        self._failing = False
        # A beat in flight and the stop's 0 must reach Asterisk in that order.
        self._lock = asyncio.Lock()

    async def beat(self) -> bool:
        async with self._lock:
            if self.stopped:
                return False
            try:
                # Bounded well under ``ahead``: one slow request must not let the beat lapse
                # while this engine is alive (the next beat follows at once).
                until = math.ceil(self.wall()) + self.ahead
                await asyncio.wait_for(self.tel.set_engine_until(until), self.every * 2)
            except (TelephonyError, TimeoutError) as err:
                # Asterisk away, or this engine fenced: the handlers see no engine soon, which
                # is then the truth. Said once per outage, not every second.
                if not self._failing:
                    log.warning("acd.engine_beat_failed", error=str(err) or type(err).__name__)
                self._failing = True
                return False
        self._failing = False
        return True

    async def run(self) -> None:
        """Until cancelled or stopped: a beat every ``every`` seconds."""
        while not self.stopped:
            await self.beat()
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        """No engine drives talks from now on (a graceful stop, after the hand-over): a side
        that hangs up before the next engine beats has the other side ended by Asterisk."""
        async with self._lock:
            self.stopped = True
            try:
                # Bounded: a stop must not wait on an Asterisk that does not answer (the beat
                # then simply runs out).
                await asyncio.wait_for(self.tel.set_engine_until(0), STOP_WITHIN_SECONDS)
            except (TelephonyError, TimeoutError) as err:
                log.info("acd.engine_beat_not_cleared", error=str(err) or type(err).__name__)
