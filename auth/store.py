"""The auth feature's SQL: users, sessions and the audit log (engine.db.Conn in, values out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from auth.model import Role, Session, User
from engine.db import Conn
from engine.facts import Fact, register_facts


@dataclass(frozen=True, slots=True)
class AuditFact(Fact):
    sql = """INSERT INTO audit_log (audit_id, at, actor, role, action, target, outcome, status,
                 ip, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
             ON CONFLICT (audit_id) DO NOTHING"""
    audit_id: str
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    outcome: str
    status: int | None
    ip: str | None
    detail: str  # JSON text: facts travel through the JSON-lines spool as plain values


register_facts(AuditFact)

_USER_COLUMNS = "username, role, agent_id, display_name, language, disabled, created_at"


def user_of(row: asyncpg.Record) -> User:
    return User(
        username=row["username"],
        role=Role(row["role"]),
        agent_id=row["agent_id"],
        display_name=row["display_name"],
        language=row["language"],
        disabled=row["disabled"],
        created_at=row["created_at"],
    )


async def credentials(conn: Conn, username: str) -> tuple[User, str] | None:
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)",
        username,
    )
    return None if row is None else (user_of(row), row["password_hash"])


async def get_user(conn: Conn, username: str) -> User | None:
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE username = $1", username)
    return None if row is None else user_of(row)


async def list_users(conn: Conn) -> list[User]:
    rows = await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")
    return [user_of(r) for r in rows]


async def insert_user(
    conn: Conn,
    username: str,
    password_hash: str,
    role: Role,
    agent_id: str | None,
    display_name: str,
    language: str,
) -> User:
    row = await conn.fetchrow(
        f"""INSERT INTO users (username, password_hash, role, agent_id, display_name, language)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_USER_COLUMNS}""",
        username,
        password_hash,
        role.value,
        agent_id,
        display_name,
        language,
    )
    assert row is not None
    return user_of(row)


async def update_user(conn: Conn, username: str, changes: dict[str, Any]) -> User | None:
    # Column names come from the service's fixed list, never from the request.
    sets = ", ".join(f"{col} = ${i + 2}" for i, col in enumerate(changes))
    row = await conn.fetchrow(
        f"UPDATE users SET {sets}, updated_at = now() WHERE username = $1"
        f" RETURNING {_USER_COLUMNS}",
        username,
        *changes.values(),
    )
    return None if row is None else user_of(row)


async def set_password_hash(conn: Conn, username: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE username = $1",
        username,
        password_hash,
    )


async def insert_session(
    conn: Conn,
    token_hash: bytes,
    username: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
    ip: str | None,
    user_agent: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO user_sessions (token_hash, username, csrf_token, created_at, last_seen_at,
               expires_at, ip, user_agent)
           VALUES ($1, $2, $3, $4, $4, $5, $6, $7)""",
        token_hash,
        username,
        csrf_token,
        now,
        expires_at,
        ip,
        user_agent,
    )


async def live_session(
    conn: Conn, token_hash: bytes, now: datetime, idle_since: datetime
) -> tuple[Session, datetime] | None:
    """The session if it is still live (not ended, not past its end, not idle too long)."""
    row = await conn.fetchrow(
        f"""SELECT s.csrf_token, s.expires_at, s.last_seen_at,
                   {", ".join("u." + c.strip() for c in _USER_COLUMNS.split(","))}
            FROM user_sessions s JOIN users u USING (username)
            WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2
              AND s.last_seen_at > $3 AND NOT u.disabled""",
        token_hash,
        now,
        idle_since,
    )
    if row is None:
        return None
    session = Session(user_of(row), token_hash, row["csrf_token"], row["expires_at"])
    return session, row["last_seen_at"]


async def touch_session(conn: Conn, token_hash: bytes, now: datetime) -> None:
    await conn.execute(
        "UPDATE user_sessions SET last_seen_at = $2 WHERE token_hash = $1 AND ended_at IS NULL",
        token_hash,
        now,
    )


async def end_session(conn: Conn, token_hash: bytes, now: datetime, reason: str) -> None:
    await conn.execute(
        """UPDATE user_sessions SET ended_at = $2, ended_reason = $3
           WHERE token_hash = $1 AND ended_at IS NULL""",
        token_hash,
        now,
        reason,
    )


async def end_user_sessions(conn: Conn, username: str, now: datetime, reason: str) -> int:
    status = await conn.execute(
        """UPDATE user_sessions SET ended_at = $2, ended_reason = $3
           WHERE username = $1 AND ended_at IS NULL""",
        username,
        now,
        reason,
    )
    return int(status.split()[-1])


async def audit_entries(
    conn: Conn,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT audit_id AS id, at, actor, role, action, target, outcome, status, ip,
                  detail::text
           FROM audit_log
           WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2)
             AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
           ORDER BY at DESC, audit_id DESC LIMIT $5""",
        actor,
        action,
        since,
        until,
        limit,
    )
    return [dict(r) for r in rows]
