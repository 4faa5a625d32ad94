"""sambung/acd/safeguard.py: the place and the timeout written on a caller's channel, kept fresh."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sambung.acd.safeguard import EngineBeat, Safeguard
from sambung.engine.errors import CallGone, TelephonyUnavailable
from sambung.engine.metrics import build_metrics


@dataclass
class Tel:
    writes: list[tuple[str, str, object]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # set_safeguard waits on it when given
    gone: set[str] = field(default_factory=set)
    down: bool = False
    stall_until: bool = False

    async def _check(self, call_id: str) -> None:
        if self.down:
            raise TelephonyUnavailable("Asterisk is away")
        if call_id in self.gone:
            raise CallGone(call_id)

    async def mark_place(self, call_id: str, place: str) -> None:
        await self._check(call_id)
        self.writes.append(("place", call_id, place))

    async def set_safeguard(self, call_id: str, seconds: float) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await self._check(call_id)
        self.writes.append(("timeout", call_id, seconds))

    async def set_engine_until(self, epoch: int) -> None:
        if self.stall_until:
            self.stall_until = False
            await asyncio.Event().wait()  # this one request never answers
        await self._check("")
        self.writes.append(("until", "", epoch))


def guard(tel: Tel, bound: float = 120.0) -> Safeguard:
    return Safeguard(tel, bound, build_metrics())  # type: ignore[arg-type]


async def test_the_timeout_goes_first_and_only_changes_are_written() -> None:
    tel = Tel()
    g = guard(tel)
    await g.mark("c1", "1;e=c1-q1", True)
    await g.mark("c1", "1;e=c1-q1", True)  # nothing changed
    await g.mark("c1", "1;e=c1-q1;r=1", True)  # relaxed: the place only
    await g.mark("c1", "", False)  # talking: the timeout off first, then the place
    assert tel.writes == [
        ("timeout", "c1", 120.0),
        ("place", "c1", "1;e=c1-q1"),
        ("place", "c1", "1;e=c1-q1;r=1"),
        ("timeout", "c1", 0),
        ("place", "c1", ""),
    ]
    assert g.guarded == 0


async def test_a_sweep_refreshes_every_guarded_call_and_no_other() -> None:
    tel = Tel()
    g = guard(tel, 9.0)
    assert g.every == 3.0
    await g.mark("c1", "p1", True)
    await g.mark("c2", "p2", True)
    await g.mark("c3", "", False)  # talking
    tel.writes.clear()
    assert await g.sweep() == 2
    assert sorted(tel.writes) == [("timeout", "c1", 9.0), ("timeout", "c2", 9.0)]
    g.forget("c1")
    tel.writes.clear()
    assert await g.sweep() == 1
    assert tel.writes == [("timeout", "c2", 9.0)]


async def test_a_refresh_in_flight_never_gives_a_talk_its_timeout_back() -> None:
    tel = Tel()
    g = guard(tel)
    await g.mark("c1", "p1", True)
    tel.gate = asyncio.Event()
    sweep = asyncio.create_task(g.sweep())
    await asyncio.sleep(0)  # the refresh holds the call's lock, waiting on Asterisk
    connect = asyncio.create_task(g.mark("c1", "", False))  # the caller is put through
    await asyncio.sleep(0)
    tel.gate.set()
    await asyncio.gather(sweep, connect)
    timeouts = [w[2] for w in tel.writes if w[0] == "timeout"]
    assert timeouts[-1] == 0  # cleared last, whatever the order they were asked in


async def test_handing_over_gives_the_whole_bound_once_more_then_forgets() -> None:
    tel = Tel()
    g = guard(tel)
    await g.mark("c1", "p1", True)
    tel.writes.clear()
    await g.hand_over("c1")
    assert tel.writes == [("timeout", "c1", 120.0)]
    assert await g.sweep() == 0


async def test_a_gone_call_or_an_unreachable_asterisk_is_no_error() -> None:
    tel = Tel(gone={"c9"})
    g = guard(tel)
    await g.mark("c9", "p9", True)  # the caller hung up meanwhile
    tel.down = True
    await g.mark("c1", "p1", True)  # not written: tried again at the next change
    tel.down = False
    await g.mark("c1", "p1", True)
    assert ("place", "c1", "p1") in tel.writes
    assert ("timeout", "c1", 120.0) in tel.writes


async def test_the_engine_beat_keeps_asterisk_told_and_says_none_at_the_stop() -> None:
    # Asterisk's talk guard acts only once SAMBUNG_ENGINE_UNTIL has passed: each beat sets it
    # a few seconds past the wall clock (rounded up), the stop sets 0.
    tel = Tel()
    clock = iter([1000.2, 1001.0])
    beat = EngineBeat(tel, every=0.01, ahead=5, wall=lambda: next(clock))  # type: ignore[arg-type]
    assert await beat.beat()
    assert await beat.beat()
    await beat.stop()
    assert not await beat.beat()  # stopped: no engine drives talks, and none is claimed to
    assert tel.writes == [("until", "", 1006), ("until", "", 1006), ("until", "", 0)]


async def test_the_engine_beat_rides_out_asterisk_away_and_its_loop_ends_at_the_stop() -> None:
    tel = Tel(down=True)
    beat = EngineBeat(tel, every=0.01, ahead=5, wall=lambda: 50.0)  # type: ignore[arg-type]
    assert not await beat.beat()  # Asterisk away: no beat, no crash
    tel.down = False
    task = asyncio.create_task(beat.run())
    await asyncio.sleep(0.05)
    await beat.stop()
    await asyncio.wait_for(task, 1)  # the loop sees the stop and ends by itself
    assert tel.writes[0] == ("until", "", 55)
    assert tel.writes[-1] == ("until", "", 0)
    assert {w[2] for w in tel.writes} == {55, 0}


async def test_a_beat_asterisk_does_not_answer_gives_up_in_time_and_the_stop_still_lands() -> None:
    # A slow request must neither hold the beats up past their margin nor keep the stop from
    # saying 0.
    tel = Tel(stall_until=True)
    beat = EngineBeat(tel, every=0.05, ahead=5, wall=lambda: 70.0)  # type: ignore[arg-type]
    assert not await asyncio.wait_for(beat.beat(), 1)  # bounded to two beats, not hung
    assert await beat.beat()
    await asyncio.wait_for(beat.stop(), 1)
    assert tel.writes == [("until", "", 75), ("until", "", 0)]
