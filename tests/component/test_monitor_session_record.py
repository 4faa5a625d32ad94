"""What the supervision audit says of a monitoring session, for an engine taking it over (real
PostgreSQL): who started it on which talk, and the mode it was last in; nothing for a session
that ended or never started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sambung.recordings.store import SessionRecord, SupervisionAuditFact, monitor_session
from tests.dbutil import migrated_pool

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def row(n: int, session: str, action: str, mode: str) -> SupervisionAuditFact:
    return SupervisionAuditFact(
        f"a{session}{n}",
        session,
        T0 + timedelta(seconds=n),
        "sari",
        "supervisor",
        action,
        mode,
        "c1",
        "siti",
        "supervisor1",
        "",
    )


async def test_the_audit_gives_the_session_and_its_last_mode() -> None:
    async with migrated_pool() as pool:
        facts = [
            row(0, "s1", "start", "listen"),
            row(1, "s1", "answered", "listen"),
            row(2, "s1", "mode", "whisper"),
            row(0, "s2", "start", "listen"),
            row(1, "s2", "stop", "listen"),
            row(0, "s3", "answered", "barge"),
        ]
        for f in facts:
            await pool.execute(f.sql, *f.args())
        assert await monitor_session(pool, "s1") == SessionRecord(
            "sari", "supervisor", "c1", "siti", "supervisor1", "whisper", T0
        )
        assert await monitor_session(pool, "s2") is None  # it ended
        assert await monitor_session(pool, "s3") is None  # no start on record
        assert await monitor_session(pool, "nope") is None
