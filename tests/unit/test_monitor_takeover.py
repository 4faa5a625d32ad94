"""Supervisors' monitoring sessions through an engine change (fake ARI): a session the last
engine left goes on with the next, read from its audit, on the talk the next engine carries on;
one that cannot go on is ended as a session ends; a graceful stop leaves active sessions to the
next engine."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sambung.engine.errors import NotFound
from sambung.engine.events import HeldMonitor
from sambung.engine.facts import Fact
from sambung.recordings.model import MonitorMode, Principal, Role, Talk
from sambung.recordings.monitor import MonitorService
from sambung.recordings.store import SessionRecord, SupervisionAuditFact
from tests.unit.test_recordings_fakes import FakeChannel, FakeRecordingAri

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
TALK = Talk("c1", "siti", "leg-1", "sambung-call-c1", "support", None, T0)
RECORD = SessionRecord("sari", "supervisor", "c1", "siti", "supervisor1", "whisper", T0)


def found(session: str = "s1", snoop: bool = True) -> HeldMonitor:
    return HeldMonitor(
        session, f"sambung-sup-{session}", f"sambung-snoop-{session}-2" if snoop else None
    )


def service(
    ari: FakeRecordingAri,
    facts: list[Fact],
    *,
    record: SessionRecord | None = RECORD,
    talks: dict[str, Talk] | None = None,
) -> MonitorService:
    known = {"c1": TALK} if talks is None else talks

    def find_talk(call_id: str | None, agent_id: str | None) -> Talk:
        if call_id in known:
            return known[call_id]
        raise NotFound(f"no talk {call_id}")

    async def read(session_id: str) -> SessionRecord | None:
        return record

    return MonitorService(ari, find_talk, {"sari": "supervisor1"}, facts.append, read_session=read)


def left_by_the_last_engine(ari: FakeRecordingAri, m: HeldMonitor) -> None:
    ari.channels[m.supervisor] = FakeChannel("Up")
    if m.snoop is not None:
        ari.channels[m.snoop] = FakeChannel("Up")
    ari.channels["leg-1"] = FakeChannel("Up")
    ari.bridges[f"sambung-monitor-{m.session_id}"] = [m.supervisor, *([m.snoop] if m.snoop else [])]


def actions(facts: list[Fact]) -> list[str]:
    return [f.action for f in facts if isinstance(f, SupervisionAuditFact)]


async def until(pred: object, seconds: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not pred():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_given_a_session_left_then_it_goes_on_and_ends_with_the_talk() -> None:
    ari, facts = FakeRecordingAri(), list[Fact]()
    m = found()
    left_by_the_last_engine(ari, m)
    monitor = service(ari, facts)
    assert monitor.take_over([m]) == {m.supervisor, m.snoop}
    # The resync after the first connect finds it again: still taken, resumed once.
    assert monitor.take_over([m]) == {m.supervisor, m.snoop}
    await until(lambda: "s1" in monitor.sessions)
    assert monitor.take_over([m]) == {m.supervisor, m.snoop}
    (view,) = monitor.views(Principal("sari", Role.SUPERVISOR))
    assert (view["state"], view["mode"], view["call_id"], view["endpoint"]) == (
        "active",
        "whisper",
        "c1",
        "supervisor1",
    )
    # Nothing was rung or snooped again: the supervisor hears on as before.
    assert not [c for c in ari.calls if c[0] in ("originate", "snoop", "hangup")]
    # A mode change makes the next snoop, numbered after the one found.
    monitor.set_mode(Principal("sari", Role.SUPERVISOR), "s1", MonitorMode.LISTEN)
    await until(lambda: any(c[:3] == ("snoop", "leg-1", "sambung-snoop-s1-3") for c in ari.calls))
    monitor.call_ended("c1")
    await until(lambda: "s1" not in monitor.sessions)
    assert actions(facts) == ["taken_over", "mode", "stop"]
    assert "sambung-monitor-s1" not in ari.bridges
    assert m.supervisor not in ari.channels


async def test_given_no_talk_or_no_record_then_the_session_is_ended() -> None:
    for record, talks, snoop in ((RECORD, {}, True), (None, None, True), (RECORD, None, False)):
        ari, facts = FakeRecordingAri(), list[Fact]()
        m = found(snoop=snoop)
        left_by_the_last_engine(ari, m)
        monitor = service(ari, facts, record=record, talks=talks)
        monitor.take_over([m])
        await until(lambda: "sambung-monitor-s1" not in ari.bridges, 8.0)  # noqa: B023
        assert m.supervisor not in ari.channels
        assert monitor.sessions == {}


async def test_given_a_graceful_stop_then_active_sessions_are_left_as_they_are() -> None:
    ari, facts = FakeRecordingAri(), list[Fact]()
    m = found()
    left_by_the_last_engine(ari, m)
    monitor = service(ari, facts)
    monitor.take_over([m])
    await until(lambda: "s1" in monitor.sessions)
    await monitor.stop_all(hand_over=True)
    assert actions(facts) == ["taken_over", "handed_over"]
    assert "sambung-monitor-s1" in ari.bridges
    assert m.supervisor in ari.channels
    assert m.snoop in ari.channels
