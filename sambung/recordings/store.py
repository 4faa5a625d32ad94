"""The recordings feature's SQL: recording rows, retention, and the audit trails as facts.

Audit rows go through the engine's fact writer (never blocking a request on the database, kept
in order, spilled and replayed across restarts); their ids are made here so a retried or
replayed write cannot count twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sambung.engine.facts import Fact, register_facts
from sambung.recordings.journal import Job
from sambung.recordings.model import RetentionCandidate

# Errors that mean "PostgreSQL is away now", as the fact writer classifies them.
DB_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    TimeoutError,
)


def new_audit_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class RecordingAuditFact(Fact):
    sql = """INSERT INTO recording_audit (audit_id, at, principal, role, action, name, call_id,
                 range_start, range_end, status, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (audit_id) DO NOTHING"""
    audit_id: str
    at: datetime
    principal: str
    role: str
    action: str
    name: str | None
    call_id: str | None
    range_start: int | None
    range_end: int | None
    status: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class SupervisionAuditFact(Fact):
    sql = """INSERT INTO supervision_audit (audit_id, session_id, at, principal, role, action,
                 mode, call_id, agent_id, endpoint, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (audit_id) DO NOTHING"""
    audit_id: str
    session_id: str
    at: datetime
    principal: str
    role: str
    action: str
    mode: str
    call_id: str
    agent_id: str
    endpoint: str
    detail: str


register_facts(RecordingAuditFact, SupervisionAuditFact)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A monitoring session as its audit tells it: who started it on which talk, and the
    mode it was last in."""

    principal: str
    role: str
    call_id: str
    agent_id: str
    endpoint: str
    mode: str
    started_at: datetime


async def monitor_session(pool: asyncpg.Pool, session_id: str) -> SessionRecord | None:
    """None when the session has no start in the audit, or has ended."""
    rows = await pool.fetch(
        """SELECT principal, role, action, mode, call_id, agent_id, endpoint, at
           FROM supervision_audit WHERE session_id = $1 ORDER BY at, audit_id""",
        session_id,
    )
    start = next((r for r in rows if r["action"] == "start"), None)
    if start is None or any(r["action"] == "stop" for r in rows):
        return None
    return SessionRecord(
        start["principal"],
        start["role"],
        start["call_id"],
        start["agent_id"],
        start["endpoint"],
        rows[-1]["mode"],
        start["at"],
    )


async def insert_recording(pool: asyncpg.Pool, job: Job) -> None:
    """The recording's row; a replayed job finds it there already and changes nothing."""
    await pool.execute(
        """INSERT INTO recordings (name, call_id, segment, agent_id, queue, campaign, policy,
               started_at, ended_at, duration_seconds, size_bytes, sha256, format, store_key,
               paused_spans, stored_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16)
           ON CONFLICT (name) DO NOTHING""",
        job.name,
        job.call_id,
        job.segment,
        job.agent_id,
        job.queue,
        job.campaign,
        job.policy,
        job.started_at,
        job.ended_at,
        job.duration_seconds,
        job.size_bytes,
        job.sha256,
        job.fmt,
        job.store_key,
        json.dumps([list(s) for s in job.paused_spans]),
        job.stored_at,
    )


_COLUMNS = """name, call_id, segment, agent_id, queue, campaign, policy, started_at, ended_at,
    duration_seconds, size_bytes, sha256, format, store_key, paused_spans, stored_at,
    deleted_at, deleted_by"""


def _row(r: asyncpg.Record) -> dict[str, Any]:
    out = dict(r)
    spans = out.get("paused_spans")
    if isinstance(spans, str):
        out["paused_spans"] = json.loads(spans)
    return out


async def get_recording(pool: asyncpg.Pool, name: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM recordings WHERE name = $1", name)
    return None if row is None else _row(row)


async def list_recordings(
    pool: asyncpg.Pool,
    *,
    call_id: str | None = None,
    agent_id: str | None = None,
    queue: str | None = None,
    campaign: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_deleted: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    conds: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("call_id", call_id),
        ("agent_id", agent_id),
        ("queue", queue),
        ("campaign", campaign),
    ):
        if value is not None:
            args.append(value)
            conds.append(f"{column} = ${len(args)}")
    if since is not None:
        args.append(since)
        conds.append(f"started_at >= ${len(args)}")
    if until is not None:
        args.append(until)
        conds.append(f"started_at < ${len(args)}")
    if not include_deleted:
        conds.append("deleted_at IS NULL")
    args.append(limit)
    where = " AND ".join(conds) or "true"
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM recordings WHERE {where} "
        f"ORDER BY started_at DESC, name LIMIT ${len(args)}",
        *args,
    )
    return [_row(r) for r in rows]


async def retention_candidates(
    pool: asyncpg.Pool, started_before: datetime
) -> list[RetentionCandidate]:
    rows = await pool.fetch(
        """SELECT name, queue, campaign, started_at, store_key FROM recordings
           WHERE deleted_at IS NULL AND started_at <= $1 ORDER BY started_at""",
        started_before,
    )
    return [
        RetentionCandidate(r["name"], r["queue"], r["campaign"], r["started_at"], r["store_key"])
        for r in rows
    ]


async def mark_deleted(pool: asyncpg.Pool, name: str, at: datetime, by: str) -> None:
    await pool.execute(
        "UPDATE recordings SET deleted_at = $2, deleted_by = $3 "
        "WHERE name = $1 AND deleted_at IS NULL",
        name,
        at,
        by,
    )


async def audit_rows(
    pool: asyncpg.Pool, table: str, key: str, value: str, limit: int = 200
) -> list[dict[str, Any]]:
    if (table, key) not in {
        ("recording_audit", "name"),
        ("recording_audit", "call_id"),
        ("supervision_audit", "call_id"),
        ("supervision_audit", "session_id"),
    }:
        raise ValueError(f"no audit lookup by {table}.{key}")
    rows = await pool.fetch(
        f"SELECT * FROM {table} WHERE {key} = $1 ORDER BY at LIMIT $2", value, limit
    )
    return [dict(r) for r in rows]
